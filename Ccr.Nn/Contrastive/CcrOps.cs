using Ccr.Kernels.Contrastive;
using Ccr.Kernels;

namespace Ccr.Nn.Contrastive;

/// <summary>
/// The differentiable core of CCR for one (target, source) pair, independent of the projector:
/// given an L2-normalised projection map and the source task's labels at its resolution, mine
/// triplets on the device and return the mean triplet loss with a backward into the map.
/// </summary>
public static class CcrOps
{
    /// <summary>
    /// Anchors (N, <paramref name="perImage"/>) for each image of <paramref name="labels"/>, sampled
    /// on the device: per image, perImage valid pixels uniformly without replacement, from the
    /// counter-based stream of (<paramref name="seed"/>, counter[0]) (<see cref="CcrAnchors"/>), in
    /// pixel order, -1 where an image has fewer valid pixels. The counter is not advanced here.
    /// </summary>
    public static Tensor SampleAnchors(TaskLabels labels, int perImage, Tensor counter, ulong seed)
    {
        if (perImage < 1) throw new ArgumentException($"SampleAnchors: {perImage} anchors per image");
        var valid = labels.DeviceValid;
        var anchors = Tensor.Empty(valid.Device, DType.I32, labels.N, perImage);
        anchors.Name = "ccr anchors";
        CcrAnchors.SampleAnchors(valid.Device, anchors.IntData, valid.IntData, counter.IntData, seed, labels.N,
                                 labels.H * labels.W, perImage);
        return anchors;
    }

    /// <summary>
    /// Mean triplet loss of one pair with anchors given on the host (tests and goldens): checks them
    /// and uploads them, then as the device overload with the Basic variant's seed used as given.
    /// </summary>
    public static Tensor PairLoss(Tensor proj, TaskLabels labels, int[] anchors, CcrConfig cfg, uint seed,
                                  out PairResult result, bool collect = false)
    {
        int n = proj.Rank == 4 ? proj.Dim(0) : 0, hw = proj.Rank == 4 ? proj.Dim(2) * proj.Dim(3) : 0;
        if (n == 0 || anchors.Length == 0 || anchors.Length % n != 0)
            throw new ArgumentException($"ccr: {anchors.Length} anchors for a batch of {n}");
        foreach (var a in anchors)
            if (a < -1 || a >= hw) throw new ArgumentOutOfRangeException(nameof(anchors), $"ccr: anchor {a} outside [-1, {hw})");
        var anc = Tensor.FromArray(proj.Device, anchors, n, anchors.Length / n);
        var y = PairLoss(proj, labels, anc, cfg, null, seed, out result, collect);
        if (!y.RequiresGrad) anc.Dispose();
        return y;
    }

    /// <summary>
    /// Mean triplet loss of one pair, all on the device. proj (N, D, h, w) must be the L2-normalised
    /// projection; labels at h x w; anchors (N, C_A) int32 pixel indices or -1 (from
    /// <see cref="SampleAnchors"/>: in range by construction, so not read back). The Basic
    /// variant's random stream is <see cref="CcrAnchors.MiningSeed"/>(seed, counter[0]), read by the
    /// kernel, or seed itself without a counter. Returns a one-element loss tensor whose backward
    /// reaches proj, and the pair's device-side statistics (<see cref="CcrTriplet.Stat"/>) plus, with
    /// <paramref name="collect"/>, host copies of the mined indices and distances (that one
    /// synchronises). Nothing else here reads the device or allocates outside the buffer pool.
    /// </summary>
    public static Tensor PairLoss(Tensor proj, TaskLabels labels, Tensor anchors, CcrConfig cfg, Tensor? counter, uint seed,
                                  out PairResult result, bool collect = false)
    {
        Functional.F.Rank("ccr", proj, 4, "(N, D, H, W)");
        Functional.F.Float("ccr", proj);
        int n = proj.Dim(0), dim = proj.Dim(1), h = proj.Dim(2), w = proj.Dim(3), hw = h * w;
        if (labels.N != n || labels.H != h || labels.W != w)
            throw new ArgumentException($"ccr: labels of '{labels.Space.Task}' are (N={labels.N}, {labels.H}x{labels.W}), projection map is {Tensor.ShapeString(proj.Shape)}");
        if (anchors.DType != DType.I32 || anchors.Rank != 2 || anchors.Dim(0) != n || anchors.Dim(1) < 1)
            throw new ArgumentException($"ccr: anchors must be int32 (N={n}, C_A), got {anchors.Describe()} {anchors.DType}");
        cfg.Validate();
        int na = anchors.Dim(1), rows = n * na, c = cfg.NumNegatives;
        var d = proj.Device;
        var metric = labels.Space.Metric;
        var anc = anchors;

        var posIdx = Tensor.Empty(d, DType.I32, rows);
        var negIdx = Tensor.Empty(d, DType.I32, rows, c);
        var tloss = Tensor.Empty(d, rows, c);
        var dap = Tensor.Empty(d, rows);
        var dan = Tensor.Empty(d, rows, c);
        var stats = Tensor.Empty(d, CcrTriplet.StatCount);
        var loss = Tensor.Empty(d, 1);
        // L1 and class labels on the CUDA variant: no label-distance matrix, the mining recomputes
        // each label distance from the labels (exactly); angles (atan2 in every pass would cost more
        // than the matrix) and the CPU variant mine from the matrix
        bool fromLabels = d.Variant == KernelVariant.Cuda && metric != CcrLabelMetric.Angle;
        using (var fdist = Tensor.Empty(d, n, na, hw))
        using (var bounds = Tensor.Empty(d, DType.I32, rows, 4)) // (rows, 2) ulong
        using (var dpos = Tensor.Empty(d, rows))
        {
            var b64 = new Buf<ulong>(bounds.Block, bounds.Offset / 2, 2L * rows);
            CcrDistances.FeatureDistances(d, fdist.Data, proj.Data, anc.IntData, n, dim, hw, na);
            if (fromLabels)
                CcrSelect.MineFromLabels(d, b64, posIdx.IntData, dpos.Data, negIdx.IntData, fdist.Data, labels.DeviceValues.Data,
                                         labels.DeviceValid.IntData, anc.IntData, n, na, hw, cfg.TopK, c, metric, cfg.Sampling, seed,
                                         counter?.IntData);
            else
            {
                using var ldist = Tensor.Empty(d, n, na, hw);
                CcrDistances.LabelDistances(d, ldist.Data, labels.DeviceValues.Data, labels.DeviceValid.IntData, anc.IntData,
                                            n, labels.Space.Channels, hw, na, metric);
                CcrSelect.Mine(d, b64, posIdx.IntData, dpos.Data, negIdx.IntData, fdist.Data, ldist.Data, anc.IntData, rows, hw,
                               cfg.TopK, c, metric, cfg.Sampling, seed, counter?.IntData);
            }
        }
        CcrTriplet.Forward(d, tloss.Data, dap.Data, dan.Data, proj.Data, anc.IntData, posIdx.IntData, negIdx.IntData,
                           n, dim, hw, na, c, cfg.Margin);
        CcrTriplet.Reduce(d, loss.Data, stats.Data, tloss.Data, dap.Data, dan.Data, anc.IntData, posIdx.IntData, negIdx.IntData, rows, c);

        result = new PairResult(stats, collect ? posIdx.ToIntArray() : null, collect ? negIdx.ToIntArray() : null,
                                collect ? dap.ToArray() : null, collect ? dan.ToArray() : null);
        Tensor[] saved = [posIdx, negIdx, tloss, dap, dan]; // the anchors belong to the caller
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
