using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ccr.Bench.Report;

/// <summary>One line of the final table: both sides of a case, their ratio and the issue's target.</summary>
public sealed record TableRow(string Part, string Id, string What, string Shape, string Precision,
                              string Ours, string Torch, double? Ratio, string Target, string Status);

/// <summary>
/// <c>Ccr.Bench report-table DIR</c>: joins what tools/gpu_report.sh left in DIR — ours*.json,
/// torch_*.json, meta.txt (key=value: card, driver, date, command), parts.tsv (part, exit code,
/// seconds, log, note) and the logs of verify and compute-sanitizer — into DIR/report.md (one
/// Markdown table) and DIR/report.json. Ratios are ours / PyTorch in time (below 1: ours faster).
/// A missing file or row is a row that says so; nothing stops the table from being written.
/// Targets are issue 11's: conv and GEMM >= 60% of cuDNN / cuBLAS throughput in fp32 (time ratio
/// &lt;= 1.67) and >= 50% in TF32 (&lt;= 2.0); memory-bound kernels >= 70% of our measured copy
/// bandwidth; the CCR pair >= 3x faster than PyTorch eager (&lt;= 0.33); the step with CCR &lt;= 1.0x
/// PyTorch's; CCR &lt;= 5% of our step; peak memory &lt;= PyTorch's.
/// </summary>
public static class ReportTable
{
    /// <summary>Id suffix of a PyTorch row timed with torch.backends.cudnn.benchmark off
    /// (tools/torch_requires.py); the row without it was timed with it on.</summary>
    public const string CudnnOff = ".cudnn_off";

    public static int Run(string[] args)
    {
        if (args.Length != 1 || args[0].StartsWith('-'))
        {
            Console.Error.WriteLine("usage: Ccr.Bench report-table DIR   (DIR: the folder tools/gpu_report.sh writes)");
            return 2;
        }
        string dir = args[0];
        if (!Directory.Exists(dir)) { Console.Error.WriteLine($"report-table: folder '{dir}' does not exist"); return 2; }
        var (md, rows) = Build(dir);
        File.WriteAllText(Path.Combine(dir, "report.md"), md);
        Console.Write(md);
        return rows.Any(r => r.Status.StartsWith("FAIL")) ? 1 : 0;
    }

    /// <summary>The Markdown report and its rows (also written as report.json).</summary>
    public static (string Markdown, List<TableRow> Rows) Build(string dir)
    {
        var meta = ReadKeyValues(Path.Combine(dir, "meta.txt"));
        var parts = ReadParts(Path.Combine(dir, "parts.tsv"));
        var notes = new List<string>();
        var (oursRows, oursMeta) = LoadSide(dir, "ours*.json", "ours", notes);
        var (torchRows, torchMeta) = LoadSide(dir, "torch_*.json", "PyTorch", notes);
        if (oursRows.Count == 0 && !notes.Any(n => n.StartsWith("ours"))) notes.Add("ours: no ours*.json was written");
        var oursById = oursRows.GroupBy(r => r.Id).ToDictionary(g => g.Key, g => g.Last());
        var torch = torchRows.GroupBy(r => r.Id).ToDictionary(g => g.Key, g => g.Last());

        var rows = new List<TableRow>();
        rows.AddRange(CheckRows(dir, parts));
        bool modelsDiffer = false;
        foreach (var id in new[] { "model.parameters", "model.parameters_ccr" })
        {
            var row = ParameterRow(id, oursById.GetValueOrDefault(id), torch.GetValueOrDefault(id));
            modelsDiffer |= row.Status.StartsWith("FAIL");
            rows.Add(row);
        }
        double? copyGbs = Get(oursById.GetValueOrDefault("copy.256@120x160") is { Ok: true } cp ? cp : null, "gbs");
        var ids = oursRows.Select(r => r.Id).Concat(torchRows.Select(r => r.Id)).Distinct()
            .Where(id => !id.StartsWith("model.") && !id.EndsWith(CudnnOff)).ToList();
        foreach (var id in ids)
        {
            var o = oursById.GetValueOrDefault(id);
            // PyTorch eager has no graph: our step without graphs is compared with the same eager step
            string tid = id.EndsWith(".nograph") ? id[..^".nograph".Length] : id;
            rows.Add(MeasuredRow(id, o, torch.GetValueOrDefault(tid), copyGbs, modelsDiffer));
            // PyTorch's rows with cudnn.benchmark on carry the plain id (the target is judged on them:
            // how its users run it); those with it off (its default) follow, for information
            if (torch.GetValueOrDefault(tid + CudnnOff) is { } off)
            {
                var r = MeasuredRow(id, o, off, copyGbs, modelsDiffer);
                rows.Add(r with
                {
                    Id = id + CudnnOff, What = r.What + " (PyTorch: cudnn.benchmark off)", Target = "",
                    Status = r.Status is "met" or "missed" ? "info" : r.Status,
                });
            }
        }
        rows.AddRange(StepDerivedRows(oursById, torch));

        var md = new StringBuilder();
        md.AppendLine("# Ccr GPU report").AppendLine();
        foreach (var key in new[] { "card", "driver", "cuda", "date", "host", "command", "binary", "torch", "cupti", "dry", "total" })
            if (meta.TryGetValue(key, out var v)) md.AppendLine($"- {key}: {v}");
        foreach (var (k, v) in oursMeta) md.AppendLine($"- ours {k}: {v}");
        foreach (var (k, v) in torchMeta) md.AppendLine($"- PyTorch {k}: {v}");
        md.AppendLine().AppendLine("Times are medians in milliseconds; ratio = ours / PyTorch in time (below 1: ours is faster).").AppendLine();
        md.AppendLine("| part | case | shape | precision | ours | PyTorch | ours/PyTorch | target | status |");
        md.AppendLine("|---|---|---|---|---:|---:|---:|---|---|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Part} | {Cell(r.What)} | {Cell(r.Shape)} | {r.Precision} | {Cell(r.Ours)} | {Cell(r.Torch)} | " +
                          $"{Ratio(r.Ratio)} | {Cell(r.Target)} | {Cell(r.Status)} |");
        md.AppendLine().AppendLine("## Parts of the run").AppendLine();
        md.AppendLine("| part | exit code | seconds | log | note |").AppendLine("|---|---:|---:|---|---|");
        foreach (var p in parts) md.AppendLine($"| {p.Name} | {p.Rc} | {p.Seconds} | {p.Log} | {Cell(p.Note)} |");
        foreach (var n in notes) md.AppendLine().AppendLine("- " + n);

        File.WriteAllText(Path.Combine(dir, "report.json"), JsonSerializer.Serialize(new { meta, rows, parts, notes }, ResultFile.Json));
        return (md.ToString(), rows);
    }

