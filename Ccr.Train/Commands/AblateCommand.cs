using Ccr.Nn.IO;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Ccr.Train.Cli;
using Ccr.Training.Config;
using Ccr.Training.Metrics;
using Ccr.Training;

namespace Ccr.Train.Commands;

/// <summary>
/// <c>Ccr.Train ablate</c>: the paper's ablations as runs of the same trainer with different
/// settings. Table 1: single-task baselines, multi-task baseline, CCR-Basic (uniform sampling, no
/// projector, all pairs), + projector, + semi-hard sampling, + task-pair selection, each with Δm.
/// Table 3: the four projector sharing modes. Figure 4: a sweep over k and gamma.
/// Every row is trained with <c>--seeds N</c> seeds (seed, seed+1, ...) over one fixed data set
/// (data.seed pinned to the base config's), in &lt;out&gt;/&lt;row&gt;/seed&lt;S&gt;/; the tables give the mean over
/// seeds with a Student-t interval and, per CCR row, the paired difference in Δm against the MT
/// baseline (<see cref="AblationTable"/>). <c>--split</c> names the split the tables are scored on:
/// val (the runs' own eval.json) or another split, on which each run's final model is evaluated once
/// (eval-&lt;split&gt;.json). A run whose results exist is reused; one cut short resumes from last.ckpt.
/// </summary>
public static class AblateCommand
{
    public static readonly Args.Option[] Options =
    [
        new("config", "base YAML config or preset", Default: "synth-cpu"),
        new("set", "override a key of the base config", Repeatable: true),
        new("out", "output folder for the runs and the tables", Default: "runs/ablate"),
        new("tables", "which to run: comma list of table1, table3, sweep", Default: "table1,table3"),
        new("rows", "only these rows (comma list of run names, e.g. ccr_full); the ST and MT baselines are always kept"),
        new("seeds", "training seeds per row (seed, seed+1, ...; the data set stays fixed)", Default: "1"),
        new("split", "split the tables are scored on: val, or test (SynthRooms with data.test_size > 0)", Default: "val"),
        new("k", "top-k values of the sweep", Default: "16,32,64,128"),
        new("gamma", "gamma values of the sweep", Default: "0.005,0.01,0.02"),
        new("device", "cuda, cpu or auto"),
    ];

    sealed record Variant(string Table, string Name, string Label, string[] Sets);

    const double Level = 0.95;

