using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The CUDA variant's implicit-GEMM kernels on the CPU accelerator (256-thread groups, 32-lane warps, so the
/// TF32 path runs through the emulated fragments): every tile shape of both precisions, forced K splits,
/// awkward sizes, against the float64 references. TF32 results are compared twice: tightly with the reference
/// evaluated on tf32-rounded operands (the products are then exact, so any indexing slip shows), and with the
/// plain reference at the TF32 bound 2^-10 sum |a b|.
/// </summary>
public class ImplicitGemmTests
{
    static Device D => Devices.CudaOnCpu;

    static float[] Tf32(float[] v) => Array.ConvertAll(v, Mma.RoundTf32);
    static double[] Abs(float[] v) => Array.ConvertAll(v, x => Math.Abs((double)x));

    [Fact]
    public void FastDivisionIsExact()
    {
        var r = Rand.New(3);
        var divisors = Enumerable.Range(1, 300).Concat([1 << 10, (1 << 10) + 1, (1 << 16) - 1, 19200, 76800, 1 << 30, int.MaxValue]);
        foreach (int d in divisors)
        {
            var fd = new FastDiv(d);
            foreach (int n in new[] { 0, 1, d - 1, d, d + 1, int.MaxValue, int.MaxValue - 1 })
                if (n >= 0) Assert.True(n / d == fd.Div(n), $"{n} / {d}: got {fd.Div(n)}");
            for (int i = 0; i < 200; i++)
            {
                int n = (int)(r.NextUInt() >> 1);
                Assert.True(n / d == fd.Div(n), $"{n} / {d}: got {fd.Div(n)}");
            }
        }
    }

    [Fact]
    public void TileChoiceFollowsTheShape()
    {
        // HRNet stage-1 3x3 conv forward (Cout 18, batch 4 at 120x160): a 32-row tile wastes least, enough tiles
        Assert.Equal(new GemmTile(32, 128), GemmTiles.Choose(18, 4 * 19200, 162, 1, MathPrecision.Fp32, 132));
        // decoder 256 -> 256 3x3 forward: the big 8x8-per-thread tile fp32, the 128-row tile in TF32
        Assert.Equal(new GemmTile(128, 128), GemmTiles.Choose(256, 4 * 19200, 2304, 1, MathPrecision.Fp32, 132));
        Assert.Equal(new GemmTile(128, 64), GemmTiles.Choose(256, 4 * 19200, 2304, 1, MathPrecision.Tf32, 132));
        // its weight gradient (18 x 162 outputs, K = 76,800): 2 tiles for 132 SMs: K split to the cap
        var dw = GemmTiles.Choose(18, 162, 4 * 19200, 1, MathPrecision.Fp32, 132);
        Assert.Equal((32, 128, GemmTiles.MaxSplits), (dw.BM, dw.BN, dw.Splits));
        // a 144-channel 15x20 layer: 50 tiles, split 6 ways to reach 2 blocks per SM
        Assert.Equal(new GemmTile(32, 128, 6), GemmTiles.Choose(144, 4 * 300, 1296, 1, MathPrecision.Fp32, 132));
        // a short K is never split
        Assert.Equal(1, GemmTiles.Choose(8, 8, 100, 1, MathPrecision.Fp32, 132).Splits);
        var e = Assert.Throws<ArgumentException>(() => GemmTiles.Validate(new GemmTile(16, 16), MathPrecision.Fp32));
        Assert.Contains("16x16", e.Message);
        Assert.Throws<ArgumentException>(() => GemmTiles.Validate(new GemmTile(256, 32), MathPrecision.Fp32));
        Assert.Throws<ArgumentException>(() => GemmTiles.Validate(new GemmTile(128, 128), MathPrecision.Tf32));
    }