    static string Cell(string s) => ResultRow.OneLine(s);

    /// <summary>The rows and meta of one side's files, in file-name order; unreadable files become notes.</summary>
    static (List<ResultRow> Rows, Dictionary<string, string> Meta) LoadSide(string dir, string pattern, string side, List<string> notes)
    {
        var rows = new List<ResultRow>();
        var meta = new Dictionary<string, string>();
        foreach (var f in Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal))
        {
            var rf = ResultFile.TryLoad(f, out var why);
            if (rf == null) { notes.Add($"{side}: {why}"); continue; }
            rows.AddRange(rf.Results);
            foreach (var (k, v) in rf.Meta)
                if (!meta.TryGetValue(k, out var had)) meta[k] = v;
                else if (had != v) meta[$"{k} ({Path.GetFileName(f)})"] = v;
        }
        return (rows, meta);
    }

    static string Ratio(double? r) => r is not double x ? "" :
        x >= 0.1 ? x.ToString("F2", CultureInfo.InvariantCulture) : x.ToString("G2", CultureInfo.InvariantCulture);

    // ------------------------------------------------------------------ rows

    static TableRow ParameterRow(string id, ResultRow? o, ResultRow? t)
    {
        string what = o?.What ?? t?.What ?? id;
        double? a = Get(o, "parameters"), b = Get(t, "parameters");
        string status;
        if (o == null || t == null) status = $"skipped: {(o == null ? "ours" : "PyTorch")} did not report it" + (t != null && !t.Ok ? $" ({t.Status})" : "");
        else if (!t.Ok) status = "PyTorch: " + t.Status;
        else if (a == b) status = "ok: equal";
        else status = $"FAIL: parameter counts differ (ours {a:N0}, PyTorch {b:N0}): the two sides do not build the same network";
        return new TableRow("model", id, what, "", "", a is double x ? x.ToString("N0") : "", b is double y ? y.ToString("N0") : "", null, "equal", status);
    }

    static TableRow MeasuredRow(string id, ResultRow? o, ResultRow? t, double? copyGbs, bool modelsDiffer)
    {
        var any = o ?? t!;
        double? ratio = o?.Ms is double om && t?.Ms is double tm && tm > 0 ? om / tm : null;
        string target = "", status;
        var part = any.Part;
        if (o == null) status = "ours: missing (the run stopped before this row?)";
        else if (!o.Ok) status = "ours: " + o.Status;
        else if (t == null) status = "PyTorch: missing";
        else if (!t.Ok) status = "PyTorch: " + t.Status;
        else status = "ok";
        bool bothOk = o is { Ok: true } && t is { Ok: true };
        if (id.StartsWith("conv.") || id.StartsWith("gemm."))
        {
            double limit = any.Precision == "tf32" ? 2.0 : 1.0 / 0.6;
            target = any.Precision == "tf32" ? ">= 50% of PyTorch's throughput (<= 2.00)" : ">= 60% of PyTorch's throughput (<= 1.67)";
            if (bothOk && ratio is double r) status = r <= limit ? "met" : "missed";
        }
        else if (any.Op() is "bn" or "resize" or "ce" or "adam")
        {
            target = ">= 70% of our copy bandwidth";
            if (o is { Ok: true } && copyGbs is > 0 && o.Extra.TryGetValue("gbs", out var g))
            {
                double share = g / copyGbs.Value;
                target += $" ({share:P0})";
                if (bothOk) status = share >= 0.7 ? "met" : "missed";
            }
        }
        else if (id.StartsWith("ccr.fwd."))
        {
            target = ">= 3x faster (<= 0.33)";
            if (bothOk && ratio is double r) status = r <= 1.0 / 3 ? "met" : "missed";
        }
        else if (id.StartsWith("step.ccr."))
        {
            target = "<= 1.00";
            if (bothOk && ratio is double r) status = r <= 1.0 ? "met" : "missed";
        }
        if (part == "step" && modelsDiffer) status = "FAIL: the models differ (see the parameter rows); " + status;
        return new TableRow(part, id, any.What, o?.Shape is { Length: > 0 } s ? s : t?.Shape ?? "", any.Precision,
                            Describe(o), Describe(t), ratio, target, status);
    }

    static string Op(this ResultRow r) => r.Id.Split('.')[0];

    /// <summary>"1.234 ms (5.6 TFLOP/s)" or the status of a row without a time.</summary>
    static string Describe(ResultRow? r)
    {
        if (r == null) return "";
        if (r.Ms is not double ms) return r.Status == "ok" ? "" : "-";
        var s = ms >= 100 ? ms.ToString("F1", CultureInfo.InvariantCulture) : ms.ToString("G4", CultureInfo.InvariantCulture);
        if (r.Extra.TryGetValue("gflops", out var gf))
            s += gf >= 1000 ? $" ({gf / 1000:F1} TFLOP/s)" : $" ({gf:F1} GFLOP/s)";
        else if (r.Extra.TryGetValue("gbs", out var gb)) s += $" ({gb:F0} GB/s)";
        return s;
    }

    /// <summary>Per precision: CCR's share of the step (ours and PyTorch's), and per configuration
    /// peak memory and launches per step.</summary>
    static IEnumerable<TableRow> StepDerivedRows(Dictionary<string, ResultRow> ours, Dictionary<string, ResultRow> torch)
    {
        foreach (var p in new[] { "fp32", "tf32" })
        {
            ResultRow? O(string id) => ours.GetValueOrDefault(id) is { Ok: true, Ms: not null } r ? r : null;
            ResultRow? T(string id) => torch.GetValueOrDefault(id) is { Ok: true, Ms: not null } r ? r : null;
            string on = StepBench.Id(true, p), off = StepBench.Id(false, p);
            double? Share(ResultRow? a, ResultRow? b) => a != null && b != null ? a.Ms!.Value / b.Ms!.Value - 1 : null;
            var so = Share(O(on), O(off));
            var st = Share(T(on), T(off));
            if (so != null || st != null)
                yield return new TableRow("step", $"step.ccr_share.{p}", "CCR's added share of the step", "", p,
                    so is double a ? $"{a:P1}" : "", st is double b ? $"{b:P1}" : "", null, "ours <= 5%",
                    so is double x ? (x <= 0.05 ? "met" : "missed") : "ours: no figure");
            foreach (var (id, ccr) in new[] { (on, true), (off, false) })
            {
                string tag = ccr ? "ccr" : "base", with = ccr ? "with CCR" : "no CCR";
                double? mo = Get(O(id), "peak_pool_mib"), mt = Get(T(id), "peak_reserved_mib");
                if (mo != null || mt != null)
                    yield return new TableRow("step", $"step.memory.{tag}.{p}", $"peak device memory, step {with} (MiB; ours: pool, PyTorch: max reserved)", "", p,
                        mo is double a ? $"{a:F0}" : "", mt is double b ? $"{b:F0}" : "", mo != null && mt is > 0 ? mo / mt : null, "<= 1.00",
                        mo is double x && mt is double y ? (x <= y ? "met" : "missed") : "one side has no figure");
                var nograph = O(StepBench.Id(ccr, p, graph: false));
                if (O(id) is { } g && nograph != null)
                    yield return new TableRow("step", $"step.graph.{tag}.{p}", $"step {with}: CUDA graph vs plain launches (ours; kernels: " +
                        $"{Get(g, "kernels_per_graph")?.ToString("F0") ?? "-"} per graph, {Get(nograph, "launches_issued")?.ToString("F0") ?? "-"} launches without)", "", p,
                        $"{g.Ms:G4} / {nograph.Ms:G4} ms", "", g.Ms / nograph.Ms, "< 1.00 (fewer launches)",
                        Get(g, "graph_replays") is > 0 ? g.Ms < nograph.Ms ? "met" : "missed" : "info: no graph was replayed (CPU, or graphs off)");
                double? lo = Get(O(id), "launches"), lt = Get(T(id), "kernels");
                if (lo != null || lt != null)
                    yield return new TableRow("step", $"step.launches.{tag}.{p}", $"kernel launches per step {with} (ours: cuLaunchKernel calls; PyTorch: kernels run)", "", p,
                        lo is double a ? $"{a:F0}" : "", lt is double b ? $"{b:F0}" : "", lo != null && lt is > 0 ? lo / lt : null, "", "info");
            }
        }
    }

    static double? Get(ResultRow? r, string key) => r != null && r.Extra.TryGetValue(key, out var v) ? v : null;

    /// <summary>verify on the card and verify under compute-sanitizer: from parts.tsv and the logs.</summary>
    static IEnumerable<TableRow> CheckRows(string dir, List<PartInfo> parts)
    {
        foreach (var p in parts.Where(p => p.Name is "verify" or "memcheck" or "racecheck"))
        {
            string log = File.Exists(Path.Combine(dir, p.Log)) ? File.ReadAllText(Path.Combine(dir, p.Log)) : "";
            var summary = Regex.Match(log, @"(\d+) passed, (\d+) failed");
            string ours = summary.Success ? summary.Value : "";
            // compute-sanitizer's closing lines: "ERROR SUMMARY: N errors", racecheck's
            // "RACECHECK SUMMARY: N hazards displayed (E errors, W warnings)"
            foreach (var pattern in new[] { @"ERROR SUMMARY: \d+ errors?", @"RACECHECK SUMMARY: [^\n]*" })
                if (Regex.Match(log, pattern) is { Success: true } m) ours += (ours.Length > 0 ? "; " : "") + m.Value.Trim();
            string status;
            if (p.Note.StartsWith("skipped")) status = p.Note;
            else if (p.Rc == "124" || p.Rc == "137") status = $"FAIL: timed out after {p.Seconds} s";
            else if (p.Rc != "0") status = $"FAIL: exit code {p.Rc}" + FirstFailures(log);
            else status = "ok";
            string what = p.Name == "verify" ? "verify: every kernel against its float64 reference" : $"verify --small under compute-sanitizer --tool {p.Name}";
            yield return new TableRow("check", p.Name, what, "", "", ours, "", null, "0 failed, 0 errors", status);
        }
    }

    static string FirstFailures(string log)
    {
        var fails = log.Split('\n').Where(l => l.Contains(" FAIL")).Take(3).Select(l => l.Trim()).ToList();
        return fails.Count == 0 ? "" : "; first: " + string.Join(" / ", fails);
    }

    // ------------------------------------------------------------------ inputs

    public sealed record PartInfo(string Name, string Rc, string Seconds, string Log, string Note);

    static List<PartInfo> ReadParts(string path)
    {
        if (!File.Exists(path)) return [];
        return File.ReadAllLines(path).Where(l => l.Length > 0).Select(l =>
        {
            var f = l.Split('\t');
            string F(int i) => i < f.Length ? f[i] : "";
            return new PartInfo(F(0), F(1), F(2), F(3), F(4));
        }).ToList();
    }

    static Dictionary<string, string> ReadKeyValues(string path)
    {
        var r = new Dictionary<string, string>();
        if (!File.Exists(path)) return r;
        foreach (var l in File.ReadAllLines(path))
        {
            int eq = l.IndexOf('=');
            if (eq > 0) r[l[..eq].Trim()] = l[(eq + 1)..].Trim();
        }
        return r;
    }
}
