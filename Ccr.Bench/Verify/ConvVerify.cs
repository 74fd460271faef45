using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>GEMM (all transposes) and conv2d forward / dx / dw / db against their float64 references.</summary>
public sealed class ConvVerify : IVerifySuite
{
    public string Family => "conv";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        var gemms = small
            ? new[] { (1, 1, 1), (7, 33, 65), (65, 17, 9) }
            : new[] { (1, 1, 1), (7, 33, 65), (512, 512, 512), (1000, 300, 77), (77, 1000, 300) };
        foreach (var (m, n, k) in gemms)
            foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                yield return new VerifyCase($"gemm{(ta ? "T" : "N")}{(tb ? "T" : "N")}", $"M{m} N{n} K{k}", 1e-4, 1e-3,
                    d => GemmCase(d, m, n, k, ta, tb));

        // x shape, w shape, bias, stride, padding, dilation
        (int[] X, int[] W, bool Bias, int S, int P, int D)[] convs = small
            ? [ ([1, 1, 5, 5], [1, 1, 3, 3], false, 1, 0, 1), ([2, 2, 7, 5], [3, 2, 3, 3], true, 2, 1, 1),
                      ([1, 2, 6, 7], [2, 2, 3, 3], true, 1, 2, 2), ([2, 3, 4, 3], [2, 3, 1, 1], true, 1, 0, 1) ]
            : [ ([4, 18, 120, 160], [18, 18, 3, 3], false, 1, 1, 1), ([4, 144, 15, 20], [144, 144, 3, 3], false, 1, 1, 1),
                      ([4, 3, 240, 320], [64, 3, 3, 3], false, 2, 1, 1), ([4, 64, 60, 80], [64, 64, 1, 1], true, 1, 0, 1),
                      ([2, 5, 17, 19], [7, 5, 5, 5], true, 2, 2, 1), ([1, 3, 33, 31], [4, 3, 3, 3], true, 1, 2, 2) ];
        foreach (var (xs, ws, bias, s, p, dil) in convs)
        {
            var g = ConvGeom.From(xs, ws, bias ? ws[0] : null, s, p, dil);
            // large reductions (dw, db over N*OH*OW) get the reduction tolerance
            yield return new VerifyCase("conv2d forward", g.ToString(), 1e-4, 1e-3, d => ConvCase(d, g, bias, 0));
            yield return new VerifyCase("conv2d backward input", g.ToString(), 1e-4, 1e-3, d => ConvCase(d, g, bias, 1));
            yield return new VerifyCase("conv2d backward weight", g.ToString(), 1e-3, 1e-3, d => ConvCase(d, g, bias, 2));
            if (bias) yield return new VerifyCase("conv2d backward bias", g.ToString(), 1e-3, 1e-3, d => ConvCase(d, g, bias, 3));
        }
    }

    static (double[], float[]) GemmCase(Device d, int m, int n, int k, bool ta, bool tb)
    {
        var r = new Rng((ulong)(m * 31 + n * 7 + k));
        var a = VerifyData.Floats(r, (long)m * k); var b = VerifyData.Floats(r, (long)k * n); var c = VerifyData.Floats(r, (long)m * n);
        using var scope = new TensorScope();
        var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length); var tC = Tensor.FromArray(d, c, c.Length);
        Gemm.Run(d, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, 0.5f, 0.25f);
        return (Gemm.Reference.Run(VerifyData.D(c), VerifyData.D(a), VerifyData.D(b), m, n, k, ta, tb, 0.5, 0.25), tC.ToArray());
    }

    static (double[], float[]) ConvCase(Device d, ConvGeom g, bool bias, int which)
    {
        var r = new Rng((ulong)(g.N * 1000 + g.Cin * 10 + g.K));
        var x = VerifyData.Floats(r, (long)g.N * g.Cin * g.HW); var w = VerifyData.Floats(r, (long)g.Cout * g.CKK);
        var b = bias ? VerifyData.Floats(r, g.Cout) : null;
        var dy = VerifyData.Floats(r, (long)g.N * g.Cout * g.OHW);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length);
        var tdy = Tensor.FromArray(d, dy, dy.Length);
        switch (which)
        {
            case 0:
            {
                var tb = b != null ? Tensor.FromArray(d, b, b.Length) : null;
                var y = Tensor.Empty(d, dy.Length);
                Conv2d.Forward(d, y.Data, tx.Data, tw.Data, tb?.Data, g);
                return (Conv2d.Reference.Forward(VerifyData.D(x), VerifyData.D(w), b == null ? null : VerifyData.D(b), g), y.ToArray());
            }
            case 1:
            {
                var dx = Tensor.Empty(d, x.Length);
                Conv2d.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g);
                return (Conv2d.Reference.Backward(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(w), g).Dx, dx.ToArray());
            }
            case 2:
            {
                var dw = Tensor.Empty(d, w.Length);
                Conv2d.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g);
                return (Conv2d.Reference.Backward(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(w), g).Dw, dw.ToArray());
            }
            default:
            {
                var db = Tensor.Empty(d, g.Cout);
                Conv2d.BackwardBias(d, db.Data, tdy.Data, g);
                return (Conv2d.Reference.Backward(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(w), g).Db, db.ToArray());
            }
        }
    }
}
