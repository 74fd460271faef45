using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;

namespace Ccr.Bench.Verify;

/// <summary>Batch norm, resizing, channel concat, L2 normalisation and reductions against their
/// float64 references, at the shapes HRNet-W18 meets at batch 4 on 480x640 inputs.</summary>
public sealed class NormVerify : IVerifySuite
{
    public string Family => "norm";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        var bn = small ? new[] { (1, 1, 3, 5), (2, 3, 5, 7) } : new[] { (4, 18, 120, 160), (4, 144, 15, 20), (1, 3, 7, 9) };
        foreach (var (n, c, h, w) in bn)
        {
            yield return new VerifyCase("batchnorm train fwd+bwd", $"[{n}, {c}, {h}, {w}]", 1e-4, 1e-3, d => BatchNormTrain(d, n, c, h, w));
            yield return new VerifyCase("batchnorm eval fwd+bwd", $"[{n}, {c}, {h}, {w}]", 1e-4, 1e-3, d => BatchNormEval(d, n, c, h, w));
        }
        var rs = small ? new[] { (1, 2, 5, 7, 9, 12), (2, 1, 11, 13, 4, 5) }
                       : new[] { (4, 18, 30, 40, 120, 160), (4, 18, 120, 160, 30, 40), (1, 3, 7, 11, 13, 5) };
        foreach (var (n, c, ih, iw, oh, ow) in rs)
        {
            string shape = $"[{n}, {c}, {ih}, {iw}]->{oh}x{ow}";
            yield return new VerifyCase("bilinear fwd+bwd", shape, 1e-5, 1e-4, d => ResizeCase(d, n * c, ih, iw, oh, ow, true));
            yield return new VerifyCase("nearest fwd+bwd", shape, 1e-5, 1e-4, d => ResizeCase(d, n * c, ih, iw, oh, ow, false));
            yield return new VerifyCase("nearest labels", shape, 0, 0, d => LabelsCase(d, n * c, ih, iw, oh, ow));
        }
        int[] cs = small ? [1, 3, 2] : [18, 36, 72, 144];
        var (cn, chh, cww) = small ? (2, 3, 5) : (4, 120, 160);
        yield return new VerifyCase("concat fwd+bwd", $"{cn}x[{string.Join(",", cs)}]x{chh}x{cww}", 0, 0, d => ConcatCase(d, cn, cs, chh, cww));
        var (ln, lc, lh, lw) = small ? (2, 5, 3, 7) : (4, 128, 120, 160);
        yield return new VerifyCase("l2normalize fwd+bwd", $"[{ln}, {lc}, {lh}, {lw}]", 1e-4, 1e-3, d => L2Case(d, ln, lc, lh, lw));
        foreach (int len in small ? new[] { 1, 1000 } : new[] { 1, 1 << 20, 1_000_003 })
            yield return new VerifyCase("sum, mean", $"[{len}]", 1e-4, 1e-4, d => SumCase(d, len));
        var (sn, sc, shw) = small ? (2, 3, 7) : (4, 144, 300);
        yield return new VerifyCase("sum per channel", $"[{sn}, {sc}, {shw}]", 1e-4, 1e-4, d => PerChannelCase(d, sn, sc, shw));
    }

    static (double[], float[]) BatchNormTrain(Device d, int n, int c, int h, int w)
    {
        var r = new Rng((ulong)(n * c * h * w));
        int hw = h * w; long len = (long)n * c * hw;
        var x = VerifyData.Floats(r, len, -1.5f, 2.5f); var dy = VerifyData.Floats(r, len);
        var wt = VerifyData.Floats(r, c, 0.5f, 1.5f); var b = VerifyData.Floats(r, c);
        var rm = VerifyData.Floats(r, c, -0.2f, 0.2f); var rv = VerifyData.Floats(r, c, 0.5f, 1.5f);
        var e = BatchNorm.Reference.ForwardTraining(VerifyData.D(x), VerifyData.D(wt), VerifyData.D(b), VerifyData.D(rm), VerifyData.D(rv), n, c, hw, 0.1, 1e-5);
        var (edx, edw, edb) = BatchNorm.Reference.BackwardTraining(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(wt), n, c, hw, 1e-5);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w); var tw = Tensor.FromArray(d, wt, c); var tb = Tensor.FromArray(d, b, c);
        var trm = Tensor.FromArray(d, rm, c); var trv = Tensor.FromArray(d, rv, c); var tdy = Tensor.FromArray(d, dy, n, c, h, w);
        var mean = Tensor.Empty(d, c); var inv = Tensor.Empty(d, c); var y = Tensor.Empty(d, n, c, h, w);
        var dx = Tensor.Empty(d, n, c, h, w); var dw = Tensor.Empty(d, c); var db = Tensor.Empty(d, c);
        BatchNorm.Stats(d, mean.Data, inv.Data, trm.Data, trv.Data, tx.Data, n, c, hw, 0.1f, 1e-5f);
        BatchNorm.Normalize(d, y.Data, tx.Data, mean.Data, inv.Data, tw.Data, tb.Data, n, c, hw);
        BatchNorm.Backward(d, dx.Data, dw.Data, db.Data, tdy.Data, tx.Data, mean.Data, inv.Data, tw.Data, n, c, hw, true);
        return (Cat(e.Y, e.RunningMean, e.RunningVar, edx, edw, edb),
                Cat(y.ToArray(), trm.ToArray(), trv.ToArray(), dx.ToArray(), dw.ToArray(), db.ToArray()));
    }

    static (double[], float[]) BatchNormEval(Device d, int n, int c, int h, int w)
    {
        var r = new Rng((ulong)(n * c * h * w) + 1);
        int hw = h * w; long len = (long)n * c * hw;
        var x = VerifyData.Floats(r, len, -1.5f, 2.5f); var dy = VerifyData.Floats(r, len);
        var wt = VerifyData.Floats(r, c, 0.5f, 1.5f); var b = VerifyData.Floats(r, c);
        var rm = VerifyData.Floats(r, c, -0.2f, 0.2f); var rv = VerifyData.Floats(r, c, 0.5f, 1.5f);
        var ey = BatchNorm.Reference.ForwardEval(VerifyData.D(x), VerifyData.D(wt), VerifyData.D(b), VerifyData.D(rm), VerifyData.D(rv), n, c, hw, 1e-5);
        var (edx, edw, edb) = BatchNorm.Reference.BackwardEval(VerifyData.D(dy), VerifyData.D(x), VerifyData.D(wt), VerifyData.D(rm), VerifyData.D(rv), n, c, hw, 1e-5);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w); tx.RequiresGrad = true;
        var tw = Tensor.FromArray(d, wt, c); tw.RequiresGrad = true;
        var tb = Tensor.FromArray(d, b, c); tb.RequiresGrad = true;
        var y = F.BatchNorm2d(tx, tw, tb, Tensor.FromArray(d, rm, c), Tensor.FromArray(d, rv, c), training: false);
        y.Backward(Tensor.FromArray(d, dy, n, c, h, w));
        var got = Cat(y.ToArray(), tx.Grad!.ToArray(), tw.Grad!.ToArray(), tb.Grad!.ToArray());
        tx.Grad.Dispose(); tw.Grad.Dispose(); tb.Grad.Dispose();
        return (Cat(ey, edx, edw, edb), got);
    }

    static (double[], float[]) ResizeCase(Device d, int p, int ih, int iw, int oh, int ow, bool bilinear)
    {
        var r = new Rng((ulong)(p * ih * oh) + (bilinear ? 1UL : 2UL));
        var x = VerifyData.Floats(r, (long)p * ih * iw); var dy = VerifyData.Floats(r, (long)p * oh * ow);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var tdy = Tensor.FromArray(d, dy, dy.Length);
        var y = Tensor.Empty(d, dy.Length); var dx = Tensor.Empty(d, x.Length);
        double[] ey, edx;
        if (bilinear)
        {
            Resize.Bilinear(d, y.Data, tx.Data, p, ih, iw, oh, ow);
            Resize.BilinearBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
            ey = Resize.Reference.Bilinear(VerifyData.D(x), p, ih, iw, oh, ow);
            edx = Resize.Reference.BilinearBackward(VerifyData.D(dy), p, ih, iw, oh, ow);
        }
        else
        {
            Resize.Nearest(d, y.Data, tx.Data, p, ih, iw, oh, ow);
            Resize.NearestBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
            ey = Resize.Reference.Nearest(VerifyData.D(x), p, ih, iw, oh, ow);
            edx = Resize.Reference.NearestBackward(VerifyData.D(dy), p, ih, iw, oh, ow);
        }
        return (Cat(ey, edx), Cat(y.ToArray(), dx.ToArray()));
    }

    static (double[], float[]) LabelsCase(Device d, int p, int ih, int iw, int oh, int ow)
    {
        var r = new Rng((ulong)(p * iw * ow));
        var x = new int[(long)p * ih * iw];
        for (int i = 0; i < x.Length; i++) x[i] = r.NextInt(40);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var y = Tensor.Empty(d, DType.I32, p * oh * ow);
        Resize.NearestLabels(d, y.IntData, tx.IntData, p, ih, iw, oh, ow);
        var e = Resize.Reference.NearestLabels(x, p, ih, iw, oh, ow);
        return (Array.ConvertAll(e, v => (double)v), Array.ConvertAll(y.ToIntArray(), v => (float)v));
    }

    static (double[], float[]) ConcatCase(Device d, int n, int[] cs, int h, int w)
    {
        var r = new Rng(17);
        int hw = h * w, total = cs.Sum();
        var xs = cs.Select(c => VerifyData.Floats(r, (long)n * c * hw)).ToArray();
        var dy = VerifyData.Floats(r, (long)n * total * hw);
        using var scope = new TensorScope();
        var ts = xs.Select((x, i) => { var t = Tensor.FromArray(d, x, n, cs[i], h, w); t.RequiresGrad = true; return t; }).ToArray();
        var y = F.Concat(ts);
        y.Backward(Tensor.FromArray(d, dy, n, total, h, w));
        var exp = new List<double[]> { ShapeOps.Reference.Concat(xs.Select(VerifyData.D).ToArray(), cs, n, hw) };
        var got = new List<float[]> { y.ToArray() };
        for (int i = 0, off = 0; i < cs.Length; off += cs[i], i++)
        {
            exp.Add(ShapeOps.Reference.Slice(VerifyData.D(dy), total, off, cs[i], n, hw));
            got.Add(ts[i].Grad!.ToArray());
            ts[i].Grad!.Dispose();
        }
        return (Cat(exp.ToArray()), Cat(got.ToArray()));
    }

    static (double[], float[]) L2Case(Device d, int n, int c, int h, int w)
    {
        var r = new Rng(23);
        int hw = h * w;
        var x = VerifyData.Floats(r, (long)n * c * hw); var dy = VerifyData.Floats(r, x.Length);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w); tx.RequiresGrad = true;
        var y = F.L2Normalize(tx);
        y.Backward(Tensor.FromArray(d, dy, n, c, h, w));
        var got = Cat(y.ToArray(), tx.Grad!.ToArray());
        tx.Grad.Dispose();
        return (Cat(ShapeOps.Reference.L2Normalize(VerifyData.D(x), n, c, hw, 1e-12),
                    ShapeOps.Reference.L2NormalizeBackward(VerifyData.D(dy), VerifyData.D(x), n, c, hw, 1e-12)), got);
    }

    static (double[], float[]) SumCase(Device d, int len)
    {
        var r = new Rng((ulong)len + 5);
        var x = VerifyData.Floats(r, len, -0.5f, 1f);
        double s = Reductions.Reference.Sum(VerifyData.D(x));
        using var scope = new TensorScope();
        var t = Tensor.FromArray(d, x, len);
        // Relative error of a float32 sum grows with length; compare the sum scaled to a mean too.
        return ([s / len, s / len], [F.Sum(t).ToArray()[0] / len, F.Mean(t).ToArray()[0]]);
    }

    static (double[], float[]) PerChannelCase(Device d, int n, int c, int hw)
    {
        var r = new Rng((ulong)c + 9);
        var x = VerifyData.Floats(r, (long)n * c * hw);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var y = Tensor.Empty(d, c);
        Reductions.SumPerChannel(d, y.Data, tx.Data, n, c, hw);
        return (Reductions.Reference.SumPerChannel(VerifyData.D(x), n, c, hw), y.ToArray());
    }

    static T[] Cat<T>(params T[][] a)
    {
        var r = new T[a.Sum(v => (long)v.Length)];
        long o = 0;
        foreach (var v in a) { Array.Copy(v, 0, r, o, v.Length); o += v.Length; }
        return r;
    }
}
