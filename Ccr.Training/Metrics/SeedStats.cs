using MathNet.Numerics.Distributions;

namespace Ccr.Training.Metrics;

/// <summary>A mean over seeds with its two-sided confidence interval [Low, High] (NaN bounds with one seed).</summary>
public readonly record struct SeedInterval(int N, double Mean, double StdDev, double HalfWidth, double Level)
{
    public double Low => Mean - HalfWidth;
    public double High => Mean + HalfWidth;
    /// <summary>True when the interval lies wholly above (or below) zero: the sign of the mean is
    /// resolved at this level (only meaningful for a difference).</summary>
    public bool ExcludesZero => N > 1 && (Low > 0 || High < 0);
}

/// <summary>
/// Statistics over training seeds: the mean of n runs with a Student-t confidence interval,
/// mean ± t_{(1+level)/2, n-1} · s / √n with s the sample standard deviation (n - 1 in the
/// denominator), and the paired version for the difference of two settings trained with the same
/// seeds (the interval of the per-seed differences). The t quantile comes from MathNet.Numerics.
/// With one seed there is no interval: the half-width is NaN.
/// </summary>
public static class SeedStats
{
    public static SeedInterval MeanCi(IReadOnlyList<double> values, double level = 0.95)
    {
        if (values.Count == 0) throw new ArgumentException("SeedStats: no values");
        if (!(level > 0 && level < 1)) throw new ArgumentException($"SeedStats: confidence level must be in (0, 1), got {level}");
        int n = values.Count;
        double mean = values.Average();
        if (n == 1) return new SeedInterval(1, mean, double.NaN, double.NaN, level);
        double ss = 0;
        foreach (var v in values) ss += (v - mean) * (v - mean);
        double sd = Math.Sqrt(ss / (n - 1));
        return new SeedInterval(n, mean, sd, TQuantile(level, n - 1) * sd / Math.Sqrt(n), level);
    }

    /// <summary>The interval of a - b over paired runs (a[i] and b[i] trained with the same seed).</summary>
    public static SeedInterval PairedDifference(IReadOnlyList<double> a, IReadOnlyList<double> b, double level = 0.95)
    {
        if (a.Count != b.Count) throw new ArgumentException($"SeedStats: paired difference of {a.Count} and {b.Count} values");
        return MeanCi(a.Zip(b, (x, y) => x - y).ToList(), level);
    }

    /// <summary>t_{(1+level)/2, dof}: the two-sided critical value of Student's t.</summary>
    public static double TQuantile(double level, int dof) => StudentT.InvCDF(0, 1, dof, 0.5 + level / 2);

    /// <summary>"0.3210 ± 0.0123" (or the mean alone with one seed), with <paramref name="format"/> digits.</summary>
    public static string Format(SeedInterval s, string format = "F4") =>
        s.N > 1 && double.IsFinite(s.HalfWidth)
            ? s.Mean.ToString(format, System.Globalization.CultureInfo.InvariantCulture) + " ± " + s.HalfWidth.ToString(format, System.Globalization.CultureInfo.InvariantCulture)
            : s.Mean.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
}
