using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>
/// GEMM and conv2d forward / dx / dw / db against their float64 references. Row names say what runs:
/// on the CPU variant <c>gemm.fp32.*</c> and <c>conv.host.*</c> (host SIMD code); on the CUDA variant
/// <c>mma.m16n8k8</c> (one warp through the fragment registers), <c>gemm.{fp32,tf32}.*</c>,
/// <c>conv.implicit.{fp32,tf32}.{fwd,dx,dw}</c> with the tile the kernels choose (printed with the shape),
/// <c>conv.dw.splitk.{fp32,tf32}</c> with a forced K split, and <c>conv.db</c>. TF32 rows compare with the
/// reference evaluated on tf32-rounded operands (what the tensor cores multiply, exactly), so they are held
/// to the fp32 tolerances; the TF32 bound against unrounded operands is checked in the tests.
/// </summary>
public sealed class ConvVerify : IVerifySuite
{
    public string Family => "conv";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        bool cuda = device.Variant == KernelVariant.Cuda;
        bool tf32 = cuda && device.Accelerator.WarpSize == 32;
        if (tf32) yield return new VerifyCase("mma.m16n8k8", "16x8x8 one warp", 1e-5, 1e-5, MmaCase);

        var gemms = small
            ? new[] { (1, 1, 1), (7, 33, 65), (65, 17, 9) }
            : new[] { (1, 1, 1), (7, 33, 65), (512, 512, 512), (1000, 300, 77), (77, 1000, 300) };
        var precisions = tf32 ? new[] { MathPrecision.Fp32, MathPrecision.Tf32 } : [MathPrecision.Fp32];
        foreach (var p in precisions)
            foreach (var (m, n, k) in gemms)
                foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                    yield return new VerifyCase($"gemm.{Name(p)}.{(ta ? "T" : "N")}{(tb ? "T" : "N")}", $"M{m} N{n} K{k}", 1e-4, 1e-3,
                        d => GemmCase(d, p, m, n, k, ta, tb));

        // x shape, w shape, bias, stride, padding, dilation: HRNet stage 1 and 4, the stem, a 1x1, a decoder
        // 3x3 (at batch 2 and half size, to keep the float64 reference short), and two awkward ones
        (int[] X, int[] W, bool Bias, int S, int P, int D)[] convs = small
            ? [ ([1, 1, 5, 5], [1, 1, 3, 3], false, 1, 0, 1), ([2, 2, 7, 5], [3, 2, 3, 3], true, 2, 1, 1),
                      ([1, 2, 6, 7], [2, 2, 3, 3], true, 1, 2, 2), ([2, 3, 4, 3], [2, 3, 1, 1], true, 1, 0, 1) ]
            : [ ([4, 18, 120, 160], [18, 18, 3, 3], false, 1, 1, 1), ([4, 144, 15, 20], [144, 144, 3, 3], false, 1, 1, 1),
                      ([4, 3, 240, 320], [64, 3, 3, 3], false, 2, 1, 1), ([4, 64, 60, 80], [64, 64, 1, 1], true, 1, 0, 1),
                      ([2, 128, 30, 40], [128, 128, 3, 3], true, 1, 1, 1),
                      ([2, 5, 17, 19], [7, 5, 5, 5], true, 2, 2, 1), ([1, 3, 33, 31], [4, 3, 3, 3], true, 1, 2, 2) ];
        foreach (var (xs, ws, bias, s, pad, dil) in convs)
        {
            var g = ConvGeom.From(xs, ws, bias ? ws[0] : null, s, pad, dil);
            var data = new ConvData(g, bias);
            foreach (var p in precisions)
            {
                string prefix = cuda ? $"conv.implicit.{Name(p)}" : "conv.host";
                string Shape(Convolution.Pass pass) => cuda ? $"{g} | {Convolution.Plan(device, g, pass, p)}" : g.ToString();
                // large reductions (dw over N*OH*OW) get the reduction tolerance
                yield return new VerifyCase(prefix + ".fwd", Shape(Convolution.Pass.Forward), 1e-4, 1e-3, d => ConvCase(d, data, p, 0, null));
                yield return new VerifyCase(prefix + ".dx", Shape(Convolution.Pass.InputGrad), 1e-4, 1e-3, d => ConvCase(d, data, p, 1, null));
                yield return new VerifyCase(prefix + ".dw", Shape(Convolution.Pass.WeightGrad), 1e-3, 1e-3, d => ConvCase(d, data, p, 2, null));
            }
            if (bias) yield return new VerifyCase(cuda ? "conv.db" : "conv.host.db", g.ToString(), 1e-3, 1e-3, d => ConvCase(d, data, MathPrecision.Fp32, 3, null));
        }

