using System.Runtime.CompilerServices;

namespace Ccr.Kernels.Ops;

/// <summary>The packed GEMM's cache sizes, K / N blocking and per-thread pack buffers (split from
/// Gemm.Packed.cs so the loops and micro-kernels stay in one readable file).</summary>
internal static partial class Gemm
{
    /// <summary>Cache sizes in bytes from /sys (Linux), else 32 KiB L1d and 1 MiB L2.</summary>
    internal static readonly (int L1, int L2) Caches = ReadCaches();

    // buffers per thread, grown when a larger product arrives and then reused: no allocation in the steady
    // step. Pinned (POH), so their addresses hold without `fixed`. sharedBuffer holds a batch's shared operand,
    // packed once by the calling thread and read by every worker.
    [ThreadStatic] static float[]? packBuffer, sharedBuffer;

    static unsafe float* Buffer(ref float[]? buffer, long floats)
    {
        if (buffer == null || buffer.LongLength < floats + 16)
            buffer = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        var p = (float*)Unsafe.AsPointer(ref buffer[0]);
        return (float*)(((nint)p + 63) & ~(nint)63); // 64-byte aligned: a zmm load never splits a line
    }

    /// <summary>(KC, NC) for a micro-tile: an A panel MR x KC in half of L1 (the B strip row and C tile
    /// share the rest), a B block KC x NC in half of L2.</summary>
    internal static (int KC, int NC) Blocking(int mr, int nr)
    {
        int kc = Math.Clamp(Caches.L1 / 2 / (mr * 4) / 8 * 8, 64, KcMax);
        int nc = Math.Clamp(Caches.L2 / 2 / (kc * 4) / nr * nr, nr, 4096 / nr * nr);
        return (kc, nc);
    }

    // deeper K blocks gain little (C is read and written once per block) and cost L1 room
    const int KcMax = 512;

    static (int, int) ReadCaches()
    {
        int l1 = 32 << 10, l2 = 1 << 20;
        try
        {
            const string root = "/sys/devices/system/cpu/cpu0/cache";
            if (!Directory.Exists(root)) return (l1, l2);
            foreach (var dir in Directory.GetDirectories(root, "index*"))
            {
                string level = File.ReadAllText(Path.Combine(dir, "level")).Trim();
                string type = File.ReadAllText(Path.Combine(dir, "type")).Trim();
                int size = ParseSize(File.ReadAllText(Path.Combine(dir, "size")).Trim());
                if (size <= 0) continue;
                if (level == "1" && type == "Data") l1 = size;
                else if (level == "2" && type != "Instruction") l2 = size;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return (l1, l2);
    }

    // "48K", "2048K", "1M" -> bytes; 0 when unreadable
    static int ParseSize(string s)
    {
        long mult = s.EndsWith('K') ? 1 << 10 : s.EndsWith('M') ? 1 << 20 : 1;
        return long.TryParse(mult == 1 ? s : s[..^1], out long v) ? (int)Math.Min(int.MaxValue, v * mult) : 0;
    }
}
