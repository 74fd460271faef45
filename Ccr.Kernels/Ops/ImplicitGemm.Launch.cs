using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels.Ops;

internal static partial class ImplicitGemm
{
    // ---------------------------------------------------------------- split K: ordered sum of the partials

    // C (z, i, j) = sum over slices s = 0, 1, ... of ws[z * Splits + s][i][j], always in that order; grid y = z,
    // grid-stride over the M N outputs of one product (32-bit indices: the launcher checks M N < 2^31)
    static void SplitSumKernel<TC>(ArrayView<float> c, ArrayView<float> ws, ArrayView<float> bias, TC sc, GemmLaunch t, FastDiv byN)
        where TC : struct, IGemmOutput
    {
        int mn = t.M * t.N, z = ILGPU.Grid.IdxY;
        long slice = mn, first = (long)z * t.Splits * mn;
        int stride = ILGPU.Grid.DimX * Group.DimX;
        for (int r = ILGPU.Grid.IdxX * Group.DimX + Group.IdxX; r < mn; r += stride)
        {
            int i = byN.Div(r), j = r - i * t.N;
            long at = first + r;
            float s = 0f;
            for (int k = 0; k < t.Splits; k++, at += slice) s += ws[at];
            sc.Store(c, bias, z, i, j, s);
        }
    }

    // ---------------------------------------------------------------- launcher

