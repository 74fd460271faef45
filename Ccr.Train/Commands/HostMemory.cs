using System.Globalization;
using Ccr.Train.Cli;


namespace Ccr.Train.Commands;

/// <summary>
/// How much host memory a command may use: the smaller of the cgroup's limit (what the kernel's
/// OOM killer enforces on a container or a Slurm job; v2 memory.max, else v1
/// memory.limit_in_bytes, less what the cgroup already uses) and /proc/meminfo's MemAvailable,
/// or <c>CCR_MEMORY_LIMIT_MB</c> when set. The CPU device's buffer pool is capped at 3/4 of it (the
/// rest is for the host arrays around it: decoded images, batches, predictions), so running out
/// is a clear "out of memory" line (code 3) instead of the kernel killing the process (137).
/// </summary>
public static class HostMemory
{
    /// <summary>The share of the budget the CPU device's buffer pool may take.</summary>
    public const double PoolShare = 0.75;

    /// <summary>The budget in bytes and where it comes from; null when nothing is known (not Linux).</summary>
    public static (long Bytes, string Source)? Budget() =>
        Budget(Environment.GetEnvironmentVariable("CCR_MEMORY_LIMIT_MB"), Read("/proc/meminfo"),
               Read("/sys/fs/cgroup/memory.max") ?? Read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
               Read("/sys/fs/cgroup/memory.current") ?? Read("/sys/fs/cgroup/memory/memory.usage_in_bytes"));

    /// <summary>The budget from the texts of CCR_MEMORY_LIMIT_MB, /proc/meminfo and the cgroup's
    /// limit and usage files (each null when absent); pure, for tests.</summary>
    public static (long Bytes, string Source)? Budget(string? envMb, string? meminfo, string? cgroupLimit, string? cgroupUsage)
    {
        if (!string.IsNullOrWhiteSpace(envMb))
        {
            if (!double.TryParse(envMb, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || !double.IsFinite(v))
                throw new UsageException($"CCR_MEMORY_LIMIT_MB must be a positive number of MiB, got '{envMb}'");
            return ((long)(v * 1048576), "CCR_MEMORY_LIMIT_MB");
        }
        (long, string)? best = null;
        if (meminfo != null)
            foreach (var line in meminfo.Split('\n'))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out long kb))
                    best = (kb * 1024, "MemAvailable");
        // "max" (v2) or a huge number (v1) means no limit
        if (long.TryParse(cgroupLimit?.Trim(), out long limit) && limit < (1L << 60))
        {
            long used = long.TryParse(cgroupUsage?.Trim(), out long u) ? u : 0;
            long free = Math.Max(0, limit - used);
            if (best == null || free < best.Value.Item1) best = (free, "the cgroup's memory limit");
        }
        return best;
    }

    static string? Read(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static string Mib(long bytes) => $"{bytes / 1048576.0:N0} MiB";
}
