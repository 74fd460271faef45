using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>Every CCR kernel against its float64 reference: distance matrices (three label
/// metrics), the fused mining launch (index outputs compared exactly, on the kernels' own distance
/// matrices; the Basic variant's seed derived on the device from a counter), the triplet loss, its
/// statistics and its backward; the backward's determinism (three runs, bit for bit) and, for the
/// CUDA variant, its entry-order summation contract (bit for bit against the host replay).
/// The sampler, label preparation and radix select have their own rows in CcrDeviceVerify.</summary>
public sealed class CcrVerify : IVerifySuite
{
    public string Family => "ccr";

    sealed record Shape(int N, int Dim, int H, int W, int A, int K, int C)
    {
        public int Hw => H * W;
        public override string ToString() => $"N{N} D{Dim} {H}x{W} A{A} k{K} C{C}";
    }

    public IEnumerable<VerifyCase> Cases(Device device, bool small)
    {
        var shapes = small
            ? new[] { new Shape(2, 8, 6, 7, 2, 6, 4) }
            : device.IsCuda // the paper's scale: its float64 references alone take ~1 min per case on 2 cores
                ? new[] { new Shape(1, 3, 5, 9, 4, 5, 3), new Shape(2, 16, 30, 40, 12, 128, 16), new Shape(4, 128, 120, 160, 192, 128, 16) }
                : new[] { new Shape(1, 3, 5, 9, 4, 5, 3), new Shape(2, 16, 30, 40, 12, 128, 16) };
        foreach (var s in shapes)
            foreach (var metric in new[] { CcrLabelMetric.Discrete, CcrLabelMetric.L1, CcrLabelMetric.Angle })
            {
                string tag = $"{s} {metric}";
                yield return new VerifyCase("ccr.feature_dist", tag, 1e-5, 1e-4, d => Run(d, s, metric, CcrSampling.Hard).Fd);
                yield return new VerifyCase("ccr.label_dist", tag, 2e-5, 1e-4, d => Run(d, s, metric, CcrSampling.Hard).Ld);
                yield return new VerifyCase("ccr.mine_hard", tag, 0, 0, d => Run(d, s, metric, CcrSampling.Hard).Mine);
                yield return new VerifyCase("ccr.triplet_fwd", tag, 1e-6, 1e-4, d => Run(d, s, metric, CcrSampling.Hard).Loss);
                yield return new VerifyCase("ccr.triplet_bwd", tag, 1e-6, 1e-3, d => Run(d, s, metric, CcrSampling.Hard).Grad);
                yield return new VerifyCase("ccr.backward.deterministic", tag, 0, 0, d => Run(d, s, metric, CcrSampling.Hard).Repeat);
                // the CUDA variant's gather against its host replay, bit for bit: on the CPU accelerator
                // and on a GPU too (the gather divides with div.rn and has no product feeding a sum
                // that ptxas could contract into an fma; Contrastive/CcrPtxTests checks its PTX)
                if (device.Variant == KernelVariant.Cuda)
                    yield return new VerifyCase("ccr.backward.entry_order", tag, 0, 0, d => Run(d, s, metric, CcrSampling.Hard).EntryOrder);
                if (metric != CcrLabelMetric.Angle)
                {
                    yield return new VerifyCase("ccr.mine_basic", tag, 0, 0, d => Run(d, s, metric, CcrSampling.Basic).Mine);
                    yield return new VerifyCase("ccr.mine_from_labels", tag, 0, 0, d => Run(d, s, metric, CcrSampling.Hard).MineFromLabels);
                }
            }
    }

    sealed record Result((double[], float[]) Fd, (double[], float[]) Ld, (double[], float[]) Mine,
                         (double[], float[]) Loss, (double[], float[]) Grad, (double[], float[]) Repeat,
                         (double[], float[]) EntryOrder, (double[], float[]) MineFromLabels);

    // The cases of one (shape, metric, mode) share one run: the float64 references at the paper's
    // scale take seconds. Only the latest run is kept (its matrices are ~100 MB there).
    static (Device, Shape, CcrLabelMetric, CcrSampling)? _lastKey;
    static Result? _last;

    static Result Run(Device d, Shape s, CcrLabelMetric metric, CcrSampling mode)
    {
        var key = (d, s, metric, mode);
        if (_lastKey == key && _last != null) return _last;
        _last = null;
        _last = Compute(d, s, metric, mode);
        _lastKey = key;
        return _last;
    }

    static Result Compute(Device d, Shape s, CcrLabelMetric metric, CcrSampling mode)
    {
        var r = new Rng((ulong)(s.Hw * 7 + s.Dim + (int)metric));
        int l = metric == CcrLabelMetric.Angle ? 3 : 1, hw = s.Hw, rows = s.N * s.A;
        var proj = new float[s.N * s.Dim * hw];
        for (int i = 0; i < proj.Length; i++) proj[i] = r.Uniform(-1, 1);
        var labels = new float[s.N * l * hw];
        var valid = new int[s.N * hw];
        for (int i = 0; i < valid.Length; i++) valid[i] = r.NextFloat() < 0.85f ? 1 : 0;
        for (int b = 0; b < s.N; b++)
            for (int c = 0; c < l; c++)
                for (int i = 0; i < hw; i++)
                    labels[(b * l + c) * hw + i] = metric == CcrLabelMetric.Discrete ? r.NextInt(5) : metric == CcrLabelMetric.L1
                        ? (1 + r.NextInt(40)) * 0.125f : (float)r.NextGaussian();
        var anchors = new int[rows];
        for (int row = 0; row < rows; row++)
        {
            int b = row / s.A, i;
            do i = r.NextInt(hw); while (valid[b * hw + i] == 0);
            anchors[row] = i;
        }
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, proj, s.N, s.Dim, hw);
        var tl = Tensor.FromArray(d, labels, s.N, l, hw);
        var tv = Tensor.FromArray(d, valid, s.N, hw);
        var ta = Tensor.FromArray(d, anchors, rows);
        var fd = Tensor.Empty(d, rows, hw); var ld = Tensor.Empty(d, rows, hw);
        var pos = Tensor.Empty(d, DType.I32, rows); var dpos = Tensor.Empty(d, rows);
        var neg = Tensor.Empty(d, DType.I32, rows, s.C);
        using var block = d.Pool.Rent(16L * rows);
        var bounds = new Buf<ulong>(block, 0, 2L * rows);
        const uint seed = 17; const int counter = 5;
        var tc = Tensor.FromArray(d, new[] { counter }, 1);
        CcrDistances.FeatureDistances(d, fd.Data, tp.Data, ta.IntData, s.N, s.Dim, hw, s.A);
        CcrDistances.LabelDistances(d, ld.Data, tl.Data, tv.IntData, ta.IntData, s.N, l, hw, s.A, metric);
        CcrSelect.Mine(d, bounds, pos.IntData, dpos.Data, neg.IntData, fd.Data, ld.Data, ta.IntData, rows, hw, s.K, s.C, metric, mode,
                       seed, tc.IntData);
        // the same mining with label distances recomputed from the labels (L1 and classes; what the loss runs on a GPU)
        var posL = Tensor.Empty(d, DType.I32, rows); var negL = Tensor.Empty(d, DType.I32, rows, s.C); var dposL = Tensor.Empty(d, rows);
        if (metric != CcrLabelMetric.Angle)
            CcrSelect.MineFromLabels(d, bounds, posL.IntData, dposL.Data, negL.IntData, fd.Data, tl.Data, tv.IntData, ta.IntData, s.N, s.A,
                                     hw, s.K, s.C, metric, mode, seed, tc.IntData);
        var loss = Tensor.Empty(d, rows, s.C); var dap = Tensor.Empty(d, rows); var dan = Tensor.Empty(d, rows, s.C);
        var scalar = Tensor.Empty(d, 1); var stats = Tensor.Empty(d, CcrTriplet.StatCount);
        var dloss = Tensor.FromArray(d, new[] { 1.3f }, 1); var dproj = Tensor.Empty(d, s.N, s.Dim, hw);
        CcrTriplet.Forward(d, loss.Data, dap.Data, dan.Data, tp.Data, ta.IntData, pos.IntData, neg.IntData, s.N, s.Dim, hw, s.A, s.C, 0.2f);
        CcrTriplet.Reduce(d, scalar.Data, stats.Data, loss.Data, dap.Data, dan.Data, ta.IntData, pos.IntData, neg.IntData, rows, s.C);
        CcrTriplet.Backward(d, dproj.Data, dloss.Data, stats.Data, tp.Data, ta.IntData, pos.IntData, neg.IntData, loss.Data, dap.Data,
                            dan.Data, s.N, s.Dim, hw, s.A, s.C);
        var again = new List<float>();
        for (int rep = 0; rep < 2; rep++)
        {
            using var g2 = Tensor.Empty(d, s.N, s.Dim, hw);
            CcrTriplet.Backward(d, g2.Data, dloss.Data, stats.Data, tp.Data, ta.IntData, pos.IntData, neg.IntData, loss.Data, dap.Data,
                                dan.Data, s.N, s.Dim, hw, s.A, s.C);
            again.AddRange(g2.ToArray());
        }

        var fdK = fd.ToArray(); var ldK = ld.ToArray(); var posK = pos.ToIntArray(); var negK = neg.ToIntArray();
        var pd = VerifyData.D(proj);
        var fdR = CcrDistances.Reference.FeatureDistances(pd, anchors, s.N, s.Dim, hw, s.A);
        var ldR = CcrDistances.Reference.LabelDistances(VerifyData.D(labels), valid, anchors, s.N, l, hw, s.A, metric);
        var (posR, negR) = CcrSelect.Reference.Mine(VerifyData.D(fdK), VerifyData.D(ldK), anchors, rows, hw, s.K, s.C, metric, mode,
                                                    CcrAnchors.MiningSeed(seed, counter));
        // the triplet kernels are checked on the kernels' own mining (selection is checked above)
        var (lossR, _) = CcrTriplet.Reference.Forward(pd, anchors, posK, negK, s.Dim, hw, s.A, s.C, 0.2);
        var gradR = CcrTriplet.Reference.Backward(1.3, pd, anchors, posK, negK, s.Dim, hw, s.A, s.C, 0.2);
        static float[] F(int[] a) => Array.ConvertAll(a, v => (float)v);
        static double[] Dd(int[] a) => Array.ConvertAll(a, v => (double)v);
        // ignored pixels are NaN in both; the runner's comparison treats NaN as a mismatch, so mark them -1
        static double[] Nd(double[] a) => Array.ConvertAll(a, v => double.IsNaN(v) ? -1 : v);
        static float[] Nf(float[] a) => Array.ConvertAll(a, v => float.IsNaN(v) ? -1f : v);
        var dprojK = dproj.ToArray();
        var replay = d.Variant == KernelVariant.Cuda
            ? CcrTriplet.Reference.BackwardEntryOrder(1.3f, stats.ToArray()[1], proj, anchors, posK, negK, loss.ToArray(), dap.ToArray(),
                                                      dan.ToArray(), s.N, s.Dim, hw, s.A, s.C)
            : dprojK;
        return new Result((Nd(fdR), Nf(fdK)), (Nd(ldR), Nf(ldK)), (Dd(posR).Concat(Dd(negR)).ToArray(), F(posK).Concat(F(negK)).ToArray()),
                          ([lossR], scalar.ToArray()), (gradR, dprojK),
                          (VerifyData.D(dprojK).Concat(VerifyData.D(dprojK)).ToArray(), again.ToArray()),
                          (VerifyData.D(replay), dprojK),
                          (Dd(posR).Concat(Dd(negR)).ToArray(), F(posL.ToIntArray()).Concat(F(negL.ToIntArray())).ToArray()));
    }
}
