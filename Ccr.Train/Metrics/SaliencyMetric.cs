using Ccr.Train.Data;

namespace Ccr.Train.Metrics;

/// <summary>
/// Saliency maxF of the ATRC / InvPT protocol: thresholds 0.05, 0.10, ..., 0.95 (19, float32 as
/// torch.arange makes them); a pixel is predicted salient when its probability is &gt;= the
/// threshold; TP, predicted positives and actual positives summed over the dataset (label 255
/// ignored); P = TP / PP, R = TP / AP, F = (1 + b²) P R / (b² P + R) with b² = 0.3, an undefined
/// F (0 / 0) counts 0; maxF = max over thresholds.
/// </summary>
public sealed class SaliencyMetric : ITaskMetric
{
    public const double BetaSquared = 0.3;
    public static readonly float[] Thresholds = Enumerable.Range(1, 19).Select(k => (float)(0.05 * k)).ToArray();

    private readonly long[] _tp = new long[Thresholds.Length], _pp = new long[Thresholds.Length];
    private long _ap;

    public string Task => TaskNames.Saliency;

    public void Update(ReadOnlySpan<float> prob, ReadOnlySpan<int> label)
    {
        if (prob.Length != label.Length) throw new ArgumentException($"sal: prediction has {prob.Length} pixels, label {label.Length}");
        for (int i = 0; i < label.Length; i++)
        {
            int g = label[i];
            if (g == Sample.Ignore) continue;
            bool pos = g != 0;
            if (pos) _ap++;
            float p = prob[i];
            for (int t = 0; t < Thresholds.Length; t++)
            {
                if (p < Thresholds[t]) break; // thresholds increase
                _pp[t]++;
                if (pos) _tp[t]++;
            }
        }
    }

    public void Update(object prediction, Sample label) =>
        Update(MetricChecks.Prediction<float>(prediction, Task), MetricChecks.Label(label.Saliency, label, Task));

    /// <summary>F at every threshold.</summary>
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

    public MetricState ExportState() => new() { Counts = [.. _tp, .. _pp, _ap] };

    public void LoadState(MetricState s)
    {
        int t = Thresholds.Length;
        if (s.Counts.Length != 2 * t + 1) throw new ArgumentException("sal: not a saliency metric state");
        Array.Copy(s.Counts, 0, _tp, 0, t);
        Array.Copy(s.Counts, t, _pp, 0, t);
        _ap = s.Counts[2 * t];
    }

    public Dictionary<string, double> Compute() => new() { ["maxF"] = FScores().Max() };
}
