using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// Saliency under the two protocols in use, each key named by its protocol:
/// <list type="bullet">
/// <item><c>maxF</c>, ATRC / InvPT (ATRC's metrics.MaxF, beta² = 0.3): thresholds 0.05, 0.10, ...,
/// 0.95 (19, float32 as torch.arange makes them); a pixel is predicted salient when its probability
/// is &gt;= the threshold; TP, predicted and actual positives summed over the dataset (label 255
/// ignored); P = TP / PP, R = TP / AP, F = (1 + b²) P R / (b² P + R), an undefined F (0 / 0)
/// counts 0; maxF = max over thresholds.</item>
/// <item><c>maxF_mtl</c> and <c>mIoU_mtl</c>, Multi-Task-Learning-PyTorch's eval_sal (what MTI-Net
/// reports as maxF, with beta = 1, and the saliency mIoU that its Δm uses): thresholds
/// numpy.linspace(0.2, 0.9, 15), predicted salient when the probability is &gt; the threshold; per
/// image the IoU (1 when label and prediction are both empty), precision TP / (TP + FP + 1e-12) and
/// recall TP / (TP + FN + 1e-12); per threshold the mean over images of each; F = 2 mP mR /
/// (mP + mR + 1e-12); maxF_mtl = max of F, mIoU_mtl = max of the mean IoU. Label 255 is void
/// (not counted); an image with no valid pixel is left out.</item>
/// </list>
/// </summary>
public sealed class SaliencyMetric : ITaskMetric
{
    public const double BetaSquared = 0.3;
    public static readonly float[] Thresholds = Enumerable.Range(1, 19).Select(k => (float)(0.05 * k)).ToArray();
    /// <summary>numpy.linspace(0.2, 0.9, 15): i * ((0.9 - 0.2) / 14) + 0.2, the last exactly 0.9.</summary>
    public static readonly double[] MtlThresholds = Enumerable.Range(0, 15)
        .Select(i => i == 14 ? 0.9 : i * ((0.9 - 0.2) / 14) + 0.2).ToArray();

    private readonly long[] _tp = new long[Thresholds.Length], _pp = new long[Thresholds.Length];
    private long _ap;
    // MTL: per-threshold sums over images of IoU, precision and recall
    private readonly double[] _iouSum = new double[MtlThresholds.Length], _precSum = new double[MtlThresholds.Length],
        _recSum = new double[MtlThresholds.Length];
    private long _images;

    public string Task => TaskNames.Saliency;

    /// <summary>One image: prob and label (H, W); label 0/1, 255 void.</summary>
    public void Update(ReadOnlySpan<float> prob, ReadOnlySpan<int> label)
    {
        if (prob.Length != label.Length) throw new ArgumentException($"sal: prediction has {prob.Length} pixels, label {label.Length}");
        int m = MtlThresholds.Length;
        Span<long> tp = stackalloc long[m], fp = stackalloc long[m], fn = stackalloc long[m];
        tp.Clear(); fp.Clear(); fn.Clear();
        long valid = 0;
        for (int i = 0; i < label.Length; i++)
        {
            int g = label[i];
            if (g == Sample.Ignore) continue;
            valid++;
            bool pos = g != 0;
            if (pos) _ap++;
            float p = prob[i];
            for (int t = 0; t < Thresholds.Length; t++)
            {
                if (p < Thresholds[t]) break; // thresholds increase
                _pp[t]++;
                if (pos) _tp[t]++;
            }
            for (int t = 0; t < m; t++)
            {
                bool predicted = p > MtlThresholds[t];
                if (predicted && pos) tp[t]++;
                else if (predicted) fp[t]++;
                else if (pos) fn[t]++;
            }
        }
        if (valid == 0) return;
        _images++;
        for (int t = 0; t < m; t++)
        {
            long union = tp[t] + fp[t] + fn[t];
            _iouSum[t] += union == 0 ? 1.0 : (double)tp[t] / union;
            _precSum[t] += tp[t] / (tp[t] + fp[t] + 1e-12);
            _recSum[t] += tp[t] / (tp[t] + fn[t] + 1e-12);
        }
    }

    public void Update(object prediction, Sample label) =>
        Update(MetricChecks.Prediction<float>(prediction, Task), MetricChecks.Label(label.Saliency, label, Task));

    /// <summary>ATRC / InvPT F (beta² = 0.3) at every threshold of <see cref="Thresholds"/>.</summary>
    public double[] FScores()
    {
        var f = new double[Thresholds.Length];
        for (int t = 0; t < f.Length; t++)
        {
            double p = (double)_tp[t] / _pp[t], r = (double)_tp[t] / _ap;
            double v = (1 + BetaSquared) * p * r / (BetaSquared * p + r);
            f[t] = double.IsNaN(v) ? 0 : v;
        }
        return f;
    }

    /// <summary>Counts: TP and predicted positives per threshold, actual positives, scored images;
    /// sums: the MTL per-threshold sums of IoU, precision and recall.</summary>
    public MetricState ExportState() => new()
    {
        Counts = [.. _tp, .. _pp, _ap, _images], Sums = [.. _iouSum, .. _precSum, .. _recSum],
    };

    public void LoadState(MetricState s)
    {
        int t = Thresholds.Length, m = MtlThresholds.Length;
        if (s.Counts.Length != 2 * t + 2 || s.Sums.Length != 3 * m) throw new ArgumentException("sal: not a saliency metric state");
        Array.Copy(s.Counts, 0, _tp, 0, t);
        Array.Copy(s.Counts, t, _pp, 0, t);
        _ap = s.Counts[2 * t];
        _images = s.Counts[2 * t + 1];
        Array.Copy(s.Sums, 0, _iouSum, 0, m);
        Array.Copy(s.Sums, m, _precSum, 0, m);
        Array.Copy(s.Sums, 2 * m, _recSum, 0, m);
    }

    /// <summary>MTL's F (beta = 1, of the image-mean precision and recall) and mean IoU at every
    /// threshold of <see cref="MtlThresholds"/>; NaN when no image was scored.</summary>
    public (double[] F, double[] MeanIoU) MtlCurves()
    {
        int m = MtlThresholds.Length;
        var f = new double[m];
        var iou = new double[m];
        double n = _images == 0 ? double.NaN : _images;
        for (int t = 0; t < m; t++)
        {
            double p = _precSum[t] / n, r = _recSum[t] / n;
            f[t] = 2 * p * r / (p + r + 1e-12);
            iou[t] = _iouSum[t] / n;
        }
        return (f, iou);
    }

    public Dictionary<string, double> Compute()
    {
        var (f, iou) = MtlCurves();
        return new()
        {
            ["maxF"] = FScores().Max(),
            ["maxF_mtl"] = f.Max(),
            ["mIoU_mtl"] = iou.Max(),
        };
    }
}
