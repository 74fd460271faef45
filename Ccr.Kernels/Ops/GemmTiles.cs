namespace Ccr.Kernels.Ops;


/// <summary>One implicit-GEMM launch shape: a BM x BN block tile of C, and the number of slices the
/// reduction (K) is split into (1: none). Splits &gt; 1 write per-slice partial tiles to a workspace that a
/// second kernel sums in slice order, so the result does not depend on scheduling.</summary>
internal readonly record struct GemmTile(int BM, int BN, int Splits = 1)
{
    public override string ToString() => Splits > 1 ? $"{BM}x{BN} split {Splits}" : $"{BM}x{BN}";
}

/// <summary>
/// Tile shapes the kernels support and the choice among them for one GEMM shape. fp32 tiles have 256
/// threads with 4x4 outputs each, or 8x8 for the 128x128 tile; TF32 tiles are 32x32 warp tiles (2 x 4
/// <c>mma.m16n8k8</c> per k-step of 8), 4 or 8 warps. The HRNet / decoder convolutions are GEMMs with M = 18..256 output (or input) channels,
/// N = batch x pixels (up to 4 x 240 x 320) and K = Cin x k x k, or, for weight gradients, small M x N
/// (Cout x Cin k k) with K = batch x pixels; so the tiles come in tall, square and wide forms.
/// </summary>
internal static class GemmTiles
{
    public static readonly GemmTile[] Fp32 = [new(64, 64), new(32, 128), new(128, 32), new(64, 128), new(128, 64), new(128, 128)];
    public static readonly GemmTile[] Tf32 = [new(64, 64), new(32, 128), new(128, 64), new(64, 128)];

    /// <summary>Reduction depth of one shared-memory stage (both precisions).</summary>
    public const int BK = 16;
    /// <summary>Largest number of K slices (the ordered final sum reads this many partials per output).</summary>
    public const int MaxSplits = 128;
    /// <summary>Fewest BK-deep steps a K slice keeps, so a slice's work outweighs its partial tile's traffic.</summary>
    public const int MinStepsPerSplit = 8;

    public static GemmTile[] For(MathPrecision p) => p == MathPrecision.Tf32 ? Tf32 : Fp32;

    /// <summary>
    /// The tile for C (M x N) of <paramref name="batch"/> products with reduction depth K, on a device with
    /// <paramref name="multiprocessors"/> SMs:
    /// 1. Shape: minimise padded work x (1 + 16 (1/BM + 1/BN)). Padded work is the MACs of the whole
    ///    tiles covering C (an 18-row C wastes 44% of a 32-row tile and 72% of a 64-row one); the second
    ///    factor charges the operand loads per MAC, (BM + BN) / (BM BN), so among tiles that waste the
    ///    same a larger, squarer one wins. Ties keep the earlier (listed) tile.
    /// 2. Split K when the tiles cannot fill the device (fewer than two blocks per SM, e.g. a weight
    ///    gradient: 18 x 162 outputs, K = 76,800): enough slices for two blocks per SM, each slice at
    ///    least <see cref="MinStepsPerSplit"/> stages deep, at most <see cref="MaxSplits"/>.
    /// </summary>
    public static GemmTile Choose(long m, long n, long k, int batch, MathPrecision precision, int multiprocessors)
    {
        GemmTile best = default;
        double bestScore = double.MaxValue;
        foreach (var t in For(precision))
        {
            double padded = (double)Ceil(m, t.BM) * t.BM * Ceil(n, t.BN) * t.BN;
            double score = padded * (1 + 16.0 * (1.0 / t.BM + 1.0 / t.BN));
            if (score < bestScore) { bestScore = score; best = t; }
        }
        long tiles = Ceil(m, best.BM) * Ceil(n, best.BN) * Math.Max(1, batch);
        long target = 2L * Math.Max(1, multiprocessors);
        long steps = Ceil(k, BK);
        int splits = 1;
        if (tiles < target && steps >= 2 * MinStepsPerSplit)
            splits = (int)Math.Clamp(Math.Min(Ceil(target, tiles), steps / MinStepsPerSplit), 1, MaxSplits);
        return best with { Splits = splits };
    }

    /// <summary>Throws unless <paramref name="t"/> is a tile the <paramref name="p"/> kernels support.</summary>
    public static void Validate(GemmTile t, MathPrecision p)
    {
        if (Array.IndexOf(For(p), t with { Splits = 1 }) < 0)
            throw new ArgumentException($"gemm tile {t.BM}x{t.BN} is not one of the {p} tiles ({string.Join(", ", For(p))})");
        if (t.Splits < 1 || t.Splits > MaxSplits)
            throw new ArgumentException($"gemm tile splits {t.Splits} outside [1, {MaxSplits}]");
    }

    static long Ceil(long a, long b) => (a + b - 1) / b;
}
