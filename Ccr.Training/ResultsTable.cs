using System.Globalization;
using Ccr.Training.Data;

namespace Ccr.Training;

/// <summary>The closing table of a run: every task's metrics, what the regulariser did (when the run
/// had CCR), and where the files are.</summary>
public static class ResultsTable
{
    public static void Print(Dictionary<string, Dictionary<string, double>> metrics, string dir,
                             IReadOnlyDictionary<string, double>? chance = null)
    {
        Console.WriteLine();
        Console.WriteLine($"{"task",-12} {"metric",-10} {"value",10}");
        Console.WriteLine(new string('-', 34));
        foreach (var (task, m) in metrics)
        {
            string main = TaskInfo.MainMetric(task);
            foreach (var (k, v) in m.OrderBy(kv => kv.Key == main ? 0 : 1))
                Console.WriteLine($"{(k == main ? task : ""),-12} {k,-10} {v,10:F4}");
        }
        if (chance is { Count: > 0 })
            Console.WriteLine("for comparison, a model that learned nothing: " + string.Join(", ",
                chance.Select(kv => $"{kv.Key} {kv.Value:F4}")) + " (majority class / mean depth)");
        var csv = Path.Combine(dir, "metrics.csv");
        if (File.Exists(csv) && CcrSummary(Reporting.RunPlots.ReadMetricsCsv(csv)) is string ccr)
        {
            Console.WriteLine();
            Console.Write(ccr);
        }
        Console.WriteLine();
        Console.WriteLine($"run folder: {Path.GetFullPath(dir)}");
        Console.WriteLine("  config.yaml, metrics.csv, eval.json, last.ckpt, best.ckpt" +
                          (Directory.Exists(Path.Combine(dir, "plots")) ? ", plots/*.png" : "") +
                          (Directory.Exists(dir) && Directory.EnumerateFiles(dir, "events.out.tfevents.*").Any()
                              ? $", events.out.tfevents.* (tensorboard --logdir {Path.GetDirectoryName(Path.GetFullPath(dir))})" : ""));
    }

    /// <summary>
    /// What CCR did over the run, from metrics.csv: anchors per image, the share of anchors that
    /// found a triplet (a positive and at least one semi-hard negative), the mean positive and
    /// negative feature distances and the CCR loss beside the total, each at the start and the end
    /// (the mean over the first and the last tenth of the logged steps). Null without CCR columns.
    /// </summary>
    public static string? CcrSummary(IReadOnlyDictionary<string, double[]> cols)
    {
        if (!cols.TryGetValue("ccr", out var ccr) || ccr.Length == 0) return null;
        int n = ccr.Length, tenth = Math.Max(1, n / 10);
        double Start(string c) => cols.TryGetValue(c, out var v) ? Mean(v.Take(tenth)) : double.NaN;
        double End(string c) => cols.TryGetValue(c, out var v) ? Mean(v.Skip(n - tenth)) : double.NaN;
        var ci = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(string.Create(ci, $"CCR over the run (mean of the first / last {tenth} of {n} logged steps):"));
        void Line(string what, string col, string format, string note = "")
        {
            if (!cols.ContainsKey(col)) return;
            string F(double v) => format == "%" ? (100 * v).ToString("F0", ci) + "%" : v.ToString(format, ci);
            sb.AppendLine(string.Create(ci, $"  {what,-26} {F(Start(col)),8} -> {F(End(col)),-8}{note}").TrimEnd());
        }
        Line("anchors per image", "ccr_anchors_per_image", "F1");
        Line("valid-anchor share", "ccr_valid_anchors", "%", "  (anchors with a positive and a semi-hard negative)");
        Line("mean positive distance", "ccr_pos_dist", "F3", "  (hardest positive)");
        Line("mean negative distance", "ccr_neg_dist", "F3", "  (semi-hard negatives)");
        Line("CCR loss (lambda applied)", "ccr", "F4", string.Create(ci, $"  (total loss {Start("loss"):F3} -> {End("loss"):F3})"));
        return sb.ToString();
    }

    static double Mean(IEnumerable<double> v)
    {
        var f = v.Where(double.IsFinite).ToList();
        return f.Count > 0 ? f.Average() : double.NaN;
    }
}
