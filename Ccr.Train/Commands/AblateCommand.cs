using System.Globalization;
using System.Text;
using System.Text.Json;
using Ccr.Train.Cli;
using Ccr.Train.Config;
using Ccr.Train.Data;
using Ccr.Train.Metrics;
using Ccr.Train.Training;

namespace Ccr.Train.Commands;

/// <summary>
/// <c>Ccr.Train ablate</c>: the paper's ablations as runs of the same trainer with different
/// settings. Table 1: single-task baselines, multi-task baseline, CCR-Basic (uniform sampling, no
/// projector, all pairs), + projector, + semi-hard sampling, + task-pair selection, each with Δm.
/// Table 3: the four projector sharing modes. Figure 4: a sweep over k and gamma. A run whose
/// eval.json already exists in the output folder is reused, so an interrupted ablation resumes.
/// </summary>
public static class AblateCommand
{
    public static readonly Args.Option[] Options =
    [
        new("config", "base YAML config or preset", Default: "synth-cpu"),
        new("set", "override a key of the base config", Repeatable: true),
        new("out", "output folder for the runs and the tables", Default: "runs/ablate"),
        new("tables", "which to run: comma list of table1, table3, sweep", Default: "table1,table3"),
        new("k", "top-k values of the sweep", Default: "16,32,64,128"),
        new("gamma", "gamma values of the sweep", Default: "0.005,0.01,0.02"),
        new("device", "cuda, cpu or auto"),
    ];

    sealed record Variant(string Table, string Name, string Label, string[] Sets);

