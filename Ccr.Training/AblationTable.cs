using System.Globalization;
using System.Text;
using Ccr.Training.Data;
using Ccr.Training.Metrics;
// every task's metrics of one run (an eval.json): task -> metric -> value
using RunMetrics = System.Collections.Generic.Dictionary<string, System.Collections.Generic.Dictionary<string, double>>;

namespace Ccr.Training;

/// <summary>
/// The ablation tables over seeds. Input: for every row (a run name such as mt_baseline, or st_&lt;task&gt;
/// for the single-task baselines) the metrics of each seed. Per row and task: the mean of the task's
/// main metric over seeds with its Student-t interval. Per multi-task row and seed: Δm against the
/// single-task baselines of the <i>same</i> seed, and the mean Δm with its interval. Per row other
/// than the MT baseline: the paired difference Δm(row) - Δm(MT baseline) over the seeds both have,
/// with its interval (pairing removes what a seed does to both runs alike: data order,
/// augmentation, and the baselines' own noise).
/// </summary>
public static class AblationTable
{
    public const string MtBaseline = "mt_baseline";
    public const string StPrefix = "st_";

    /// <summary>One row of a table.</summary>
    /// <param name="Seeds">seeds this row has results for</param>
    /// <param name="Main">per task: the main metric's mean and interval over seeds (tasks without results absent)</param>
    /// <param name="PerSeed">per seed: every task's metrics (the ST row gathers the st_&lt;task&gt; runs)</param>
    /// <param name="DeltaMPerSeed">per seed: Δm in percent (seeds with every single-task baseline only)</param>
    /// <param name="DeltaM">Δm over seeds; null for the ST row or without baselines</param>
    /// <param name="VsMt">Δm(row) - Δm(MT baseline), paired by seed; null for the baselines</param>
    public sealed record Row(
        string Name, string Label, IReadOnlyList<int> Seeds,
        IReadOnlyDictionary<string, SeedInterval> Main,
        IReadOnlyDictionary<int, RunMetrics> PerSeed,
        IReadOnlyDictionary<int, double> DeltaMPerSeed,
        SeedInterval? DeltaM,
        SeedInterval? VsMt);

    /// <param name="rows">(name, label) in table order; st_&lt;task&gt; names collapse into one ST row.</param>
    /// <param name="results">run name → seed → metrics.</param>
    public static List<Row> Build(IReadOnlyList<string> tasks, IReadOnlyList<(string Name, string Label)> rows,
        IReadOnlyDictionary<string, Dictionary<int, RunMetrics>> results, double level = 0.95)
    {
        // The single-task baseline of each seed: task → metrics, where that seed has every task's ST run.
        var stBySeed = new Dictionary<int, RunMetrics>();
        foreach (var seed in results.Where(r => r.Key.StartsWith(StPrefix)).SelectMany(r => r.Value.Keys).Distinct())
        {
            var st = new RunMetrics();
            foreach (var t in tasks)
                if (results.TryGetValue(StPrefix + t, out var bySeed) && bySeed.TryGetValue(seed, out var m) && m.TryGetValue(t, out var tm))
                    st[t] = tm;
            if (st.Count == tasks.Count) stBySeed[seed] = st;
        }

        var deltaM = new Dictionary<string, Dictionary<int, double>>();
        Dictionary<int, double> DeltaMOf(string name)
        {
            if (deltaM.TryGetValue(name, out var d)) return d;
            d = new Dictionary<int, double>();
            if (results.TryGetValue(name, out var bySeed))
                foreach (var (seed, m) in bySeed)
                    if (stBySeed.TryGetValue(seed, out var st) && tasks.All(m.ContainsKey))
                        d[seed] = Metrics.DeltaM.Compute(m, st, tasks);
            return deltaM[name] = d;
        }

        var table = new List<Row>();
        bool stDone = false;
        foreach (var (name, label) in rows)
        {
            if (name.StartsWith(StPrefix))
            {
                if (stDone) continue; // one ST row gathers every single-task run
                stDone = true;
                var perSeed = new Dictionary<int, RunMetrics>();
                foreach (var t in tasks)
                    if (results.TryGetValue(StPrefix + t, out var bySeed))
                        foreach (var (seed, m) in bySeed)
                            if (m.TryGetValue(t, out var tm))
                            {
                                if (!perSeed.TryGetValue(seed, out var rm)) perSeed[seed] = rm = new RunMetrics();
                                rm[t] = tm;
                            }
                table.Add(new Row("st_baseline", "ST baseline", perSeed.Keys.Order().ToList(), MainIntervals(tasks, perSeed, level),
                                  perSeed, new Dictionary<int, double>(), null, null));
                continue;
            }
            var runs = results.TryGetValue(name, out var r) ? r : new Dictionary<int, RunMetrics>();
            var dm = DeltaMOf(name);
            SeedInterval? dmCi = dm.Count > 0 ? SeedStats.MeanCi(dm.OrderBy(x => x.Key).Select(x => x.Value).ToList(), level) : null;
            SeedInterval? vs = null;
            if (name != MtBaseline)
            {
                var mt = DeltaMOf(MtBaseline);
                var common = dm.Keys.Where(mt.ContainsKey).Order().ToList();
                if (common.Count > 0)
                    vs = SeedStats.PairedDifference(common.Select(s => dm[s]).ToList(), common.Select(s => mt[s]).ToList(), level);
            }
            table.Add(new Row(name, label, runs.Keys.Order().ToList(), MainIntervals(tasks, runs, level), runs, dm, dmCi, vs));
        }
        return table;
    }