    sealed class Loaded<TT, TA, TB, TC>(Device d)
        where TT : struct, IGemmTileShape where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        // compiled on first use: each specialisation costs a JIT (tens of ms on a GPU, more on the CPU accelerator)
        public readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>>
            Fp32 = new(() => d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>(Fp32Kernel<TT, TA, TB, TC>, Bounds<TT>(d))),
            Tf32 = new(() => d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>(Tf32Kernel<TT, TA, TB, TC>, Bounds<TT>(d)));
    }

    /// <summary>
    /// Launch bounds of a tile shape on a GPU (<c>.maxntid</c>, <c>.minnctapersm</c>): a block of T threads, and
    /// enough blocks per SM that each thread keeps at most 128 registers (65,536 / 128 / T blocks). Without
    /// them ptxas hoists a whole stage's shared loads and spends up to 255 registers, which leaves one block
    /// per SM and spills; with them the kernels fit 128 registers with no spill (<c>Ccr.Bench sass</c>).
    /// The CPU accelerator ignores them (null there).
    /// </summary>
    public static KernelSpecialization? Bounds<TT>(Device d) where TT : struct, IGemmTileShape =>
        d.IsCuda ? LaunchBounds<TT>() : null;

    /// <summary><see cref="Bounds{TT}"/> for any accelerator (the SASS report compiles with it).</summary>
    public static KernelSpecialization LaunchBounds<TT>() where TT : struct, IGemmTileShape
    {
        int threads = default(TT).Threads;
        return new KernelSpecialization(threads, Math.Max(1, 65536 / 128 / threads));
    }

    // the ordered sum depends only on the output: one per output type, shared by its operand combinations
    sealed class LoadedSum<TC>(Device d) where TC : struct, IGemmOutput
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TC, GemmLaunch, FastDiv> SplitSum =
            d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, TC, GemmLaunch, FastDiv>(SplitSumKernel);
    }

    /// <summary>Shared memory (floats) a launch of <paramref name="tile"/> needs: two stages of both operand
    /// tiles, plus the TF32 emulation scratch off a GPU.</summary>
    public static int SharedFloats(GemmTile tile, MathPrecision precision, bool emulated)
    {
        bool tf32 = precision == MathPrecision.Tf32;
        int pad = tf32 ? 8 : 4, threads = TileShapes.Threads(tile, precision);
        int stages = 2 * BK * (tile.BM + pad + tile.BN + pad);
        // fp32: two more B rows, which the stage loop's last view step points into (never read)
        return stages + (tf32 ? (emulated ? threads / 32 * WarpScratch : 0) : 2 * (tile.BN + pad));
    }

    /// <summary>
    /// C (batch x M x N) = A B through <paramref name="sc"/>: A element (i, k) = <paramref name="la"/>'s gather from
    /// <paramref name="a"/>, B element (k, j) = <paramref name="lb"/>'s gather (read as (j, k)) from <paramref name="b"/>.
    /// <paramref name="tile"/> null: <see cref="GemmTiles.Choose"/> for <paramref name="precision"/> (fp32 on the
    /// CUDA cores or TF32 on the tensor cores) and the device's <see cref="Device.Multiprocessors"/>. Sizes must fit int32.
    /// </summary>
    public static void Run<TA, TB, TC>(Device d, Buf<float> c, Buf<float> a, Buf<float> b, Buf<float>? bias,
                                       TA la, TB lb, TC sc, int batch, int m, int n, int k, GemmTile? tile = null,
                                       MathPrecision precision = MathPrecision.Fp32)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        if (m == 0 || n == 0 || batch == 0) return;
        if ((long)m * n > int.MaxValue)
            throw new ArgumentException($"gemm: C of {m} x {n} is too large for the CUDA variant's 32-bit indexing");
        var tl = tile ?? GemmTiles.Choose(m, n, k, batch, precision, d.Multiprocessors);
        GemmTiles.Validate(tl, precision);
        bool tf32 = precision == MathPrecision.Tf32;
        int threads = TileShapes.Threads(tl, precision);
        if (tf32 && d.Accelerator.WarpSize != 32)
            throw new NotSupportedException($"tf32 GEMM needs 32-lane warps; {d.Accelerator.Name} has {d.Accelerator.WarpSize}");
        if (tf32 && d.Accelerator is CudaAccelerator cu && cu.Architecture.Major < 8)
            throw new NotSupportedException($"tf32 needs a compute capability 8.0 GPU (mma.sync tf32); {cu.Name} is {cu.Architecture}");
        if (d.Accelerator.MaxNumThreadsPerGroup < threads)
            throw new NotSupportedException($"gemm tile {tl}: needs {threads} threads per group, {d.Accelerator.Name} allows {d.Accelerator.MaxNumThreadsPerGroup}");

        // K slices of whole stages; drop slices that would be empty
        int stepsK = (k + BK - 1) / BK;
        int splits = Math.Clamp(tl.Splits, 1, Math.Max(1, stepsK));
        int chunk = (stepsK + splits - 1) / splits * BK;
        splits = k == 0 ? 1 : (k + chunk - 1) / chunk;
        if (k == 0) chunk = BK;
        if ((long)batch * splits > 65535)
            throw new ArgumentException($"gemm: batch {batch} x {splits} K slices exceeds the grid's z limit (65535)");

        var t = new GemmLaunch { M = m, N = n, K = k, Batch = batch, Splits = splits, KChunk = chunk, BySplits = new FastDiv(splits) };
        int floats = SharedFloats(tl, precision, emulated: !d.IsCuda);
        if (floats * 4L > d.Accelerator.MaxSharedMemoryPerGroup)
            throw new NotSupportedException($"gemm tile {tl}: needs {floats * 4L} bytes of shared memory, {d.Accelerator.Name} allows {d.Accelerator.MaxSharedMemoryPerGroup}");
        var shared = SharedMemoryConfig.RequestDynamic<float>(floats);
        var grid = new Index3D((n + tl.BN - 1) / tl.BN, (m + tl.BM - 1) / tl.BM, batch * splits);
        var config = new KernelConfig(grid, new Index3D(threads, 1, 1), shared);

        var main = Kernel(d, tl, precision, la, lb, sc);
        var biasView = bias is { } bb ? bb.View : c.View; // read only by outputs that have a bias
        if (splits == 1)
        {
            main(config, c.View, a.View, b.View, biasView, la, lb, sc, t);
            return;
        }
        using var ws = d.Pool.Rent((long)batch * splits * m * n * 4);
        var wsv = new Buf<float>(ws, 0, (long)batch * splits * m * n);
        main(config, wsv.View, a.View, b.View, biasView, la, lb, sc, t);
        int groupSize = d.GroupSize;
        int blocks = (int)Math.Clamp(((long)m * n + groupSize - 1) / groupSize, 1, Math.Max(1, 4 * d.Multiprocessors));
        var sumConfig = new KernelConfig(new Index3D(blocks, batch, 1), new Index3D(groupSize, 1, 1));
        d.Kernels(static d => new LoadedSum<TC>(d)).SplitSum(sumConfig, c.View, wsv.View, biasView, sc, t, new FastDiv(n));
    }

    // the launcher of (tile shape, precision) for these operand types: one specialisation per shape type
    static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>
        Kernel<TA, TB, TC>(Device d, GemmTile tl, MathPrecision p, TA la, TB lb, TC sc)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        bool tf32 = p == MathPrecision.Tf32;
        return (p, tl.BM, tl.BN) switch
        {
            (MathPrecision.Fp32, 64, 64) => d.Kernels(static d => new Loaded<TileShapes.F64x64, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Fp32, 32, 128) => d.Kernels(static d => new Loaded<TileShapes.F32x128, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Fp32, 128, 32) => d.Kernels(static d => new Loaded<TileShapes.F128x32, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Fp32, 64, 128) => d.Kernels(static d => new Loaded<TileShapes.F64x128, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Fp32, 128, 64) => d.Kernels(static d => new Loaded<TileShapes.F128x64, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Fp32, 128, 128) => d.Kernels(static d => new Loaded<TileShapes.F128x128, TA, TB, TC>(d)).Fp32.Value,
            (MathPrecision.Tf32, 64, 64) => d.Kernels(static d => new Loaded<TileShapes.T64x64, TA, TB, TC>(d)).Tf32.Value,
            (MathPrecision.Tf32, 32, 128) => d.Kernels(static d => new Loaded<TileShapes.T32x128, TA, TB, TC>(d)).Tf32.Value,
            (MathPrecision.Tf32, 128, 64) => d.Kernels(static d => new Loaded<TileShapes.T128x64, TA, TB, TC>(d)).Tf32.Value,
            (MathPrecision.Tf32, 64, 128) => d.Kernels(static d => new Loaded<TileShapes.T64x128, TA, TB, TC>(d)).Tf32.Value,
            _ => throw new ArgumentException($"gemm tile {tl.BM}x{tl.BN} is not one of the {p} tiles"),
        };
    }
}
