using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>The task losses (forward value and input gradient, concatenated) and the fused
/// optimiser steps against their float64 references.</summary>
public sealed class LossVerify : IVerifySuite
{
    public string Family => "loss";

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        var ce = small ? new[] { (2, 5, 3, 7) } : new[] { (1, 3, 5, 7), (4, 40, 120, 160), (2, 21, 97, 131) };
        foreach (var (n, c, h, w) in ce)
        {
            yield return new VerifyCase("cross_entropy+backward", $"[{n}, {c}, {h}, {w}]", 1e-6, 1e-3, d => CrossEntropy(d, n, c, h, w, false));
            yield return new VerifyCase("cross_entropy weighted", $"[{n}, {c}, {h}, {w}]", 1e-6, 1e-3, d => CrossEntropy(d, n, c, h, w, true));
        }
        var px = small ? new[] { (2, 3, 5) } : new[] { (1, 1, 7), (4, 120, 160), (3, 97, 131) };
        foreach (var (n, h, w) in px)
        {
            yield return new VerifyCase("masked_l1+backward", $"[{n}, 3, {h}, {w}]", 1e-6, 1e-3, d => MaskedL1(d, n, 3, h, w));
            yield return new VerifyCase("masked_l1+backward", $"[{n}, 1, {h}, {w}]", 1e-6, 1e-3, d => MaskedL1(d, n, 1, h, w));
            yield return new VerifyCase("balanced_bce+backward", $"[{n}, 1, {h}, {w}]", 1e-6, 1e-3, d => Bce(d, n, h, w));
        }
        foreach (int n in small ? new[] { 37 } : new[] { 1, 4_000_037 })
        {
            yield return new VerifyCase("adam x3", $"[{n}]", 1e-6, 1e-4, d => Adam(d, n, false));
            yield return new VerifyCase("adamw x3", $"[{n}]", 1e-6, 1e-4, d => Adam(d, n, true));
            yield return new VerifyCase("sgd nesterov x3", $"[{n}]", 1e-6, 1e-4, d => Sgd(d, n));
        }
    }

    static (double[], float[]) CrossEntropy(Device d, int N, int C, int H, int W, bool weighted)
    {
        var r = new Rng((ulong)(N * C * H * W) + (weighted ? 1UL : 0UL));
        int HW = H * W;
        var x = VerifyData.Floats(r, (long)N * C * HW, -5f, 5f);
        var labels = new int[N * HW];
        for (int i = 0; i < labels.Length; i++) labels[i] = r.NextInt(10) == 0 ? 255 : r.NextInt(C);
        var wts = weighted ? VerifyData.Floats(r, C, 0.1f, 2f) : null;
        var (loss, grad) = Losses.Reference.CrossEntropy(VerifyData.D(x), labels, wts == null ? null : VerifyData.D(wts), N, C, HW, 0.75);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, N, C, H, W);
        var ty = Tensor.FromLabels(d, labels, C, [N, H, W]);
        var tw = Tensor.FromArray(d, wts ?? [0f], wts?.Length ?? 1);
        var stats = Tensor.Empty(d, 2); var dl = Tensor.Full(d, 0.75f, 1); var dx = Tensor.Empty(d, N, C, H, W);
        Losses.CrossEntropy(d, stats.Data, tx.Data, ty.IntData, tw.Data, weighted, 255, N, C, HW);
        Losses.CrossEntropyBackward(d, dx.Data, dl.Data, stats.Data, tx.Data, ty.IntData, tw.Data, weighted, 255, N, C, HW);
        return ([loss, .. grad], [stats.ToArray()[0], .. dx.ToArray()]);
    }

    static (double[], float[]) MaskedL1(Device d, int N, int C, int H, int W)
    {
        var r = new Rng((ulong)(N * C * H * W) + 7);
        int HW = H * W;
        var p = VerifyData.Floats(r, (long)N * C * HW);
        var t = VerifyData.Floats(r, (long)N * C * HW);
        for (int i = 0; i < N * HW; i++)
        {
            int n = i / HW, q = i % HW, k = r.NextInt(8);
            if (k == 0) t[(n * C + r.NextInt(C)) * HW + q] = 255f;
            else if (k == 1) for (int c = 0; c < C; c++) t[(n * C + c) * HW + q] = 0f;
        }
        var (loss, grad) = Losses.Reference.MaskedL1(VerifyData.D(p), VerifyData.D(t), 255, N, C, HW, 1.25);
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, p, N, C, H, W); var tt = Tensor.FromArray(d, t, N, C, H, W);
        var stats = Tensor.Empty(d, 2); var dl = Tensor.Full(d, 1.25f, 1); var dp = Tensor.Empty(d, N, C, H, W);
        Losses.MaskedL1(d, stats.Data, tp.Data, tt.Data, 255f, N, C, HW);
        Losses.MaskedL1Backward(d, dp.Data, dl.Data, stats.Data, tp.Data, tt.Data, 255f, N, C, HW);
        return ([loss, .. grad], [stats.ToArray()[0], .. dp.ToArray()]);
    }

    static (double[], float[]) Bce(Device d, int N, int H, int W)
    {
        var r = new Rng((ulong)(N * H * W) + 11);
        long n = (long)N * H * W;
        var x = VerifyData.Floats(r, n, -20f, 20f);
        var t = new float[n];
        for (long i = 0; i < n; i++) t[i] = r.NextInt(10) == 0 ? 255f : r.NextInt(5) == 0 ? 1f : 0f;
        var (loss, grad) = Losses.Reference.BalancedBce(VerifyData.D(x), VerifyData.D(t), 0.95, 255, 0.5);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, N, 1, H, W); var tt = Tensor.FromArray(d, t, N, 1, H, W);
        var stats = Tensor.Empty(d, 2); var dl = Tensor.Full(d, 0.5f, 1); var dx = Tensor.Empty(d, N, 1, H, W);
        Losses.BalancedBce(d, stats.Data, tx.Data, tt.Data, 0.95f, 255f);
        Losses.BalancedBceBackward(d, dx.Data, dl.Data, stats.Data, tx.Data, tt.Data, 0.95f, 255f);
        return ([loss, .. grad], [stats.ToArray()[0], .. dx.ToArray()]);
    }

    static (double[], float[]) Adam(Device d, int n, bool decoupled)
    {
        var r = new Rng((ulong)n + 13);
        var p = VerifyData.Floats(r, n);
        double[] rp = VerifyData.D(p), rm = new double[n], rv = new double[n];
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, p, n); var tm = Tensor.Zeros(d, n); var tv = Tensor.Zeros(d, n); var tg = Tensor.Empty(d, n);
        for (int step = 1; step <= 3; step++)
        {
            var g = VerifyData.Floats(r, n);
            tg.Data.CopyFrom(g);
            Optimizers.Adam(d, tp.Data, tm.Data, tv.Data, tg.Data, step, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, decoupled);
            Optimizers.Reference.Adam(rp, rm, rv, VerifyData.D(g), step, 1e-3, 0.9, 0.999, 1e-8, 0.01, decoupled);
        }
        return (rp, tp.ToArray());
    }

    static (double[], float[]) Sgd(Device d, int n)
    {
        var r = new Rng((ulong)n + 17);
        var p = VerifyData.Floats(r, n);
        double[] rp = VerifyData.D(p), rb = new double[n];
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, p, n); var tb = Tensor.Zeros(d, n); var tg = Tensor.Empty(d, n);
        for (int step = 1; step <= 3; step++)
        {
            var g = VerifyData.Floats(r, n);
            tg.Data.CopyFrom(g);
            Optimizers.Sgd(d, tp.Data, tb.Data, tg.Data, 0.1f, 0.9f, 0f, 1e-4f, true, step == 1);
            Optimizers.Reference.Sgd(rp, rb, VerifyData.D(g), 0.1, 0.9, 0, 1e-4, true, step == 1);
        }
        return (rp, tp.ToArray());
    }
}
