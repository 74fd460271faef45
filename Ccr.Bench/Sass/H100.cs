namespace Ccr.Bench.Sass;

/// <summary>
/// The machine the static estimates assume: an H100 SXM5 (sm_90), and an A100 for sm_80's occupancy.
/// Clock: 1.83 GHz, the boost clock at which NVIDIA's dense TF32 figure holds (132 SMs x 2048 flops a clock x
/// 1.83 GHz = 494.7 TFLOP/s); fp32 at that clock: 132 x 4 x 64 x 1.83 = 61.8 TFLOP/s (NVIDIA quotes 67 at
/// 1.98 GHz). The tensor-core rate is that of wgmma; mma.sync (what ILGPU's kernels use) reaches noticeably
/// less of it on Hopper, so a TF32 ceiling is an upper bound twice over.
/// </summary>
public static class H100
{
    public const int Sms = 132;
    public const double ClockGHz = 1.83;
    /// <summary>Warp instructions an SM issues per clock: 4 schedulers x 1.</summary>
    public const int IssuePerClock = 4;
    /// <summary>Dense TF32 tensor-core flops per SM per clock (494.7 TFLOP/s / 132 / 1.83 GHz).</summary>
    public const double TensorFlopsPerClock = 2048;
}

/// <summary>One architecture's per-SM limits for the occupancy estimate.</summary>
public sealed record SmLimits(string Arch, int RegistersPerSm, int SharedPerSm, int SharedPerBlock, int ThreadsPerSm, int BlocksPerSm)
{
    /// <summary>H100: 64 K registers, 228 KB of shared memory per SM (227 KB at most per block), 2048 threads, 32 blocks.</summary>
    public static readonly SmLimits Sm90 = new("sm_90", 65536, 228 * 1024, 227 * 1024, 2048, 32);
    /// <summary>A100: 64 K registers, 164 KB (163 KB per block), 2048 threads, 32 blocks.</summary>
    public static readonly SmLimits Sm80 = new("sm_80", 65536, 164 * 1024, 163 * 1024, 2048, 32);

    public static SmLimits For(string arch) => arch switch
    {
        "sm_90" => Sm90,
        "sm_80" => Sm80,
        _ => throw new ArgumentException($"--arch {arch}: sm_90 or sm_80"),
    };

    /// <summary>
    /// Blocks of <paramref name="threads"/> threads that fit on one SM at once (CUDA's occupancy rules, as its
    /// occupancy calculator applies them): registers are allocated per warp in units of 256 and an SM's
    /// register file is four quadrants of RegistersPerSm / 4, each holding whole warps; shared memory per
    /// block is static + dynamic + 1 KB the system reserves per block, in 128-byte units; at most
    /// ThreadsPerSm threads and BlocksPerSm blocks. 0: the block cannot launch (too many registers or too
    /// much shared memory).
    /// </summary>
    public int Blocks(int registers, int sharedBytes, int threads)
    {
        int warps = (threads + 31) / 32;
        int regsPerWarp = (Math.Max(registers, 1) * 32 + 255) / 256 * 256;
        int warpsByRegs = RegistersPerSm / 4 / regsPerWarp * 4;
        int byRegs = warpsByRegs / warps;
        if (sharedBytes > SharedPerBlock) return 0;
        int smem = (sharedBytes + 1024 + 127) / 128 * 128;
        int bySmem = SharedPerSm / smem;
        int byThreads = ThreadsPerSm / (warps * 32);
        return Math.Min(Math.Min(byRegs, bySmem), Math.Min(byThreads, BlocksPerSm));
    }
}
