using System.Globalization;
using System.Runtime.InteropServices;
using Ccr.Kernels;
using Ccr.Train.Cli;
using Ccr.Train.Training;

namespace Ccr.Train.Commands;

/// <summary>Opening the device for a command: a device choice that cannot be met is a usage
/// error, and <c>CCR_MEMORY_LIMIT_MB</c> caps the memory the buffer pool may take.</summary>
public static class CommandDevice
{
    public static Device Open(string? choice, bool verbose = true, int cudaOrdinal = 0)
    {
        Device d;
        try { d = Device.Create(choice, verbose, cudaOrdinal); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new UsageException($"device: {e.Message}");
        }
        if (Environment.GetEnvironmentVariable("CCR_MEMORY_LIMIT_MB") is { Length: > 0 } mb)
        {
            if (!double.TryParse(mb, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0))
            {
                d.Dispose();
                throw new UsageException($"CCR_MEMORY_LIMIT_MB must be a positive number of MiB, got '{mb}'");
            }
            d.Pool.LimitBytes = (long)(v * 1048576);
        }
        return d;
    }
}

/// <summary>What makes a folder a run folder (train refuses to start a fresh run in one).</summary>
public static class RunFolder
{
    static readonly string[] Marks = ["last.ckpt", "best.ckpt", "metrics.csv", "config.yaml", "eval.json"];

    /// <summary>The run files <paramref name="dir"/> holds (none: free for a new run).</summary>
    public static List<string> RunFiles(string dir) =>
        Directory.Exists(dir) ? Marks.Where(m => File.Exists(Path.Combine(dir, m))).ToList() : [];

    /// <summary><paramref name="dir"/> itself when it holds no run, else dir-2, dir-3, ... (the demo).</summary>
    public static string Fresh(string dir)
    {
        if (RunFiles(dir).Count == 0) return dir;
        for (int i = 2; ; i++)
        {
            string d = $"{dir}-{i}";
            if (RunFiles(d).Count == 0) return d;
        }
    }

    /// <summary>Refuses to start a new run in a folder that holds one.</summary>
    public static void RefuseExisting(string dir, string command)
    {
        var files = RunFiles(dir);
        if (files.Count > 0)
            throw new UsageException($"{command}: '{dir}' already holds a run ({string.Join(", ", files)}); " +
                $"continue it with --resume, or start a new run in another folder with --out DIR");
    }
}

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM while training: the first asks the trainer to stop after the
/// current step and write last.ckpt; a second Ctrl-C or SIGTERM ends the process at once (the
/// last checkpoint stays whole: writes are atomic).
/// </summary>
public sealed class StopSignals : IDisposable
{
    readonly List<PosixSignalRegistration> _registrations = new();
    int _count;

    public StopSignals(Trainer trainer)
    {
        foreach (var (signal, name) in new[] { (PosixSignal.SIGINT, "Ctrl-C"), (PosixSignal.SIGTERM, "SIGTERM") })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                if (Interlocked.Increment(ref _count) > 1) return; // default action: the process ends
                ctx.Cancel = true;
                Console.Error.WriteLine($"{name}: finishing the current step and writing last.ckpt (again to quit at once) ...");
                trainer.RequestStop(name);
            }));
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