    public static TheoryData<MathPrecision, int, int, int, int, int, int, bool, bool> GemmCases => new()
    {
        // precision, BM, BN, splits, M, N, K, transA, transB
        { MathPrecision.Fp32, 64, 64, 1, 70, 33, 37, false, false },
        { MathPrecision.Fp32, 32, 128, 3, 33, 130, 70, true, false },
        { MathPrecision.Fp32, 128, 32, 2, 129, 7, 50, false, true },
        { MathPrecision.Fp32, 128, 128, 2, 131, 130, 40, true, true },
        { MathPrecision.Fp32, 64, 128, 1, 3, 131, 19, false, true },
        { MathPrecision.Fp32, 128, 64, 3, 130, 65, 49, true, false },
        { MathPrecision.Tf32, 64, 64, 1, 65, 9, 21, false, false },
        { MathPrecision.Tf32, 32, 128, 2, 5, 131, 40, true, true },
        { MathPrecision.Tf32, 128, 64, 1, 130, 3, 17, true, false },
        { MathPrecision.Tf32, 64, 128, 3, 66, 70, 45, false, true },
    };

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void GemmMatchesReferenceForEveryTile(MathPrecision p, int bm, int bn, int splits, int m, int n, int k, bool ta, bool tb)
    {
        var r = Rand.New(m * 131 + n * 7 + k);
        var a = Rand.Floats(r, (long)m * k); var b = Rand.Floats(r, (long)k * n); var c0 = Rand.Floats(r, (long)m * n);
        using var scope = new TensorScope();
        var tA = Tensor.FromArray(D, a, a.Length); var tB = Tensor.FromArray(D, b, b.Length); var tC = Tensor.FromArray(D, c0, c0.Length);
        var tile = new GemmTile(bm, bn, splits);
        Gemm.Run(D, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, 0.5f, -0.25f, tile, p);
        var got = tC.ToArray();
        string what = $"gemm {p} {tile} M{m} N{n} K{k} transA {ta} transB {tb}";
        if (p == MathPrecision.Fp32)
        {
            Tol.Close(Gemm.Reference.Run(Rand.D(c0), Rand.D(a), Rand.D(b), m, n, k, ta, tb, 0.5, -0.25), got, 1e-5, 1e-4, what);
            return;
        }
        Tol.Close(Gemm.Reference.Run(Rand.D(c0), Rand.D(Tf32(a)), Rand.D(Tf32(b)), m, n, k, ta, tb, 0.5, -0.25), got, 1e-5, 1e-4, what + " vs tf32 operands");
        var bound = Gemm.Reference.Run(null, Abs(a), Abs(b), m, n, k, ta, tb, 0.5);
        Tol.Close(Gemm.Reference.Run(Rand.D(c0), Rand.D(a), Rand.D(b), m, n, k, ta, tb, 0.5, -0.25), got,
            Math.Pow(2, -10) * bound.Max() + 1e-5, 0, what + " vs fp32 operands");
    }

    public static TheoryData<MathPrecision, int, int, int, int[], int[], int, int, int> ConvCases => new()
    {
        // precision, BM, BN, splits, x shape, w shape, stride, padding, dilation (the tile the kernels choose
        // themselves runs in Conv2dTests)
        { MathPrecision.Fp32, 64, 64, 1, [2, 3, 7, 5], [5, 3, 3, 3], 2, 1, 1 },
        { MathPrecision.Fp32, 32, 128, 3, [1, 2, 8, 9], [3, 2, 3, 3], 1, 2, 2 },
        { MathPrecision.Fp32, 128, 32, 2, [2, 4, 5, 6], [3, 4, 1, 1], 2, 0, 1 },
        { MathPrecision.Fp32, 128, 128, 1, [2, 3, 9, 8], [5, 3, 3, 3], 1, 1, 1 },
        { MathPrecision.Fp32, 64, 128, 2, [1, 3, 11, 7], [4, 3, 3, 3], 2, 1, 2 },
        { MathPrecision.Fp32, 128, 64, 1, [2, 2, 6, 9], [3, 2, 5, 5], 3, 2, 1 },
        { MathPrecision.Tf32, 64, 64, 2, [2, 2, 7, 6], [3, 2, 3, 3], 2, 1, 1 },
        { MathPrecision.Tf32, 128, 64, 1, [1, 2, 9, 9], [3, 2, 5, 5], 2, 2, 1 },
        { MathPrecision.Tf32, 64, 128, 3, [2, 5, 4, 3], [6, 5, 1, 1], 1, 0, 1 },
        // TF32 32x128 runs in the GEMM cases and in the split weight-gradient test
    };

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void ConvPassesMatchReferenceForEveryTile(MathPrecision p, int bm, int bn, int splits, int[] xs, int[] ws, int s, int pad, int dil)
    {
        var g = ConvGeom.From(xs, ws, ws[0], s, pad, dil);
        var tile = new GemmTile(bm, bn, splits);
        var r = Rand.New(g.N * 1000 + g.Cin * 100 + g.K * 10 + s);
        var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var w = Rand.Floats(r, (long)g.Cout * g.CKK);
        var bias = Rand.Floats(r, g.Cout); var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(D, x, x.Length); var tw = Tensor.FromArray(D, w, w.Length);
        var tb = Tensor.FromArray(D, bias, bias.Length); var tdy = Tensor.FromArray(D, dy, dy.Length);
        var y = Tensor.Full(D, float.NaN, dy.Length); var dx = Tensor.Full(D, float.NaN, x.Length); var dw = Tensor.Full(D, float.NaN, w.Length);
        Convolution.Forward(D, y.Data, tx.Data, tw.Data, tb.Data, g, tile, p);
        Convolution.BackwardInput(D, dx.Data, tdy.Data, tw.Data, g, tile, p);
        Convolution.BackwardWeight(D, dw.Data, tdy.Data, tx.Data, g, tile, p);
        string what = $"conv {p} {tile} {g}";
        bool tf32 = p == MathPrecision.Tf32;
        // the reference on the operands the kernel multiplies: tf32-rounded when TF32 (products then exact)
        var (xr, wr, dyr) = tf32 ? (Tf32(x), Tf32(w), Tf32(dy)) : (x, w, dy);
        var yRef = Convolution.Reference.Forward(Rand.D(xr), Rand.D(wr), Rand.D(bias), g);
        var (dxRef, dwRef, _) = Convolution.Reference.Backward(Rand.D(dyr), Rand.D(xr), Rand.D(wr), g);
        Tol.Close(yRef, y.ToArray(), 1e-5, 1e-4, what + " y");
        Tol.Close(dxRef, dx.ToArray(), 1e-5, 1e-4, what + " dx");
        Tol.Close(dwRef, dw.ToArray(), 1e-4, 1e-4, what + " dw");
        if (!tf32) return;
        // against the unrounded float64 reference, at the TF32 bound 2^-10 sum |a b| (+ fp32 slack)
        var yAbs = Convolution.Reference.Forward(Abs(x), Abs(w), null, g);
        var (dxAbs, dwAbs, _) = Convolution.Reference.Backward(Abs(dy), Abs(x), Abs(w), g);
        var (dxPlain, dwPlain, _) = Convolution.Reference.Backward(Rand.D(dy), Rand.D(x), Rand.D(w), g);
        double u = Math.Pow(2, -10);
        Tol.Close(Convolution.Reference.Forward(Rand.D(x), Rand.D(w), Rand.D(bias), g), y.ToArray(), u * yAbs.Max() + 1e-5, 0, what + " y at tf32 bound");
        Tol.Close(dxPlain, dx.ToArray(), u * dxAbs.Max() + 1e-5, 0, what + " dx at tf32 bound");
        Tol.Close(dwPlain, dw.ToArray(), u * dwAbs.Max() + 1e-5, 0, what + " dw at tf32 bound");
    }

