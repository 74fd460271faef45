using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// Depth metrics over all valid pixels of the dataset (pixel-wise, not per image), valid = gt &gt; 0;
/// the prediction is clamped to &gt;= 0:
/// rmse = sqrt(Σ (gt - pred)² / n); log_rmse the same on natural logs with both sides clamped to
/// 1e-9; abs_rel = Σ |gt - pred| / gt / n; delta1..3 = share of max(gt / pred, pred / gt) below
/// 1.25, 1.25², 1.25³ (pred clamped to 1e-9 there, so a zero prediction never counts).
/// With no valid pixel at all every value is NaN.
/// </summary>
public sealed class DepthMetric : ITaskMetric
{
    private const double LogClamp = 1e-9;
    private double _sq, _logSq, _absRel;
    private long _n, _d1, _d2, _d3;

    public string Task => TaskNames.Depth;

    public void Update(ReadOnlySpan<float> pred, ReadOnlySpan<float> gt)
    {
        if (pred.Length != gt.Length) throw new ArgumentException($"depth: prediction has {pred.Length} pixels, label {gt.Length}");
        for (int i = 0; i < gt.Length; i++)
        {
            double g = gt[i];
            if (!(g > 0) || g == Sample.Ignore) continue;
            double p = Math.Max(0.0, pred[i]);
            double e = g - p;
            _sq += e * e;
            double le = Math.Log(Math.Max(p, LogClamp)) - Math.Log(Math.Max(g, LogClamp));
            _logSq += le * le;
            _absRel += Math.Abs(e) / g;
            double pc = Math.Max(p, LogClamp);
            double ratio = Math.Max(g / pc, pc / g);
            if (ratio < 1.25) _d1++;
            if (ratio < 1.25 * 1.25) _d2++;
            if (ratio < 1.25 * 1.25 * 1.25) _d3++;
            _n++;
        }
    }

    public void Update(object prediction, Sample label) =>
        Update(MetricChecks.Prediction<float>(prediction, Task), MetricChecks.Label(label.Depth, label, Task));

    public MetricState ExportState() => new() { Counts = [_n, _d1, _d2, _d3], Sums = [_sq, _logSq, _absRel] };

    public void LoadState(MetricState s)
    {
        if (s.Counts.Length != 4 || s.Sums.Length != 3) throw new ArgumentException("depth: not a depth metric state");
        (_n, _d1, _d2, _d3) = (s.Counts[0], s.Counts[1], s.Counts[2], s.Counts[3]);
        (_sq, _logSq, _absRel) = (s.Sums[0], s.Sums[1], s.Sums[2]);
    }

    public Dictionary<string, double> Compute()
    {
        double n = _n == 0 ? double.NaN : _n;
        return new()
        {
            ["rmse"] = Math.Sqrt(_sq / n),
            ["log_rmse"] = Math.Sqrt(_logSq / n),
            ["abs_rel"] = _absRel / n,
            ["delta1"] = _d1 / n,
            ["delta2"] = _d2 / n,
            ["delta3"] = _d3 / n,
        };
    }
}
