using Ccr.Tests.Common;
using Ccr.Training;
using Xunit;
using RunMetrics = System.Collections.Generic.Dictionary<string, System.Collections.Generic.Dictionary<string, double>>;

namespace Ccr.Tests.Train;

/// <summary>
/// The ablation table over seeds on a synthetic case worked by hand: per-seed Δm against the same
/// seed's single-task baselines, intervals, and the paired difference against the MT baseline.
/// Expected intervals from scipy.stats.t.interval(0.95, n - 1, mean, sem) on the same numbers.
/// </summary>
public class AblationTableTests
{
    static RunMetrics M(double miou, double rmse) => new()
    {
        ["semseg"] = new() { ["mIoU"] = miou, ["pixAcc"] = 0.9 },
        ["depth"] = new() { ["rmse"] = rmse },
    };

    static readonly string[] Tasks = ["semseg", "depth"];

    static Dictionary<string, Dictionary<int, RunMetrics>> Results() => new()
    {
        // single-task baselines per seed: semseg 0.5 / 0.4 / 0.5, depth 1.0 / 0.8 / 1.25
        ["st_semseg"] = new() { [0] = M(0.50, 9), [1] = M(0.40, 9), [2] = M(0.50, 9) },
        ["st_depth"] = new() { [0] = M(0.1, 1.00), [1] = M(0.1, 0.80), [2] = M(0.1, 1.25) },
        // Δm = 50 ((mIoU - st) / st - (rmse - st) / st): -10, -5, +5
        ["mt_baseline"] = new() { [0] = M(0.45, 1.10), [1] = M(0.40, 0.88), [2] = M(0.55, 1.25) },
        // Δm: -2.5, 0, +10, so Δm - Δm(MT) = 7.5, 5, 5
        ["ccr_full"] = new() { [0] = M(0.50, 1.05), [1] = M(0.42, 0.84), [2] = M(0.60, 1.25) },
        // only seeds 0 and 1 finished: paired over those
        ["ccr_partial"] = new() { [0] = M(0.50, 1.05), [1] = M(0.42, 0.84) },
    };

    [Fact]
    public void DeltaMIntervalsAndPairedDifferencesMatchTheHandWorkedCase()
    {
        var rows = AblationTable.Build(Tasks,
            [("st_semseg", "ST"), ("st_depth", "ST"), ("mt_baseline", "MT baseline"), ("ccr_full", "CCR"), ("ccr_partial", "CCR, 2 seeds")],
            Results());
        Assert.Equal(["st_baseline", "mt_baseline", "ccr_full", "ccr_partial"], rows.Select(r => r.Name));

        var st = rows[0];
        Assert.Null(st.DeltaM);
        Assert.Equal([0, 1, 2], st.Seeds);
        Tol.Close(0.4666666666666666, st.Main["semseg"].Mean, 1e-12, 0, "ST semseg mean");
        Tol.Close(0.14342175766370918, st.Main["semseg"].HalfWidth, 1e-12, 1e-8, "ST semseg half width");
        Assert.Equal(0.80, st.PerSeed[1]["depth"]["rmse"]);

        var mt = rows[1];
        Tol.Close([-10, -5, 5], [mt.DeltaMPerSeed[0], mt.DeltaMPerSeed[1], mt.DeltaMPerSeed[2]], 1e-12, 0, "MT Δm per seed");
        Tol.Close(-3.333333333333332, mt.DeltaM!.Value.Mean, 1e-12, 0, "MT Δm mean");
        Tol.Close(18.972915168697337, mt.DeltaM!.Value.HalfWidth, 1e-9, 1e-8, "MT Δm half width");
        Assert.Null(mt.VsMt);
        Tol.Close(0.18972915168697330, mt.Main["semseg"].HalfWidth, 1e-12, 1e-8, "MT semseg half width");

        var ccr = rows[2];
        Tol.Close(2.5, ccr.DeltaM!.Value.Mean, 1e-12, 0, "CCR Δm mean");
        Tol.Close(16.431026519939003, ccr.DeltaM!.Value.HalfWidth, 1e-9, 1e-8, "CCR Δm half width");
        Assert.False(ccr.DeltaM!.Value.ExcludesZero); // alone, CCR's Δm interval spans 0 ...
        var vs = ccr.VsMt!.Value;
        Assert.Equal(3, vs.N);
        Tol.Close(5.833333333333331, vs.Mean, 1e-12, 0, "paired mean");
        Tol.Close(3.5855439415927384, vs.HalfWidth, 1e-9, 1e-8, "paired half width");
        Assert.True(vs.ExcludesZero); // ... paired with the baseline's seeds, the gain is resolved

        var partial = rows[3];
        Assert.Equal([0, 1], partial.Seeds);
        Assert.Equal(2, partial.VsMt!.Value.N);
        Tol.Close(6.25, partial.VsMt!.Value.Mean, 1e-12, 0, "partial paired mean");
        Tol.Close(15.882755920540149, partial.VsMt!.Value.HalfWidth, 1e-9, 1e-8, "partial paired half width");
    }

    [Fact]
    public void MarkdownAndJsonCarryIntervalsAndEverySeed()
    {
        var rows = AblationTable.Build(Tasks, [("st_semseg", "ST"), ("st_depth", "ST"), ("mt_baseline", "MT baseline"), ("ccr_full", "CCR")], Results());
        string md = AblationTable.Markdown("Table 1", Tasks, rows);
        Assert.Contains("| CCR | 3 | 0.5067 ± 0.2240 |", md);
        Assert.Contains(" 2.50 ± 16.43 | 5.83 ± 3.59 * |", md);
        Assert.Contains("| MT baseline | 3 |", md);
        Assert.Contains("95% Student-t interval", md);
        var json = System.Text.Json.JsonSerializer.Serialize(AblationTable.Json(rows));
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var ccr = doc.RootElement[2];
        Assert.Equal(0.6, ccr.GetProperty("per_seed").GetProperty("2").GetProperty("metrics").GetProperty("semseg").GetProperty("mIoU").GetDouble());
        Assert.Equal(0.9, ccr.GetProperty("per_seed").GetProperty("0").GetProperty("metrics").GetProperty("semseg").GetProperty("pixAcc").GetDouble());
        Tol.Close(10, ccr.GetProperty("per_seed").GetProperty("2").GetProperty("delta_m").GetDouble(), 1e-12, 0, "json Δm seed 2");
        Tol.Close(2.247789391740604, ccr.GetProperty("delta_m_vs_mt_baseline").GetProperty("low").GetDouble(), 1e-9, 1e-8, "json paired low");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, doc.RootElement[0].GetProperty("delta_m").ValueKind);
    }

    [Fact]
    public void OneSeedGivesValuesWithoutIntervals()
    {
        var one = Results().ToDictionary(kv => kv.Key, kv => kv.Value.Where(x => x.Key == 0).ToDictionary());
        var rows = AblationTable.Build(Tasks, [("st_semseg", "ST"), ("st_depth", "ST"), ("mt_baseline", "MT baseline"), ("ccr_full", "CCR")], one);
        Tol.Close(-10, rows[1].DeltaM!.Value.Mean, 1e-12, 0, "Δm");
        Tol.Close(7.5, rows[2].VsMt!.Value.Mean, 1e-12, 0, "difference");
        Assert.False(rows[2].VsMt!.Value.ExcludesZero);
        string md = AblationTable.Markdown("Table 1", Tasks, rows);
        Assert.Contains("| CCR | 1 | 0.5000 | 1.0500 | -2.50 | 7.50 |", md);
    }
}
