using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// Edge odsF without MATLAB. How it follows the SEISM / BSDS protocol:
/// <list type="number">
/// <item>Non-maximum suppression of the soft prediction (<see cref="EdgeNms"/>).</item>
/// <item>101 thresholds t_k = k / 102, k = 1..101 (BSDS's linspace(1/(K+1), 1 - 1/(K+1), K));
/// a pixel is an edge when its suppressed value is &gt;= t_k.</item>
/// <item>Matching of predicted and ground-truth edge pixels with maximum distance
/// maxDist x image diagonal (0.011 NYUD, 0.0075 PASCAL). BSDS's correspondPixels solves a min-cost
/// assignment (CSA) whose objective is dominated by the number of matches; here we compute an exact
/// maximum-cardinality bipartite matching within the radius (<see cref="EdgeMatcher"/>: augmenting
/// paths, incremental over the thresholds), which yields the same matched counts whenever the CSA optimum is maximum-cardinality,
/// and differs only in which pixels pair up, which does not enter P or R.</item>
/// <item>Per threshold, matched predictions, predictions, matched ground truth and ground truth are
/// summed over the dataset; P, R and F = 2PR / (P + R) per threshold; ODS = the best F over the
/// thresholds (no interpolation between thresholds, which SEISM adds and which can only raise F by
/// a fraction of a threshold step).</item>
/// </list>
/// The thresholded map is not thinned again (NMS output is one pixel wide already, and thinning
/// would erase corner pixels of staircase label edges, so a prediction equal to the label would
/// no longer score 1). Label pixels of 255 are ignored: neither ground truth nor prediction there.
/// </summary>
public sealed class EdgeOdsMetric : ITaskMetric
{
    public const int ThresholdCount = 101;
    public static readonly float[] Thresholds = Enumerable.Range(1, ThresholdCount).Select(k => (float)(k / (ThresholdCount + 1.0))).ToArray();

    private readonly long[] _cntP = new long[ThresholdCount], _sumP = new long[ThresholdCount];
    private readonly long[] _cntR = new long[ThresholdCount], _sumR = new long[ThresholdCount];

    public double MaxDist { get; }
    public bool Nms { get; }
    public string Task => TaskNames.Edge;

    public EdgeOdsMetric(double maxDist, bool nms = true)
    {
        MaxDist = maxDist;
        Nms = nms;
    }

    /// <summary>prob and gt are (H, W); gt 0/1 with 255 ignored.</summary>
    public void Update(ReadOnlySpan<float> prob, ReadOnlySpan<float> gt, int h, int w)
    {
        if (prob.Length != h * w || gt.Length != h * w)
            throw new ArgumentException($"edge: prediction {prob.Length} and label {gt.Length} values for {h}x{w}");
        var e = Nms ? EdgeNms.Apply(prob, h, w) : prob.ToArray();
        var gtMask = new bool[h * w];
        var ignore = new bool[h * w];
        for (int i = 0; i < gt.Length; i++)
        {
            if (gt[i] == Sample.Ignore) ignore[i] = true;
            else gtMask[i] = gt[i] > 0.5f;
        }
        double radius = MaxDist * Math.Sqrt((double)h * h + (double)w * w);
        var usable = new bool[h * w];
        for (int i = 0; i < usable.Length; i++) usable[i] = !ignore[i];
        var counts = new EdgeMatcher(gtMask, h, w, radius).MatchAll(e, usable, Thresholds);
        int gtCount = gtMask.Count(b => b);
        for (int t = 0; t < ThresholdCount; t++)
        {
            _cntP[t] += counts[t].Matched;
            _sumP[t] += counts[t].Predicted;
            _cntR[t] += counts[t].Matched;
            _sumR[t] += gtCount;
        }
    }

    public void Update(object prediction, Sample label) =>
        Update(MetricChecks.Prediction<float>(prediction, Task), MetricChecks.Label(label.Edge, label, Task), label.Height, label.Width);

    /// <summary>(P, R, F) at every threshold, from the dataset-summed counts.</summary>
    public (double P, double R, double F)[] Curve()
    {
        var r = new (double, double, double)[ThresholdCount];
        for (int t = 0; t < ThresholdCount; t++)
        {
            double p = _sumP[t] > 0 ? (double)_cntP[t] / _sumP[t] : 1.0; // no prediction: precision 1 as in BSDS
            double rec = _sumR[t] > 0 ? (double)_cntR[t] / _sumR[t] : 1.0;
            double f = p + rec > 0 ? 2 * p * rec / (p + rec) : 0;
            r[t] = (p, rec, f);
        }
        return r;
    }

    public MetricState ExportState() => new() { Counts = [.. _cntP, .. _sumP, .. _cntR, .. _sumR] };

    public void LoadState(MetricState s)
    {
        const int t = ThresholdCount;
        if (s.Counts.Length != 4 * t) throw new ArgumentException("edge: not an edge metric state");
        Array.Copy(s.Counts, 0, _cntP, 0, t);
        Array.Copy(s.Counts, t, _sumP, 0, t);
        Array.Copy(s.Counts, 2 * t, _cntR, 0, t);
        Array.Copy(s.Counts, 3 * t, _sumR, 0, t);
    }

    public Dictionary<string, double> Compute()
    {
        var c = Curve();
        int best = 0;
        for (int t = 1; t < c.Length; t++) if (c[t].F > c[best].F) best = t;
        return new()
        {
            ["odsF"] = c[best].F,
            ["odsP"] = c[best].P,
            ["odsR"] = c[best].R,
            ["odsT"] = Thresholds[best],
        };
    }
}