    public static int Run(string[] argv)
    {
        var a = Args.Parse("ablate", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train ablate [options]",
                "Runs the paper's ablations on a dataset (Table 1, Table 3, the Figure 4 sweep over k and gamma)\n" +
                "and writes them as Markdown and JSON (ablation.md, ablation.json) in --out.", Options));
            return 0;
        }
        string outDir = a.Get("out")!;
        Directory.CreateDirectory(outDir);
        var baseSets = a.All("set").ToList();
        if (a.Get("device") is string dev) baseSets.Add("device=" + dev);
        var baseCfg = ConfigLoader.Load(a.Get("config"), baseSets);
        var tables = a.Get("tables")!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        foreach (var t in tables)
            if (t is not ("table1" or "table3" or "sweep")) throw new UsageException($"ablate: unknown table '{t}' (table1, table3, sweep)");

        var variants = Variants(baseCfg, tables, a.Get("k")!, a.Get("gamma")!);
        var results = new Dictionary<string, Dictionary<string, Dictionary<string, double>>>();
        foreach (var v in variants)
        {
            string dir = Path.Combine(outDir, v.Name);
            string evalPath = Path.Combine(dir, "eval.json");
            if (!results.ContainsKey(v.Name))
            {
                if (!File.Exists(evalPath))
                {
                    Console.WriteLine($"=== {v.Table}: {v.Label} ({v.Name})");
                    var cfg = ConfigLoader.Load(a.Get("config"), baseSets.Concat(v.Sets).Append("name=" + v.Name));
                    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // a run cut short starts over
                    int rc = TrainCommand.TrainAndReport(cfg, dir, resume: false, printTable: false);
                    if (rc != 0) return rc;
                }
                else Console.WriteLine($"=== {v.Table}: {v.Label}: reusing {evalPath}");
                results[v.Name] = EvalFiles.Read(evalPath);
            }
        }

        // Δm of multi-task rows against the single-task baselines.
        var single = new Dictionary<string, Dictionary<string, double>>();
        foreach (var t in baseCfg.Tasks)
            if (results.TryGetValue("st_" + t, out var st) && st.TryGetValue(t, out var m)) single[t] = m;

        var md = new StringBuilder();
        var json = new Dictionary<string, object>();
        foreach (var table in new[] { "table1", "table3", "sweep" }.Where(tables.Contains))
        {
            var rows = variants.Where(v => v.Table == table).ToList();
            string title = table switch
            {
                "table1" => "Table 1: overall ablation",
                "table3" => "Table 3: projector sharing",
                _ => "Figure 4: sweep over k and gamma",
            };
            md.AppendLine($"## {title}").AppendLine();
            md.Append("| model |");
            foreach (var t in baseCfg.Tasks) md.Append($" {t} {TaskInfo.MainMetric(t)} {(TaskInfo.LowerIsBetter(t) ? "↓" : "↑")} |");
            md.AppendLine(" Δm (%) ↑ |");
            md.Append("|---|").Append(string.Concat(baseCfg.Tasks.Select(_ => "---|"))).AppendLine("---|");
            var jrows = new List<object>();
            bool stShown = false;
            foreach (var v in rows)
            {
                if (v.Name.StartsWith("st_"))
                {
                    if (stShown) continue; // one ST row gathers every single-task run
                    stShown = true;
                }
                var r = results[v.Name];
                string label = v.Name.StartsWith("st_") ? "ST baseline" : v.Label;
                md.Append($"| {label} |");
                var values = new Dictionary<string, double>();
                foreach (var t in baseCfg.Tasks)
                {
                    var src = v.Name.StartsWith("st_") ? (results.TryGetValue("st_" + t, out var s) ? s : null) : r;
                    if (src != null && src.TryGetValue(t, out var m) && m.TryGetValue(TaskInfo.MainMetric(t), out var val))
                    {
                        md.Append(string.Create(CultureInfo.InvariantCulture, $" {val:F4} |"));
                        values[t] = val;
                    }
                    else md.Append(" - |");
                }
                double? dm = !v.Name.StartsWith("st_") && single.Count == baseCfg.Tasks.Count ? DeltaM.Compute(r, single) : null;
                md.AppendLine(dm is double d ? string.Create(CultureInfo.InvariantCulture, $" {d:F3} |") : " - |");
                jrows.Add(new { name = v.Name.StartsWith("st_") ? "st_baseline" : v.Name, label, metrics = values, delta_m = dm });
            }
            md.AppendLine();
            json[table] = jrows;
        }
        foreach (var fig in DistanceFigures(outDir)) md.AppendLine($"Figure: `{fig}`").AppendLine();
        File.WriteAllText(Path.Combine(outDir, "ablation.md"), md.ToString());
        File.WriteAllText(Path.Combine(outDir, "ablation.json"), JsonSerializer.Serialize(json, RunLog.Json));
        Console.WriteLine();
        Console.Write(md.ToString());
        Console.WriteLine($"written: {Path.Combine(outDir, "ablation.md")}, {Path.Combine(outDir, "ablation.json")}");
        return 0;
    }

    /// <summary>The paper's Figures 1 and 5: pair distance histograms of the multi-task baseline
    /// against full CCR, from the distances.json each run wrote.</summary>
    static List<string> DistanceFigures(string outDir)
    {
        var written = new List<string>();
        string b = Path.Combine(outDir, "mt_baseline", "distances.json"), c = Path.Combine(outDir, "ccr_full", "distances.json");
        if (!File.Exists(b) || !File.Exists(c)) return written;
        var baseline = DistanceSamples.Load(b);
        var ccr = DistanceSamples.Load(c);
        foreach (var p in baseline)
        {
            var q = ccr.FirstOrDefault(x => x.Target == p.Target && x.Source == p.Source);
            if (q == null) continue;
            string png = Path.Combine(outDir, $"figure_distances_{p.Target}_{p.Source}.png");
            Reporting.DistanceHistograms.Write(png, $"{p.Target} features, pairs from {p.Source} labels",
                [("MT baseline", p.Pos, p.Neg), ("CCR", q.Pos, q.Neg)]);
            written.Add(Path.GetFileName(png));
        }
        return written;
    }

    static List<Variant> Variants(TrainConfig c, HashSet<string> tables, string ks, string gammas)
    {
        var v = new List<Variant>();
        const string off = "ccr.enabled=false";
        string[] basic = ["ccr.enabled=true", "ccr.sampling=basic", "ccr.sharing=none", "ccr.pair_selection=all"];
        if (tables.Contains("table1"))
        {
            foreach (var t in c.Tasks) v.Add(new("table1", "st_" + t, "ST baseline (" + t + ")", [off, $"tasks=[{t}]"]));
            v.Add(new("table1", "mt_baseline", "MT baseline", [off]));
            v.Add(new("table1", "ccr_basic", "CCR-Basic", basic));
            v.Add(new("table1", "ccr_proj", "+ Proj", ["ccr.enabled=true", "ccr.sampling=basic", "ccr.sharing=source", "ccr.pair_selection=all"]));
            v.Add(new("table1", "ccr_proj_ss", "+ Proj + SS", ["ccr.enabled=true", "ccr.sampling=hard", "ccr.sharing=source", "ccr.pair_selection=all"]));
            v.Add(new("table1", "ccr_full", "+ Proj + SS + CTS", ["ccr.enabled=true", "ccr.sampling=hard", "ccr.sharing=source", "ccr.pair_selection=random"]));
        }
        if (tables.Contains("table3"))
        {
            if (!tables.Contains("table1")) foreach (var t in c.Tasks) v.Add(new("table3", "st_" + t, "ST baseline (" + t + ")", [off, $"tasks=[{t}]"]));
            v.Add(new("table3", "mt_baseline", "MT baseline", [off]));
            v.Add(new("table3", "share_unshared", "CCR, unshared", ["ccr.enabled=true", "ccr.sharing=unshared"]));
            v.Add(new("table3", "share_target", "CCR, Tt-shared", ["ccr.enabled=true", "ccr.sharing=target"]));
            v.Add(new("table3", "share_both", "CCR, Tt- and Ts-shared", ["ccr.enabled=true", "ccr.sharing=both"]));
            v.Add(new("table3", "ccr_full", "CCR, Ts-shared", ["ccr.enabled=true", "ccr.sharing=source"]));
        }
        if (tables.Contains("sweep"))
        {
            foreach (var k in ks.Split(',', StringSplitOptions.TrimEntries))
                v.Add(new("sweep", "k" + k, $"k = {k}, gamma = {c.Ccr.Gamma}", ["ccr.enabled=true", "ccr.top_k=" + k]));
            foreach (var g in gammas.Split(',', StringSplitOptions.TrimEntries))
                v.Add(new("sweep", "gamma" + g, $"k = {c.Ccr.TopK}, gamma = {g}", ["ccr.enabled=true", "ccr.gamma=" + g]));
        }
        return v;
    }
}
