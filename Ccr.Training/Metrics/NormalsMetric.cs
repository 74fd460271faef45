using Ccr.Training.Data;

namespace Ccr.Training.Metrics;

/// <summary>
/// Surface normal angular error: both vectors L2-normalised (a zero prediction stays zero and
/// scores 90 degrees), angle = 2 atan2(|p - g|, |p + g|) in degrees (stable near 0 and 180),
/// over valid pixels (gt not 255 in any channel, |gt| &gt; 0) of the whole dataset: mean, median,
/// rmse = sqrt(mean angle²), and the shares under 11.25 / 22.5 / 30 degrees.
/// The median comes from a histogram of 0.001-degree bins with linear interpolation inside the
/// bin (exact to about 1e-3 degrees without keeping every angle of the dataset).
/// </summary>
public sealed class NormalsMetric : ITaskMetric
{
    private const double BinWidth = 1e-3;
    private readonly long[] _hist = new long[(int)(180 / BinWidth) + 2];
    private double _sum, _sumSq, _min = double.PositiveInfinity, _max = double.NegativeInfinity;
    private long _n, _t11, _t22, _t30;

    public string Task => TaskNames.Normals;

    /// <summary>pred and gt are (3, H, W).</summary>
    public void Update(ReadOnlySpan<float> pred, ReadOnlySpan<float> gt)
    {
        if (pred.Length != gt.Length || gt.Length % 3 != 0)
            throw new ArgumentException($"normals: prediction has {pred.Length} values, label {gt.Length} (both (3, H, W))");
        int n = gt.Length / 3;
        for (int i = 0; i < n; i++)
        {
            double gx = gt[i], gy = gt[n + i], gz = gt[2 * n + i];
            if (gx == Sample.Ignore || gy == Sample.Ignore || gz == Sample.Ignore) continue;
            double gl = Math.Sqrt(gx * gx + gy * gy + gz * gz);
            if (!(gl > 0)) continue;
            double px = pred[i], py = pred[n + i], pz = pred[2 * n + i];
            double pl = Math.Sqrt(px * px + py * py + pz * pz);
            if (pl > 0) { px /= pl; py /= pl; pz /= pl; }
            gx /= gl; gy /= gl; gz /= gl;
            double dx = px - gx, dy = py - gy, dz = pz - gz, sx = px + gx, sy = py + gy, sz = pz + gz;
            double angle = 2 * Math.Atan2(Math.Sqrt(dx * dx + dy * dy + dz * dz), Math.Sqrt(sx * sx + sy * sy + sz * sz)) * (180.0 / Math.PI);
            Add(angle);
        }
    }

    private void Add(double angle)
    {
        _sum += angle;
        _sumSq += angle * angle;
        _min = Math.Min(_min, angle);
        _max = Math.Max(_max, angle);
        _n++;
        if (angle < 11.25) _t11++;
        if (angle < 22.5) _t22++;
        if (angle < 30) _t30++;
        _hist[Math.Min(_hist.Length - 1, (int)(angle / BinWidth))]++;
    }

    public void Update(object prediction, Sample label) =>
        Update(MetricChecks.Prediction<float>(prediction, Task), MetricChecks.Label(label.Normals, label, Task));

    /// <summary>Counts: n, the three shares, then the histogram; sums: angle, angle²; min; max.</summary>
    public MetricState ExportState() => new()
    {
        Counts = [_n, _t11, _t22, _t30, .. _hist], Sums = [_sum, _sumSq], Mins = [_min], Maxs = [_max],
    };

    public void LoadState(MetricState s)
    {
        if (s.Counts.Length != 4 + _hist.Length || s.Sums.Length != 2 || s.Mins.Length != 1 || s.Maxs.Length != 1)
            throw new ArgumentException("normals: not a normals metric state");
        (_n, _t11, _t22, _t30) = (s.Counts[0], s.Counts[1], s.Counts[2], s.Counts[3]);
        Array.Copy(s.Counts, 4, _hist, 0, _hist.Length);
        (_sum, _sumSq, _min, _max) = (s.Sums[0], s.Sums[1], s.Mins[0], s.Maxs[0]);
    }

    public Dictionary<string, double> Compute()
    {
        double n = _n == 0 ? double.NaN : _n;
        return new()
        {
            ["mean"] = _sum / n,
            ["median"] = Median(),
            ["rmse"] = Math.Sqrt(_sumSq / n),
            ["11.25"] = _t11 / n,
            ["22.5"] = _t22 / n,
            ["30"] = _t30 / n,
        };
    }

    /// <summary>NumPy's median (mean of the two middle values for an even count), from the histogram.</summary>
    private double Median()
    {
        if (_n == 0) return double.NaN;
        return _n % 2 == 1 ? Quantile((_n - 1) / 2) : 0.5 * (Quantile(_n / 2 - 1) + Quantile(_n / 2));
    }

    /// <summary>The k-th smallest angle (0-based), placing a bin's c values evenly inside it, within [min, max].</summary>
    private double Quantile(long k) => Math.Clamp(BinQuantile(k), _min, _max);

    private double BinQuantile(long k)
    {
        long seen = 0;
        for (int b = 0; b < _hist.Length; b++)
        {
            long c = _hist[b];
            if (k < seen + c) return (b + (k - seen + 0.5) / c) * BinWidth;
            seen += c;
        }
        return 180;
    }
}
