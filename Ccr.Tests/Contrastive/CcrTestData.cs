using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Tests.Contrastive;

/// <summary>Random CCR inputs and a runner of the device mining pipeline for the kernel tests.</summary>
public static class CcrTestData
{
    public sealed record Inputs(float[] Proj, float[] Labels, int[] Valid, int[] Anchors, int N, int Dim, int L, int Hw, int A,
                                CcrLabelMetric Metric);

    /// <summary>Features, labels with ~20% ignored pixels and anchors (the last row without one).
    /// quantised: features from {-1, -0.5, 0, 0.5, 1} and depths on a 0.25 grid, so that feature and
    /// label distances tie exactly and the lower-index rule is exercised.</summary>
    public static Inputs Make(int seed, CcrLabelMetric metric, int n, int dim, int hw, int a, bool quantised)
    {
        var r = new Rng((ulong)seed);
        var proj = new float[n * dim * hw];
        for (int i = 0; i < proj.Length; i++) proj[i] = quantised ? (r.NextInt(5) - 2) * 0.5f : r.Uniform(-1, 1);
        int l = metric == CcrLabelMetric.Angle ? 3 : 1;
        var labels = new float[n * l * hw];
        var valid = new int[n * hw];
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++)
            {
                bool ok = r.NextFloat() >= 0.2f;
                valid[b * hw + i] = ok ? 1 : 0;
                for (int c = 0; c < l; c++)
                    labels[(b * l + c) * hw + i] = metric switch
                    {
                        CcrLabelMetric.Discrete => ok ? r.NextInt(3) : 255f,
                        CcrLabelMetric.L1 => ok ? (quantised ? (1 + r.NextInt(8)) * 0.25f : r.Uniform(0.1f, 5f)) : 0f,
                        _ => ok ? (float)r.NextGaussian() : 0f,
                    };
            }
        var anchors = new int[n * a];
        for (int row = 0; row < n * a; row++)
        {
            int b = row / a, i;
            do i = r.NextInt(hw); while (valid[b * hw + i] == 0);
            anchors[row] = i;
        }
        anchors[^1] = -1;
        return new Inputs(proj, labels, valid, anchors, n, dim, l, hw, a, metric);
    }

    public sealed record Mined(float[] Fd, float[] Ld, int[] Pos, float[] Dpos, int[] Neg);

    /// <summary>Distances, bounds, positives and negatives computed on <paramref name="d"/>.</summary>
    public static Mined Mine(Device d, Inputs x, int k, int numNeg, CcrSampling mode, uint seed, bool distancesOnly = false)
    {
        using var scope = new TensorScope();
        int rows = x.N * x.A;
        var proj = Tensor.FromArray(d, x.Proj, x.N, x.Dim, x.Hw);
        var labels = Tensor.FromArray(d, x.Labels, x.N, x.L, x.Hw);
        var valid = Tensor.FromArray(d, x.Valid, x.N, x.Hw);
        var anc = Tensor.FromArray(d, x.Anchors, x.N, x.A);
        var fd = Tensor.Empty(d, rows, x.Hw);
        var ld = Tensor.Empty(d, rows, x.Hw);
        var pos = Tensor.Empty(d, DType.I32, rows);
        var dpos = Tensor.Empty(d, rows);
        var neg = Tensor.Empty(d, DType.I32, rows, numNeg);
        using var block = d.Pool.Rent(16L * rows);
        var bounds = new Buf<ulong>(block, 0, 2L * rows);
        CcrDistances.FeatureDistances(d, fd.Data, proj.Data, anc.IntData, x.N, x.Dim, x.Hw, x.A);
        CcrDistances.LabelDistances(d, ld.Data, labels.Data, valid.IntData, anc.IntData, x.N, x.L, x.Hw, x.A, x.Metric);
        if (distancesOnly) return new Mined(fd.ToArray(), ld.ToArray(), [], [], []);
        if (x.Metric != CcrLabelMetric.Discrete) CcrSelect.LabelTopKBounds(d, bounds, ld.Data, anc.IntData, rows, x.Hw, k);
        CcrSelect.HardestPositive(d, pos.IntData, dpos.Data, fd.Data, ld.Data, bounds, anc.IntData, rows, x.Hw, x.Metric, mode, seed);
        CcrSelect.SemiHardNegatives(d, neg.IntData, pos.IntData, dpos.Data, fd.Data, ld.Data, bounds, anc.IntData, rows, x.Hw,
                                    numNeg, x.Metric, mode, seed);
        return new Mined(fd.ToArray(), ld.ToArray(), pos.ToIntArray(), dpos.ToArray(), neg.ToIntArray());
    }

    /// <summary>The same through the fused <see cref="CcrSelect.Mine"/> launch, the Basic seed derived
    /// on the device from a counter holding <paramref name="counter"/>.</summary>
    public static Mined MineFused(Device d, Inputs x, int k, int numNeg, CcrSampling mode, uint seed, int counter, bool fromLabels = false)
    {
        using var scope = new TensorScope();
        int rows = x.N * x.A;
        var proj = Tensor.FromArray(d, x.Proj, x.N, x.Dim, x.Hw);
        var labels = Tensor.FromArray(d, x.Labels, x.N, x.L, x.Hw);
        var valid = Tensor.FromArray(d, x.Valid, x.N, x.Hw);
        var anc = Tensor.FromArray(d, x.Anchors, x.N, x.A);
        var cnt = Tensor.FromArray(d, new[] { counter }, 1);
        var fd = Tensor.Empty(d, rows, x.Hw);
        var ld = Tensor.Empty(d, rows, x.Hw);
        var pos = Tensor.Empty(d, DType.I32, rows);
        var dpos = Tensor.Empty(d, rows);
        var neg = Tensor.Empty(d, DType.I32, rows, numNeg);
        using var block = d.Pool.Rent(16L * rows);
        var bounds = new Buf<ulong>(block, 0, 2L * rows);
        CcrDistances.FeatureDistances(d, fd.Data, proj.Data, anc.IntData, x.N, x.Dim, x.Hw, x.A);
        CcrDistances.LabelDistances(d, ld.Data, labels.Data, valid.IntData, anc.IntData, x.N, x.L, x.Hw, x.A, x.Metric);
        if (fromLabels) // label distances recomputed inside the mining (L1 and classes)
            CcrSelect.MineFromLabels(d, bounds, pos.IntData, dpos.Data, neg.IntData, fd.Data, labels.Data, valid.IntData, anc.IntData,
                                     x.N, x.A, x.Hw, k, numNeg, x.Metric, mode, seed, cnt.IntData);
        else
            CcrSelect.Mine(d, bounds, pos.IntData, dpos.Data, neg.IntData, fd.Data, ld.Data, anc.IntData, rows, x.Hw, k, numNeg,
                           x.Metric, mode, seed, cnt.IntData);
        return new Mined(fd.ToArray(), ld.ToArray(), pos.ToIntArray(), dpos.ToArray(), neg.ToIntArray());
    }

    public static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
}