    [Theory]
    [InlineData(MathPrecision.Fp32)]
    [InlineData(MathPrecision.Tf32)]
    public void SplitWeightGradientIsBitIdenticalRunToRun(MathPrecision p)
    {
        // the ordered sum of K slices: no atomics, so repeated runs agree bit for bit (--resume relies on it)
        var g = ConvGeom.From([2, 3, 9, 8], [4, 3, 3, 3], null, 1, 1, 1);
        var r = Rand.New(99);
        var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(D, x, x.Length); var tdy = Tensor.FromArray(D, dy, dy.Length);
        var tile = new GemmTile(32, 128, 5);
        uint[] Run()
        {
            var dw = Tensor.Full(D, float.NaN, g.Cout * g.CKK);
            Convolution.BackwardWeight(D, dw.Data, tdy.Data, tx.Data, g, tile, p);
            return Array.ConvertAll(dw.ToArray(), BitConverter.SingleToUInt32Bits);
        }
        var first = Run();
        Assert.Equal(first, Run());
        // and the split changes only the summation order: close to the unsplit result
        var whole = Tensor.Full(D, float.NaN, g.Cout * g.CKK);
        Convolution.BackwardWeight(D, whole.Data, tdy.Data, tx.Data, g, tile with { Splits = 1 }, p);
        Tol.Close(Rand.D(whole.ToArray()), Array.ConvertAll(first, BitConverter.UInt32BitsToSingle), 1e-5, 1e-5, $"dw {p} split 5 vs 1");
    }

    [Fact]
    public void UnsupportedTileIsRejectedBeforeLaunch()
    {
        var g = ConvGeom.From([1, 1, 4, 4], [1, 1, 3, 3], null, 1, 1, 1);
        using var scope = new TensorScope();
        var x = Tensor.Zeros(D, 16); var w = Tensor.Zeros(D, 9); var y = Tensor.Zeros(D, 16);
        var e = Assert.Throws<ArgumentException>(() => Convolution.Forward(D, y.Data, x.Data, w.Data, null, g, new GemmTile(48, 64)));
        Assert.Contains("48x64", e.Message);
    }
}
