using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;

namespace Ccr.Bench.Verify;

/// <summary>Batch norm (plain, fused with ReLU, fused with residual add and ReLU), resizing, channel
/// concat, L2 normalisation and reductions against their float64 references, at the shapes
/// HRNet-W18 and its decoders meet at batch 4 on 480x640 inputs; plus rows that run a backward
/// twice and require identical bits (deterministic: no float atomics).</summary>
public sealed class NormVerify : IVerifySuite
{
    public string Family => "norm";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        var bn = small ? new[] { (1, 1, 3, 5), (2, 3, 5, 7) } : new[] { (4, 18, 120, 160), (4, 144, 15, 20), (1, 3, 7, 9), (4, 256, 30, 40) };
        foreach (var (n, c, h, w) in bn)
            foreach (var (name, relu, res) in new[] { ("bn", false, false), ("bn_relu", true, false), ("bn_add_relu", true, true) })
                foreach (bool training in new[] { true, false })
                    yield return new VerifyCase($"{name}.{(training ? "train" : "eval")}", $"[{n}, {c}, {h}, {w}]", 1e-4, 1e-3,
                                               d => BatchNormCase(d, n, c, h, w, training, relu, res, 0));
        // the split of each channel over many groups, forced where the device alone would not split
        var (pn, pc, ph, pw, parts) = small ? (2, 3, 5, 7, 3) : (1, 2, 33, 31, 17);
        yield return new VerifyCase($"bn_add_relu.train.parts{parts}", $"[{pn}, {pc}, {ph}, {pw}]", 1e-4, 1e-3,
                                    d => BatchNormCase(d, pn, pc, ph, pw, true, true, true, parts));
        yield return new VerifyCase("bn_add_relu.backward.deterministic", $"[{pn}, {pc}, {ph}, {pw}]", 0, 0,
                                    d => BatchNormTwice(d, pn, pc, ph, pw));
        var rs = small ? new[] { (1, 2, 5, 7, 9, 12), (2, 1, 11, 13, 4, 5) }
                       : new[] { (4, 18, 30, 40, 120, 160), (4, 18, 120, 160, 30, 40), (4, 128, 15, 20, 120, 160), (1, 3, 7, 11, 13, 5) };
        foreach (var (n, c, ih, iw, oh, ow) in rs)
        {
            string shape = $"[{n}, {c}, {ih}, {iw}]->{oh}x{ow}";
            yield return new VerifyCase("resize.bilinear", shape, 1e-5, 1e-4, d => ResizeCase(d, n * c, ih, iw, oh, ow, true));
            yield return new VerifyCase("resize.nearest", shape, 1e-5, 1e-4, d => ResizeCase(d, n * c, ih, iw, oh, ow, false));
            yield return new VerifyCase("resize.bilinear.backward.deterministic", shape, 0, 0, d => ResizeTwice(d, n * c, ih, iw, oh, ow, true));
            yield return new VerifyCase("resize.nearest.backward.deterministic", shape, 0, 0, d => ResizeTwice(d, n * c, ih, iw, oh, ow, false));
            yield return new VerifyCase("resize.nearest.labels", shape, 0, 0, d => LabelsCase(d, n * c, ih, iw, oh, ow));
        }
        int[] cs = small ? [1, 3, 2] : [18, 36, 72, 144];
        var (cn, chh, cww) = small ? (2, 3, 5) : (4, 120, 160);
        yield return new VerifyCase("concat fwd+bwd", $"{cn}x[{string.Join(",", cs)}]x{chh}x{cww}", 0, 0, d => ConcatCase(d, cn, cs, chh, cww));
        var (ln, lc, lh, lw) = small ? (2, 5, 3, 7) : (4, 128, 120, 160);
        yield return new VerifyCase("l2normalize fwd+bwd", $"[{ln}, {lc}, {lh}, {lw}]", 1e-4, 1e-3, d => L2Case(d, ln, lc, lh, lw));
        foreach (int len in small ? new[] { 1, 1000 } : new[] { 1, 1 << 20, 1_000_003 })
            yield return new VerifyCase("sum, mean", $"[{len}]", 1e-4, 1e-4, d => SumCase(d, len));
        var (sn, sc, shw) = small ? (2, 3, 7) : (4, 144, 300);
        yield return new VerifyCase("sum_per_channel", $"[{sn}, {sc}, {shw}]", 1e-4, 1e-4, d => PerChannelCase(d, sn, sc, shw, 0));
        yield return new VerifyCase("sum_per_channel.parts7", $"[{sn}, {sc}, {shw}]", 1e-4, 1e-4, d => PerChannelCase(d, sn, sc, shw, 7));
    }

    // y = act(bn(x) + residual) forward and backward against the float64 reference: y, running
    // statistics, dx, dweight, dbias and (with a residual) dresidual, concatenated.
    static (double[], float[]) BatchNormCase(Device d, int n, int c, int h, int w, bool training, bool relu, bool hasRes, int parts)
    {
        var r = new Rng((ulong)(n * c * h * w) + (training ? 0UL : 1UL) + (relu ? 2UL : 0UL) + (hasRes ? 4UL : 0UL));
        int hw = h * w; long len = (long)n * c * hw;
        var x = VerifyData.Floats(r, len, -1.5f, 2.5f); var dy = VerifyData.Floats(r, len); var res = VerifyData.Floats(r, len);
        var wt = VerifyData.Floats(r, c, 0.5f, 1.5f); var b = VerifyData.Floats(r, c);
        var rm = VerifyData.Floats(r, c, -0.2f, 0.2f); var rv = VerifyData.Floats(r, c, 0.5f, 1.5f);
        var D = VerifyData.D;
        double[]? dres = hasRes ? D(res) : null;
        double[] ey, erm = D(rm), erv = D(rv);
        BatchNorm.Reference.Grads eg;
        if (training)
        {
            var f = BatchNorm.Reference.ForwardTraining(D(x), D(wt), D(b), D(rm), D(rv), n, c, hw, 0.1, 1e-5, dres, relu);
            (ey, erm, erv) = (f.Y, f.RunningMean, f.RunningVar);
            eg = BatchNorm.Reference.BackwardTraining(D(dy), D(x), D(wt), D(b), n, c, hw, 1e-5, dres, relu);
        }
        else
        {
            ey = BatchNorm.Reference.ForwardEval(D(x), D(wt), D(b), D(rm), D(rv), n, c, hw, 1e-5, dres, relu);
            eg = BatchNorm.Reference.BackwardEval(D(dy), D(x), D(wt), D(b), D(rm), D(rv), n, c, hw, 1e-5, dres, relu);
        }
        var got = RunBatchNorm(d, x, res, dy, wt, b, rm, rv, n, c, h, w, training, relu, hasRes, parts);
        return (Cat(ey, erm, erv, eg.Dx, eg.Dweight, eg.Dbias, eg.Dresidual ?? []), got);
    }

    static float[] RunBatchNorm(Device d, float[] x, float[] res, float[] dy, float[] wt, float[] b, float[] rm, float[] rv,
                                int n, int c, int h, int w, bool training, bool relu, bool hasRes, int parts)
    {
        int hw = h * w;
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w); var tr = Tensor.FromArray(d, res, n, c, h, w);
        var tdy = Tensor.FromArray(d, dy, n, c, h, w);
        var tw = Tensor.FromArray(d, wt, c); var tb = Tensor.FromArray(d, b, c);
        var trm = Tensor.FromArray(d, rm, c); var trv = Tensor.FromArray(d, rv, c);
        var mean = Tensor.Empty(d, c); var inv = Tensor.Empty(d, c); var y = Tensor.Empty(d, n, c, h, w);
        var dx = Tensor.Empty(d, n, c, h, w); var dr = Tensor.Empty(d, n, c, h, w); var dw = Tensor.Empty(d, c); var db = Tensor.Empty(d, c);
        BatchNorm.Forward(d, y.Data, mean.Data, inv.Data, trm.Data, trv.Data, tx.Data, hasRes ? tr.Data : null, tw.Data, tb.Data,
                          n, c, hw, training, 0.1f, 1e-5f, relu, parts: parts);
        BatchNorm.Backward(d, dx.Data, hasRes ? dr.Data : null, dw.Data, db.Data, tdy.Data, y.Data, tx.Data, mean.Data, inv.Data,
                           tw.Data, n, c, hw, training, relu, parts: parts);
        return Cat(y.ToArray(), trm.ToArray(), trv.ToArray(), dx.ToArray(), dw.ToArray(), db.ToArray(), hasRes ? dr.ToArray() : []);
    }

    // Two identical training steps must give identical bits (ordered reductions, no atomics).
    static (double[], float[]) BatchNormTwice(Device d, int n, int c, int h, int w)
    {
        var r = new Rng(99);
        long len = (long)n * c * h * w;
        var x = VerifyData.Floats(r, len, -1.5f, 2.5f); var dy = VerifyData.Floats(r, len); var res = VerifyData.Floats(r, len);
        var wt = VerifyData.Floats(r, c, 0.5f, 1.5f); var b = VerifyData.Floats(r, c);
        var rm = VerifyData.Floats(r, c); var rv = VerifyData.Floats(r, c, 0.5f, 1.5f);
        var first = RunBatchNorm(d, x, res, dy, wt, b, rm, rv, n, c, h, w, true, true, true, 0);
        var second = RunBatchNorm(d, x, res, dy, wt, b, rm, rv, n, c, h, w, true, true, true, 0);
        return (VerifyData.D(first), second);
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

    // Backward twice on the same dy: the second dx must equal the first bit for bit.
    static (double[], float[]) ResizeTwice(Device d, int p, int ih, int iw, int oh, int ow, bool bilinear)
    {
        var r = new Rng((ulong)(p * ih * ow) + 11);
        var dy = VerifyData.Floats(r, (long)p * oh * ow);
        using var scope = new TensorScope();
        var tdy = Tensor.FromArray(d, dy, dy.Length);
        var dx = Tensor.Empty(d, p * ih * iw);
        float[] Once()
        {
            if (bilinear) Resize.BilinearBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
            else Resize.NearestBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
            return dx.ToArray();
        }
        var first = Once();
        return (VerifyData.D(first), Once());
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

    static (double[], float[]) PerChannelCase(Device d, int n, int c, int hw, int parts)
    {
        var r = new Rng((ulong)c + 9);
        var x = VerifyData.Floats(r, (long)n * c * hw);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var y = Tensor.Empty(d, c);
        Reductions.SumPerChannel(d, y.Data, tx.Data, n, c, hw, parts);
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