    static Dictionary<string, SeedInterval> MainIntervals(IReadOnlyList<string> tasks, IReadOnlyDictionary<int, RunMetrics> perSeed, double level)
    {
        var main = new Dictionary<string, SeedInterval>();
        foreach (var t in tasks)
        {
            string key = TaskInfo.MainMetric(t);
            var values = perSeed.OrderBy(x => x.Key)
                .Where(x => x.Value.TryGetValue(t, out var m) && m.ContainsKey(key))
                .Select(x => x.Value[t][key]).ToList();
            if (values.Count > 0) main[t] = SeedStats.MeanCi(values, level);
        }
        return main;
    }

    /// <summary>The table as Markdown: mean ± half-width of the interval, and the seeds it rests on.</summary>
    public static string Markdown(string title, IReadOnlyList<string> tasks, IReadOnlyList<Row> rows, double level = 0.95)
    {
        var ci = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine($"## {title}").AppendLine();
        md.Append("| model | seeds |");
        foreach (var t in tasks) md.Append($" {t} {TaskInfo.MainMetric(t)} {(TaskInfo.LowerIsBetter(t) ? "↓" : "↑")} |");
        md.AppendLine(" Δm (%) ↑ | Δm − MT baseline (%) |");
        md.Append("|---|---|").Append(string.Concat(tasks.Select(_ => "---|"))).AppendLine("---|---|");
        foreach (var r in rows)
        {
            md.Append($"| {r.Label} | {r.Seeds.Count} |");
            foreach (var t in tasks)
                md.Append(r.Main.TryGetValue(t, out var s) ? $" {SeedStats.Format(s, Digits(t))} |" : " - |");
            md.Append(r.DeltaM is SeedInterval d ? $" {SeedStats.Format(d, "F2")} |" : " - |");
            md.AppendLine(r.VsMt is SeedInterval v ? $" {SeedStats.Format(v, "F2")}{(v.ExcludesZero ? " *" : "")} |" : " - |");
        }
        md.AppendLine();
        md.AppendLine(string.Create(ci, $"Mean over seeds ± the half-width of its {level * 100:0}% Student-t interval (no ± with one seed). ") +
                      "Δm per seed against the single-task baselines of that seed. The last column pairs each row with the MT " +
                      "baseline of the same seed (mean of the per-seed differences ± its interval); * marks an interval that excludes 0.");
        md.AppendLine();
        return md.ToString();
    }

    static string Digits(string task) => TaskInfo.MainMetric(task) == "mean" ? "F2" : "F4";