        if (!cuda) yield break;
        // a forced K split of the weight gradient, summed in slice order
        var sg = small ? ConvGeom.From([2, 3, 9, 8], [4, 3, 3, 3], null, 1, 1, 1) : ConvGeom.From([4, 18, 120, 160], [18, 18, 3, 3], null, 1, 1, 1);
        var sdata = new ConvData(sg, false);
        foreach (var p in precisions)
        {
            var tile = new GemmTile(32, 128, small ? 3 : 37);
            yield return new VerifyCase($"conv.dw.splitk.{Name(p)}", $"{sg} | {tile}", 1e-3, 1e-3, d => ConvCase(d, sdata, p, 2, tile));
        }
    }

    static string Name(MathPrecision p) => p == MathPrecision.Tf32 ? "tf32" : "fp32";

    static float[] Tf32(float[] v) => Array.ConvertAll(v, Mma.RoundTf32);

    static (double[], float[]) MmaCase(Device d)
    {
        var r = new Rng(16);
        var a = VerifyData.Floats(r, 128); var b = VerifyData.Floats(r, 64); var c = VerifyData.Floats(r, 128);
        return (Mma.Reference16x8x8(a, b, c), Mma.Multiply16x8x8(d, a, b, c));
    }

    static (double[], float[]) GemmCase(Device d, MathPrecision p, int m, int n, int k, bool ta, bool tb)
    {
        var r = new Rng((ulong)(m * 31 + n * 7 + k));
        var a = VerifyData.Floats(r, (long)m * k); var b = VerifyData.Floats(r, (long)k * n); var c = VerifyData.Floats(r, (long)m * n);
        using var scope = new TensorScope();
        var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length); var tC = Tensor.FromArray(d, c, c.Length);
        Gemm.Run(d, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, 0.5f, 0.25f, precision: p);
        var (ar, br) = p == MathPrecision.Tf32 ? (Tf32(a), Tf32(b)) : (a, b);
        return (Gemm.Reference.Run(VerifyData.D(c), VerifyData.D(ar), VerifyData.D(br), m, n, k, ta, tb, 0.5, 0.25), tC.ToArray());
    }

    /// <summary>One conv shape's random tensors and its float64 references (plain and on tf32-rounded
    /// operands), each computed once, on first use, for all the rows that share them.</summary>
    sealed class ConvData
    {
        public readonly ConvGeom G;
        public readonly float[] X, W, Dy;
        public readonly float[]? B;
        readonly Lazy<(double[] Y, double[] Dx, double[] Dw, double[] Db)> _plain, _tf32;

        public ConvData(ConvGeom g, bool bias)
        {
            G = g;
            var r = new Rng((ulong)(g.N * 1000 + g.Cin * 10 + g.K));
            X = VerifyData.Floats(r, (long)g.N * g.Cin * g.HW); W = VerifyData.Floats(r, (long)g.Cout * g.CKK);
            B = bias ? VerifyData.Floats(r, g.Cout) : null;
            Dy = VerifyData.Floats(r, (long)g.N * g.Cout * g.OHW);
            _plain = new(() => Reference(X, W, Dy));
            _tf32 = new(() => Reference(Tf32(X), Tf32(W), Tf32(Dy)));
        }

        (double[], double[], double[], double[]) Reference(float[] x, float[] w, float[] dy)
        {
            var y = Convolution.Reference.Forward(VerifyData.D(x), VerifyData.D(w), B == null ? null : VerifyData.D(B), G);
            var (dx, dw, db) = Convolution.Reference.Backward(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(w), G);
            return (y, dx, dw, db);
        }

        public (double[] Y, double[] Dx, double[] Dw, double[] Db) Expected(MathPrecision p) =>
            p == MathPrecision.Tf32 ? _tf32.Value : _plain.Value;
    }

    static (double[], float[]) ConvCase(Device d, ConvData c, MathPrecision p, int which, GemmTile? tile)
    {
        var g = c.G;
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, c.X, c.X.Length); var tw = Tensor.FromArray(d, c.W, c.W.Length);
        var tdy = Tensor.FromArray(d, c.Dy, c.Dy.Length);
        var e = c.Expected(p);
        switch (which)
        {
            case 0:
            {
                var tb = c.B != null ? Tensor.FromArray(d, c.B, c.B.Length) : null;
                var y = Tensor.Empty(d, c.Dy.Length);
                Convolution.Forward(d, y.Data, tx.Data, tw.Data, tb?.Data, g, tile, p);
                return (e.Y, y.ToArray());
            }
            case 1:
            {
                var dx = Tensor.Empty(d, c.X.Length);
                Convolution.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g, tile, p);
                return (e.Dx, dx.ToArray());
            }
            case 2:
            {
                var dw = Tensor.Empty(d, c.W.Length);
                Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g, tile, p);
                return (e.Dw, dw.ToArray());
            }
            default:
            {
                var db = Tensor.Empty(d, g.Cout);
                Convolution.BackwardBias(d, db.Data, tdy.Data, g);
                return (e.Db, db.ToArray());
            }
        }
    }
}