    public static int Run(string[] argv)
    {
        var a = Args.Parse("ablate", argv, Options);
        if (a.Help)
        {
            Console.Write(Args.Usage("Ccr.Train ablate [options]",
                "Runs the paper's ablations on a dataset (Table 1, Table 3, the Figure 4 sweep over k and gamma),\n" +
                "each row with --seeds training seeds, and writes them as Markdown and JSON (ablation.md,\n" +
                "ablation.json) in --out: mean ± 95% interval over seeds, and the paired difference in delta_m\n" +
                "against the MT baseline.", Options));
            return 0;
        }
        string outDir = a.Get("out")!;
        RunFolder.RefuseFile(outDir, "ablate");
        int nSeeds = a.GetInt("seeds") ?? 1;
        if (nSeeds < 1) throw new UsageException($"ablate: --seeds must be >= 1, got {nSeeds}");
        string split = a.Get("split")!;
        var baseSets = a.All("set").ToList();
        if (a.Get("device") is string dev) baseSets.Add("device=" + dev);
        var baseCfg = ConfigLoader.Load(a.Get("config"), baseSets);
        var tables = a.Get("tables")!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        foreach (var t in tables)
            if (t is not ("table1" or "table3" or "sweep")) throw new UsageException($"ablate: unknown table '{t}' (table1, table3, sweep)");
        // The sweep's lists are checked whichever tables run, so a typo never waits for the sweep.
        foreach (var k in a.Get("k")!.Split(',', StringSplitOptions.TrimEntries))
            if (!int.TryParse(k, NumberStyles.Integer, CultureInfo.InvariantCulture, out int kv) || kv < 1)
                throw new UsageException($"ablate: --k '{k}': each top-k value must be an integer >= 1");
        foreach (var g in a.Get("gamma")!.Split(',', StringSplitOptions.TrimEntries))
            if (!double.TryParse(g, NumberStyles.Float, CultureInfo.InvariantCulture, out double gv) || !(gv > 0 && gv <= 1))
                throw new UsageException($"ablate: --gamma '{g}': each gamma must be a number in (0, 1]");
        // One data set for every run: the base config's, whatever the training seed.
        int dataSeed = baseCfg.Data.Seed ?? baseCfg.Seed;
        baseSets.Add("data.seed=" + dataSeed.ToString(CultureInfo.InvariantCulture));
        var seeds = Enumerable.Range(baseCfg.Seed, nSeeds).ToList();
        if (split != baseCfg.Data.ValSplit) CheckSplit(baseCfg, split);

        var variants = Variants(baseCfg, tables, a.Get("k")!, a.Get("gamma")!);
        if (a.Get("rows") is string only)
        {
            var keep = only.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            var unknown = keep.Where(k => variants.All(v => v.Name != k)).ToList();
            if (unknown.Count > 0)
                throw new UsageException($"ablate: --rows names no row of these tables: {string.Join(", ", unknown)} (rows: {string.Join(", ", variants.Select(v => v.Name).Distinct())})");
            variants = variants.Where(v => keep.Contains(v.Name) || v.Name == AblationTable.MtBaseline || v.Name.StartsWith(AblationTable.StPrefix)).ToList();
        }
        var names = variants.Select(v => v.Name).Distinct().ToList();
        // Every run's config is built (and so checked) before the first run trains: a bad --set or
        // --k value stops here with its one-line error, not after hours of other runs.
        var configs = new Dictionary<(string, int), TrainConfig>();
        foreach (var v in variants.DistinctBy(v => v.Name))
            foreach (int seed in seeds)
                configs[(v.Name, seed)] = ConfigLoader.Load(a.Get("config"), baseSets.Concat(v.Sets)
                    .Append($"name={v.Name}-seed{seed}").Append("seed=" + seed.ToString(CultureInfo.InvariantCulture)));
        Directory.CreateDirectory(outDir);
        var results = new Dictionary<string, Dictionary<int, Dictionary<string, Dictionary<string, double>>>>();
        var times = new Dictionary<string, object>();
        int done = 0, total = names.Count * seeds.Count;
        foreach (var v in variants.DistinctBy(v => v.Name))
        {
            results[v.Name] = new();
            foreach (int seed in seeds)
            {
                done++;
                string dir = RunDir(outDir, v.Name, seed);
                var cfg = configs[(v.Name, seed)];
                int rc = EnsureRun(cfg, dir, split, $"[{done}/{total}] {v.Table}: {v.Label}, seed {seed}");
                if (rc != 0) return rc;
                string timeFile = Path.Combine(dir, "run_time.json");
                if (File.Exists(timeFile)) times[$"{v.Name}/seed{seed}"] = JsonDocument.Parse(File.ReadAllText(timeFile)).RootElement.Clone();
                results[v.Name][seed] = EvalFiles.Read(EvalPath(dir, split, baseCfg));
            }
        }

        var md = new StringBuilder();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Config {baseCfg.Name}, scored on the {split} split; seeds {string.Join(", ", seeds)} (data seed {dataSeed}).")).AppendLine();
        var json = new Dictionary<string, object>
        {
            ["config"] = baseCfg.Name, ["split"] = split, ["seeds"] = seeds, ["data_seed"] = dataSeed, ["level"] = Level,
        };
        foreach (var table in new[] { "table1", "table3", "sweep" }.Where(tables.Contains))
        {
            var rows = variants.Where(v => v.Table == table).Select(v => (v.Name, v.Label)).ToList();
            string title = table switch
            {
                "table1" => "Table 1: overall ablation",
                "table3" => "Table 3: projector sharing",
                _ => "Figure 4: sweep over k and gamma",
            };
            var built = AblationTable.Build(baseCfg.Tasks, rows, results, Level);
            md.Append(AblationTable.Markdown(title, baseCfg.Tasks, built, Level));
            json[table] = AblationTable.Json(built);
        }
        json["run_seconds"] = times;
        var probes = ProbeCcrRuns(variants, seeds, outDir);
        if (probes.Any(p => p.Probes.Count > 0))
        {
            md.Append(AblationTable.ProbeMarkdown(probes, "ccr_full"));
            json["ccr_probe"] = probes.ToDictionary(p => p.Name, p => p.Probes);
        }
        foreach (var fig in DistanceFigures(outDir, seeds[0])) md.AppendLine($"Figure: `{fig}`").AppendLine();
        File.WriteAllText(Path.Combine(outDir, "ablation.md"), md.ToString());
        File.WriteAllText(Path.Combine(outDir, "ablation.json"), JsonSerializer.Serialize(json, RunLog.Json));
        Console.WriteLine();
        Console.Write(md.ToString());
        Console.WriteLine($"written: {Path.Combine(outDir, "ablation.md")}, {Path.Combine(outDir, "ablation.json")}");
        return 0;
    }