    /// <summary>The table for ablation.json: every seed's metrics and Δm, and the intervals.</summary>
    public static List<object> Json(IReadOnlyList<Row> rows) => rows.Select(r => (object)new
    {
        name = r.Name,
        label = r.Label,
        seeds = r.Seeds,
        metrics = r.Main.ToDictionary(kv => kv.Key, kv => kv.Value.Mean),
        intervals = r.Main.ToDictionary(kv => kv.Key, kv => Interval(kv.Value)),
        delta_m = r.DeltaM?.Mean,
        delta_m_interval = r.DeltaM is SeedInterval d ? Interval(d) : null,
        delta_m_vs_mt_baseline = r.VsMt is SeedInterval v ? Interval(v) : null,
        per_seed = r.PerSeed.OrderBy(kv => kv.Key).ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => (object)new
        {
            metrics = kv.Value,
            delta_m = r.DeltaMPerSeed.TryGetValue(kv.Key, out var x) ? x : (double?)null,
        }),
    }).ToList();

    static object Interval(SeedInterval s) => new
    {
        n = s.N,
        mean = s.Mean,
        low = s.N > 1 ? s.Low : (double?)null,
        high = s.N > 1 ? s.High : (double?)null,
        sd = s.N > 1 ? s.StdDev : (double?)null,
        level = s.Level,
    };

    /// <summary>
    /// Where CCR acts, from each CCR row's <see cref="CcrProbe"/> results (means over the seeds
    /// probed): anchors, mining shares, the CCR loss beside the weighted task losses, and CCR's
    /// gradient on the shared backbone beside the task losses' joint gradient; then the per-pair
    /// mining of <paramref name="detailRow"/>.
    /// </summary>
    public static string ProbeMarkdown(IReadOnlyList<(string Name, string Label, List<CcrProbe.Result> Probes)> rows, string? detailRow = null)
    {
        var ci = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("## Where CCR acts (the final models, probed on training batches)").AppendLine();
        md.AppendLine("| model | seeds | anchors / image | with a positive | with a triplet | active triplets | CCR loss | weighted task losses | ‖∇ backbone‖ tasks | ‖∇ backbone‖ CCR | cos(CCR, tasks) |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (_, label, probes) in rows.Where(r => r.Probes.Count > 0))
        {
            double M(Func<CcrProbe.Result, double> f) => probes.Average(f);
            double P(Func<CcrProbe.PairStats, double> f) => probes.Average(p => p.Pairs.Average(f));
            double tasks = M(p => p.Losses.Where(kv => kv.Key != "ccr").Sum(kv => kv.Value));
            md.AppendLine(string.Create(ci, $"| {label} | {probes.Count} | {P(x => x.AnchorsPerImage):F0} | {P(x => x.WithPositive) * 100:F0}% | " +
                $"{P(x => x.WithTriplet) * 100:F0}% | {P(x => x.ActiveTriplets) * 100:F0}% | {M(p => p.Losses["ccr"]):F4} | {tasks:F3} | " +
                $"{M(p => p.TasksBackboneNorm):F4} | {M(p => p.GradNorms["ccr"].GetValueOrDefault("backbone")):F4} | {M(p => p.BackboneCosine):F3} |"));
        }
        md.AppendLine();
        md.AppendLine("Shares are of the sampled anchors, averaged over every ordered task pair; a triplet needs a positive and a " +
                      "semi-hard negative (farther than the hardest positive); an active triplet has a positive hinge and passes gradient. " +
                      "Losses and gradients are per term as the training step weighs them (tasks with their weights, CCR with lambda).");
        md.AppendLine();
        var detail = rows.FirstOrDefault(r => r.Name == detailRow && r.Probes.Count > 0);
        if (detail.Probes != null)
        {
            md.AppendLine($"Per pair, {detail.Label}:").AppendLine();
            md.AppendLine("| features ← labels | anchors / image | with a positive | with a triplet | active triplets | mean d(a, p) | mean d(a, n) | pair loss |");
            md.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var key in detail.Probes[0].Pairs.Select(p => (p.Target, p.Source)))
            {
                var ps = detail.Probes.Select(r => r.Pairs.First(p => (p.Target, p.Source) == key)).ToList();
                double A(Func<CcrProbe.PairStats, double> f) => ps.Average(f);
                md.AppendLine(string.Create(ci, $"| {key.Target} ← {key.Source} | {A(x => x.AnchorsPerImage):F0} | {A(x => x.WithPositive) * 100:F0}% | " +
                    $"{A(x => x.WithTriplet) * 100:F0}% | {A(x => x.ActiveTriplets) * 100:F0}% | {A(x => x.MeanPos):F3} | {A(x => x.MeanNeg):F3} | {A(x => x.Loss):F4} |"));
            }
            md.AppendLine();
        }
        return md.ToString();
    }
}
