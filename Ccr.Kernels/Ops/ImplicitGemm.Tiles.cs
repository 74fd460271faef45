namespace Ccr.Kernels.Ops;

/// <summary>
/// A block tile as compile-time constants (ILGPU specialises a kernel per struct type, so every size below
/// folds into the instruction stream: loops over a thread's elements unroll and shared-memory offsets become
/// immediates). BM x BN outputs per block of <see cref="Threads"/> threads. fp32: the threads form a
/// (BM / 4 MI) x (BN / 4 MJ) grid and each owns MI x MJ micro tiles of 4 x 4 outputs; TF32: 32 x 32 outputs
/// per warp, MI = MJ = 0.
/// </summary>
internal interface IGemmTileShape
{
    int BM { get; }
    int BN { get; }
    int Threads { get; }
    int MI { get; }
    int MJ { get; }
}

/// <summary>The tile shapes the kernels are compiled for (<see cref="GemmTiles"/> lists them as values).</summary>
internal static class TileShapes
{
    // fp32: 4 x 8 (or 8 x 4) outputs per thread, 8 x 8 on the big tile
    public struct F64x64 : IGemmTileShape { public int BM => 64; public int BN => 64; public int Threads => 128; public int MI => 1; public int MJ => 2; }
    public struct F32x128 : IGemmTileShape { public int BM => 32; public int BN => 128; public int Threads => 128; public int MI => 1; public int MJ => 2; }
    public struct F128x32 : IGemmTileShape { public int BM => 128; public int BN => 32; public int Threads => 128; public int MI => 2; public int MJ => 1; }
    public struct F64x128 : IGemmTileShape { public int BM => 64; public int BN => 128; public int Threads => 256; public int MI => 1; public int MJ => 2; }
    public struct F128x64 : IGemmTileShape { public int BM => 128; public int BN => 64; public int Threads => 256; public int MI => 2; public int MJ => 1; }
    public struct F128x128 : IGemmTileShape { public int BM => 128; public int BN => 128; public int Threads => 256; public int MI => 2; public int MJ => 2; }
    // TF32: one warp per 32 x 32 outputs
    public struct T64x64 : IGemmTileShape { public int BM => 64; public int BN => 64; public int Threads => 128; public int MI => 0; public int MJ => 0; }
    public struct T32x128 : IGemmTileShape { public int BM => 32; public int BN => 128; public int Threads => 128; public int MI => 0; public int MJ => 0; }
    public struct T128x64 : IGemmTileShape { public int BM => 128; public int BN => 64; public int Threads => 256; public int MI => 0; public int MJ => 0; }
    public struct T64x128 : IGemmTileShape { public int BM => 64; public int BN => 128; public int Threads => 256; public int MI => 0; public int MJ => 0; }

    /// <summary>The shape type of <paramref name="t"/> (splits ignored) for precision <paramref name="p"/>.</summary>
    public static Type For(GemmTile t, MathPrecision p) => (p, t.BM, t.BN) switch
    {
        (MathPrecision.Fp32, 64, 64) => typeof(F64x64),
        (MathPrecision.Fp32, 32, 128) => typeof(F32x128),
        (MathPrecision.Fp32, 128, 32) => typeof(F128x32),
        (MathPrecision.Fp32, 64, 128) => typeof(F64x128),
        (MathPrecision.Fp32, 128, 64) => typeof(F128x64),
        (MathPrecision.Fp32, 128, 128) => typeof(F128x128),
        (MathPrecision.Tf32, 64, 64) => typeof(T64x64),
        (MathPrecision.Tf32, 32, 128) => typeof(T32x128),
        (MathPrecision.Tf32, 128, 64) => typeof(T128x64),
        (MathPrecision.Tf32, 64, 128) => typeof(T64x128),
        _ => throw new ArgumentException($"gemm tile {t.BM}x{t.BN} is not one of the {p} tiles ({string.Join(", ", GemmTiles.For(p))})"),
    };

    /// <summary>Threads per block of <paramref name="t"/> at precision <paramref name="p"/> (read once from the
    /// shape types: every GEMM launch asks).</summary>
    public static int Threads(GemmTile t, MathPrecision p) =>
        ThreadsByTile.TryGetValue((p, t.BM, t.BN), out int n) ? n : ((IGemmTileShape)Activator.CreateInstance(For(t, p))!).Threads;

    static readonly Dictionary<(MathPrecision, int, int), int> ThreadsByTile =
        All().ToDictionary(x => (x.Precision, x.Tile.BM, x.Tile.BN), x => ((IGemmTileShape)Activator.CreateInstance(x.Shape)!).Threads);

    /// <summary>Every (precision, tile, shape type) the kernels are compiled for.</summary>
    public static IEnumerable<(MathPrecision Precision, GemmTile Tile, Type Shape)> All() =>
        from p in new[] { MathPrecision.Fp32, MathPrecision.Tf32 }
        from t in GemmTiles.For(p)
        select (p, t, For(t, p));
}