    /// <summary>Every finished CCR run's <see cref="CcrProbe"/> (ccr_probe.json in the run folder,
    /// measured once on its last.ckpt and reused).</summary>
    static List<(string Name, string Label, List<CcrProbe.Result> Probes)> ProbeCcrRuns(List<Variant> variants, List<int> seeds, string outDir)
    {
        var result = new List<(string, string, List<CcrProbe.Result>)>();
        foreach (var v in variants.DistinctBy(v => v.Name).Where(v => v.Sets.Contains("ccr.enabled=true")))
        {
            var list = new List<CcrProbe.Result>();
            foreach (int seed in seeds)
            {
                string dir = RunDir(outDir, v.Name, seed), path = Path.Combine(dir, "ccr_probe.json");
                if (!File.Exists(path) && File.Exists(Path.Combine(dir, "last.ckpt")) && File.Exists(Path.Combine(dir, "config.yaml")))
                {
                    Console.WriteLine($"=== probing where CCR acts: {v.Label}, seed {seed}");
                    var cfg = ConfigLoader.Load(Path.Combine(dir, "config.yaml"), []);
                    using var device = Kernels.Device.Create(cfg.Device.ConfigWord(), verbose: false);
                    using var session = new TrainSession(cfg, device);
                    Checkpoint.Load(Path.Combine(dir, "last.ckpt"), session.Root);
                    CcrProbe.Measure(session, batches: 4).Save(path);
                }
                if (File.Exists(path)) list.Add(CcrProbe.Result.Load(path));
            }
            result.Add((v.Name, v.Label, list));
        }
        return result;
    }

    public static string RunDir(string outDir, string name, int seed) =>
        Path.Combine(outDir, name, "seed" + seed.ToString(CultureInfo.InvariantCulture));

    static string EvalPath(string dir, string split, TrainConfig c) =>
        Path.Combine(dir, split == c.Data.ValSplit ? "eval.json" : $"eval-{split}.json");

    /// <summary>The split must exist before hours of training: SynthRooms needs data.test_size, a
    /// dataset on disk its split file.</summary>
    static void CheckSplit(TrainConfig c, string split)
    {
        if (split == c.Data.TrainSplit) throw new UsageException($"ablate: --split {split} is the training split; score on val or a held-out split");
        if (c.Data.Dataset == DatasetKind.Synth)
        {
            if (split != "test") throw new UsageException($"ablate: SynthRooms has the splits train, val and test, not '{split}'");
            if (c.Data.TestSize <= 0) throw new UsageException("ablate: --split test needs a SynthRooms test split: set data.test_size (e.g. --set data.test_size=300)");
        }
        else
        {
            TrainSession.OpenData(c with { Data = c.Data with { ValSplit = split } });
        }
    }

