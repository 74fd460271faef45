using Ccr.Kernels;

namespace Ccr.Nn.Ccr;

/// <summary>
/// The differentiable core of CCR for one (target, source) pair, independent of the projector:
/// given an L2-normalised projection map and the source task's labels at its resolution, mine
/// triplets on the device and return the mean triplet loss with a backward into the map.
/// </summary>
public static class CcrOps
{
    /// <summary>
    /// Anchors for each image of <paramref name="labels"/>: C_A = <paramref name="perImage"/> pixels
    /// drawn uniformly without replacement among the valid ones (host side, from the host validity
    /// mask, so that only the anchor list travels to the device). An image with fewer valid pixels
    /// takes all of them and pads with -1 (no anchor). Returns (N, C_A) flat pixel indices.
    /// </summary>
    public static int[] SampleAnchors(Rng rng, TaskLabels labels, int perImage)
    {
        if (perImage < 1) throw new ArgumentException($"SampleAnchors: {perImage} anchors per image");
        int hw = labels.H * labels.W;
        var anchors = new int[labels.N * perImage];
        var pool = new List<int>(hw);
        for (int b = 0; b < labels.N; b++)
        {
            pool.Clear();
            for (int i = 0; i < hw; i++) if (labels.Valid[b * hw + i] != 0) pool.Add(i);
            int take = Math.Min(perImage, pool.Count);
            for (int j = 0; j < take; j++) // partial Fisher-Yates
            {
                int k = j + rng.NextInt(pool.Count - j);
                (pool[j], pool[k]) = (pool[k], pool[j]);
                anchors[b * perImage + j] = pool[j];
            }
            for (int j = take; j < perImage; j++) anchors[b * perImage + j] = -1;
        }
        return anchors;
    }

    /// <summary>
    /// Mean triplet loss of one pair. proj (N, D, h, w) must be the L2-normalised projection;
    /// labels at h x w; anchors (N, C_A) flat indices or -1. Returns a one-element loss tensor
    /// whose backward reaches proj, and the pair's device-side statistics
    /// (<see cref="CcrTriplet.Stat"/>) plus, with <paramref name="collect"/>, host copies of the
    /// mined indices and distances.
    /// </summary>
    public static Tensor PairLoss(Tensor proj, TaskLabels labels, int[] anchors, CcrConfig cfg, uint seed,
                                  out PairResult result, bool collect = false)
    {
        Functional.F.Rank("ccr", proj, 4, "(N, D, H, W)");
        Functional.F.Float("ccr", proj);
        int n = proj.Dim(0), dim = proj.Dim(1), h = proj.Dim(2), w = proj.Dim(3), hw = h * w;
        if (labels.N != n || labels.H != h || labels.W != w)
            throw new ArgumentException($"ccr: labels of '{labels.Space.Task}' are (N={labels.N}, {labels.H}x{labels.W}), projection map is {Tensor.ShapeString(proj.Shape)}");
        if (anchors.Length == 0 || anchors.Length % n != 0)
            throw new ArgumentException($"ccr: {anchors.Length} anchors for a batch of {n}");
        foreach (var a in anchors)
            if (a < -1 || a >= hw) throw new ArgumentOutOfRangeException(nameof(anchors), $"ccr: anchor {a} outside [-1, {hw})");
        cfg.Validate();
        int na = anchors.Length / n, rows = n * na, c = cfg.NumNegatives;
        var d = proj.Device;
        var metric = labels.Space.Metric;

        var anc = Tensor.FromArray(d, anchors, n, na);
        var posIdx = Tensor.Empty(d, DType.I32, rows);
        var negIdx = Tensor.Empty(d, DType.I32, rows, c);
        var tloss = Tensor.Empty(d, rows, c);
        var dap = Tensor.Empty(d, rows);
        var dan = Tensor.Empty(d, rows, c);
        var stats = Tensor.Empty(d, CcrTriplet.StatCount);
        var loss = Tensor.Empty(d, 1);
        using (var fdist = Tensor.Empty(d, n, na, hw))
        using (var ldist = Tensor.Empty(d, n, na, hw))
        using (var bounds = Tensor.Empty(d, DType.I32, rows, 4)) // (rows, 2) ulong
        using (var dpos = Tensor.Empty(d, rows))
        {
            var b64 = new Buf<ulong>(bounds.Block, bounds.Offset / 2, 2L * rows);
            CcrDistances.FeatureDistances(d, fdist.Data, proj.Data, anc.IntData, n, dim, hw, na);
            CcrDistances.LabelDistances(d, ldist.Data, labels.DeviceValues.Data, labels.DeviceValid.IntData, anc.IntData,
                                        n, labels.Space.Channels, hw, na, metric);
            if (metric != CcrLabelMetric.Discrete)
                CcrSelect.LabelTopKBounds(d, b64, ldist.Data, anc.IntData, rows, hw, cfg.TopK);
            CcrSelect.HardestPositive(d, posIdx.IntData, dpos.Data, fdist.Data, ldist.Data, b64, anc.IntData, rows, hw,
                                      metric, cfg.Sampling, seed);
            CcrSelect.SemiHardNegatives(d, negIdx.IntData, posIdx.IntData, dpos.Data, fdist.Data, ldist.Data, b64, anc.IntData,
                                        rows, hw, c, metric, cfg.Sampling, seed);
        }
        CcrTriplet.Forward(d, tloss.Data, dap.Data, dan.Data, proj.Data, anc.IntData, posIdx.IntData, negIdx.IntData,
                           n, dim, hw, na, c, cfg.Margin);
        CcrTriplet.Reduce(d, loss.Data, stats.Data, tloss.Data, dap.Data, dan.Data, anc.IntData, posIdx.IntData, negIdx.IntData, rows, c);

        result = new PairResult(stats, collect ? posIdx.ToIntArray() : null, collect ? negIdx.ToIntArray() : null,
                                collect ? dap.ToArray() : null, collect ? dan.ToArray() : null);
        Tensor[] saved = [anc, posIdx, negIdx, tloss, dap, dan];
        var y = Autograd.Record(loss, "ccr_triplet", [proj], g =>
        {
            var dproj = Tensor.Empty(d, proj.Shape);
            CcrTriplet.Backward(d, dproj.Data, g.Data, stats.Data, proj.Data, anc.IntData, posIdx.IntData, negIdx.IntData,
                                tloss.Data, dap.Data, dan.Data, n, dim, hw, na, c);
            Autograd.Accumulate(proj, dproj);
            foreach (var t in saved) t.Dispose(); // a node runs once: release what it saved
        });
        if (!y.RequiresGrad) foreach (var t in saved) t.Dispose(); // no backward will come
        return y;
    }
}

/// <summary>What one pair's evaluation leaves behind: the statistics tensor (<see cref="CcrTriplet.Stat"/>,
/// on the device until read) and, when collected, host copies of positives, negatives and distances.</summary>
public sealed class PairResult(Tensor stats, int[]? posIdx, int[]? negIdx, float[]? posDist, float[]? negDist)
{
    public Tensor Stats { get; } = stats;
    public int[]? PosIdx { get; } = posIdx;
    public int[]? NegIdx { get; } = negIdx;
    /// <summary>D(a, p) per anchor row (0 where the row has no positive).</summary>
    public float[]? PosDist { get; } = posDist;
    /// <summary>D(a, n) per (row, negative) (0 where there is none).</summary>
    public float[]? NegDist { get; } = negDist;
}
