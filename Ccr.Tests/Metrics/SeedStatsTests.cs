using System.Text.Json;
using Ccr.Tests.Common;
using Ccr.Tests.Data;
using Ccr.Training.Metrics;
using Xunit;

namespace Ccr.Tests.Metrics;

/// <summary>
/// Confidence intervals over seeds against scipy (tools/golden_seed_stats.py: scipy.stats.t.interval
/// for means, scipy.stats.ttest_rel's confidence interval for paired differences), and a case
/// worked by hand.
/// </summary>
public class SeedStatsTests
{
    static readonly JsonElement Golden =
        JsonDocument.Parse(File.ReadAllText(TestData.Fixture("metrics", "seed_stats.json"))).RootElement;

    static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    [Fact]
    public void MeanIntervalsMatchScipy()
    {
        int cases = 0;
        foreach (var c in Golden.GetProperty("means").EnumerateArray())
        {
            var x = Doubles(c.GetProperty("values"));
            double level = c.GetProperty("level").GetDouble();
            var s = SeedStats.MeanCi(x, level);
            string what = $"n={x.Length} level={level}";
            Assert.Equal(x.Length, s.N);
            Tol.Close(c.GetProperty("mean").GetDouble(), s.Mean, 1e-12, 1e-12, what + " mean");
            Tol.Close(c.GetProperty("sd").GetDouble(), s.StdDev, 1e-12, 1e-10, what + " sd");
            Tol.Close(c.GetProperty("t").GetDouble(), SeedStats.TQuantile(level, x.Length - 1), 1e-9, 1e-8, what + " t"); // MathNet's quantile: ~2e-9 relative
            Tol.Close(c.GetProperty("low").GetDouble(), s.Low, 1e-9, 1e-8, what + " low");
            Tol.Close(c.GetProperty("high").GetDouble(), s.High, 1e-9, 1e-8, what + " high");
            cases++;
        }
        Assert.True(cases >= 8);
    }

    [Fact]
    public void PairedDifferencesMatchScipyTtestRel()
    {
        foreach (var c in Golden.GetProperty("paired").EnumerateArray())
        {
            var a = Doubles(c.GetProperty("a"));
            var b = Doubles(c.GetProperty("b"));
            var s = SeedStats.PairedDifference(a, b, c.GetProperty("level").GetDouble());
            Tol.Close(c.GetProperty("mean").GetDouble(), s.Mean, 1e-12, 1e-12, $"paired n={a.Length} mean");
            Tol.Close(c.GetProperty("low").GetDouble(), s.Low, 1e-9, 1e-8, $"paired n={a.Length} low");
            Tol.Close(c.GetProperty("high").GetDouble(), s.High, 1e-9, 1e-8, $"paired n={a.Length} high");
            // the interval excludes zero exactly when the two-sided paired t-test rejects at 5%
            Assert.Equal(c.GetProperty("pvalue").GetDouble() < 0.05, s.ExcludesZero);
        }
    }

    [Fact]
    public void HandWorkedThreeSeedCase()
    {
        // values 1, 2, 6: mean 3, s^2 = (4 + 1 + 9) / 2 = 7, sem = sqrt(7 / 3); t_{0.975, 2} = 4.302652729911275
        var s = SeedStats.MeanCi([1, 2, 6]);
        Tol.Close(3.0, s.Mean, 1e-15, 0, "mean");
        Tol.Close(Math.Sqrt(7), s.StdDev, 1e-15, 1e-15, "sd");
        Tol.Close(4.302652729911275 * Math.Sqrt(7.0 / 3.0), s.HalfWidth, 1e-12, 1e-8, "half width");
        Assert.Equal("3.000 ± 6.572", SeedStats.Format(s, "F3"));

        // pairing removes the shared seed effect: a - b = 1, 1.1, 0.9 -> mean 1, s = 0.1
        var d = SeedStats.PairedDifference([11, 21.1, 60.9], [10, 20, 60]);
        Tol.Close(1.0, d.Mean, 1e-12, 0, "paired mean");
        Tol.Close(4.302652729911275 * 0.1 / Math.Sqrt(3), d.HalfWidth, 1e-12, 1e-8, "paired half width");
        Assert.True(d.ExcludesZero);
    }

    [Fact]
    public void OneSeedHasNoIntervalAndBadInputIsRefused()
    {
        var s = SeedStats.MeanCi([0.5]);
        Assert.Equal(0.5, s.Mean);
        Assert.True(double.IsNaN(s.HalfWidth));
        Assert.False(s.ExcludesZero);
        Assert.Equal("0.5000", SeedStats.Format(s));
        Assert.Throws<ArgumentException>(() => SeedStats.MeanCi([]));
        Assert.Throws<ArgumentException>(() => SeedStats.MeanCi([1, 2], level: 1));
        Assert.Throws<ArgumentException>(() => SeedStats.PairedDifference([1, 2], [1]));
    }
}