    /// <summary>Trains the run unless its results exist (resuming one cut short), then scores its
    /// final model on <paramref name="split"/> when that is not the validation split. Adds the wall
    /// and CPU seconds (this process's, all threads) of what it ran to the run's run_time.json.
    /// Returns the exit code.</summary>
    static int EnsureRun(TrainConfig cfg, string dir, string split, string title)
    {
        string evalPath = EvalPath(dir, split, cfg);
        if (File.Exists(evalPath))
        {
            Console.WriteLine($"=== {title}: reusing {evalPath}");
            return 0;
        }
        var wall = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        if (!File.Exists(Path.Combine(dir, "eval.json")))
        {
            string cfgFile = Path.Combine(dir, "config.yaml");
            bool resume = File.Exists(Path.Combine(dir, "last.ckpt")) && File.Exists(cfgFile)
                          && File.ReadAllText(cfgFile) == ConfigLoader.ToYaml(cfg);
            if (!resume && Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // cut short with other settings: start over
            Console.WriteLine($"=== {title}{(resume ? " (resuming)" : "")}");
            int rc = TrainCommand.TrainAndReport(cfg, dir, resume, printTable: false);
            AddRunTime(dir, wall.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
            if (rc != 0) return rc;
            if (!File.Exists(Path.Combine(dir, "eval.json"))) return 1; // stopped (Ctrl-C) before the end
            wall.Restart();
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
        }
        if (split != cfg.Data.ValSplit)
        {
            Console.WriteLine($"=== {title}: scoring the final model on {split}");
            EvaluateOn(cfg, dir, split, evalPath);
        }
        AddRunTime(dir, wall.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
        return 0;
    }

    /// <summary>Adds to run_time.json ({"wall_s", "cpu_s"}): a run resumed or scored later adds up.</summary>
    static void AddRunTime(string dir, double wall, double cpu)
    {
        string path = Path.Combine(dir, "run_time.json");
        if (File.Exists(path))
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(path));
                wall += doc.RootElement.GetProperty("wall_s").GetDouble();
                cpu += doc.RootElement.GetProperty("cpu_s").GetDouble();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { }
        File.WriteAllText(path, JsonSerializer.Serialize(new { wall_s = Math.Round(wall, 1), cpu_s = Math.Round(cpu, 1) }));
    }

    /// <summary>Loads the run's last.ckpt (its final model) and scores it on another split.</summary>
    static void EvaluateOn(TrainConfig cfg, string dir, string split, string evalPath)
    {
        cfg = cfg with { Data = cfg.Data with { ValSplit = split } }; // the session's validation set is the split scored
        using var device = Kernels.Device.Create(cfg.Device.ConfigWord(), verbose: false);
        using var session = new TrainSession(cfg, device);
        Checkpoint.Load(Path.Combine(dir, "last.ckpt"), session.Root);
        var metrics = Evaluator.Run(session, session.ValSet, cfg.Eval.BatchSize);
        RunLog.WriteEval(evalPath, metrics, null);
        Console.WriteLine($"{split}: " + Trainer.Summary(metrics, null));
    }

    /// <summary>The paper's Figures 1 and 5: pair distance histograms of the multi-task baseline
    /// against full CCR, from the distances.json each run wrote.</summary>
    static List<string> DistanceFigures(string outDir, int seed)
    {
        var written = new List<string>();
        string b = Path.Combine(RunDir(outDir, "mt_baseline", seed), "distances.json"), c = Path.Combine(RunDir(outDir, "ccr_full", seed), "distances.json");
        if (!File.Exists(b) || !File.Exists(c)) return written;
        var baseline = DistanceSamples.Load(b);
        var ccr = DistanceSamples.Load(c);
        foreach (var p in baseline)
        {
            var q = ccr.FirstOrDefault(x => x.Target == p.Target && x.Source == p.Source);
            if (q == null) continue;
            string png = Path.Combine(outDir, $"figure_distances_{p.Target}_{p.Source}.png");
            Training.Reporting.DistanceHistograms.Write(png, $"{p.Target} features, pairs from {p.Source} labels",
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
