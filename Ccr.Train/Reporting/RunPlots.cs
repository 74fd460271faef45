using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ccr.Train.Data;

namespace Ccr.Train.Reporting;

/// <summary>
/// PNG pictures of a run folder, written to <c>&lt;run&gt;/plots/</c>: the loss curves of metrics.csv
/// (losses.png: <c>loss</c>, every <c>loss_*</c> column and <c>ccr</c> against the step; ccr_distances.png
/// when the CCR diagnostics are logged) and the evaluation metrics over training from the
/// <c>eval-epochNNN.json</c> files (eval_&lt;task&gt;.png: the task's main metric against the epoch;
/// eval_delta_m.png when Δm was computed). Drawn with ScottPlot (SkiaSharp, no native dependencies);
/// on a machine without any font the text is left out and the curves are still drawn.
/// </summary>
public static partial class RunPlots
{
    public const int Width = 900, Height = 540;

    /// <summary>
    /// False when SkiaSharp found no font at all (a bare container: no /usr/share/fonts); the plots
    /// are then written without titles, labels or tick numbers. On Debian `apt-get install
    /// fonts-dejavu-core` brings the text back; the caller may print this hint once.
    /// </summary>
    public static bool HasFont => !string.IsNullOrEmpty(ScottPlot.Fonts.Default);

    /// <summary>Writes every plot the run folder has data for; returns the PNG paths written.</summary>
    public static List<string> Write(string runDir)
    {
        var outDir = Path.Combine(runDir, "plots");
        var written = new List<string>();
        var csv = Path.Combine(runDir, "metrics.csv");
        if (File.Exists(csv))
        {
            var cols = ReadMetricsCsv(csv);
            if (cols.TryGetValue("step", out var step))
            {
                var lossCols = cols.Keys.Where(k => k == "loss" || k == "ccr" || k.StartsWith("loss_", StringComparison.Ordinal)).ToList();
                if (lossCols.Count > 0)
                    written.Add(Lines(Path.Combine(outDir, "losses.png"), "Training losses", "step", "loss",
                        lossCols.Select(c => (c, step, cols[c])).ToList()));
                var distCols = new[] { "ccr_pos_dist", "ccr_neg_dist" }.Where(cols.ContainsKey).ToList();
                if (distCols.Count > 0)
                    written.Add(Lines(Path.Combine(outDir, "ccr_distances.png"), "CCR mean pair distances", "step", "distance",
                        distCols.Select(c => (c, step, cols[c])).ToList()));
            }
        }
        var evals = ReadEvalSeries(runDir);
        foreach (var (name, (epochs, values)) in evals)
            written.Add(Lines(Path.Combine(outDir, $"eval_{name}.png"), $"Evaluation: {name}", "epoch", name,
                [(name, epochs, values)], markers: true));
        return written;
    }

    /// <summary>metrics.csv as columns (header name → values per row; an empty cell is NaN).</summary>
    public static Dictionary<string, double[]> ReadMetricsCsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        var result = new Dictionary<string, double[]>();
        if (lines.Length == 0) return result;
        var header = lines[0].Split(',');
        var data = header.Select(_ => new double[lines.Length - 1]).ToArray();
        for (int r = 1; r < lines.Length; r++)
        {
            var cells = lines[r].Split(',');
            for (int c = 0; c < header.Length; c++)
                data[c][r - 1] = c < cells.Length && double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
        }
        for (int c = 0; c < header.Length; c++) result[header[c]] = data[c];
        return result;
    }

    [GeneratedRegex(@"^eval-epoch(\d+)\.json$")]
    private static partial Regex EvalFileName();

    /// <summary>
    /// Per series name (a task, or delta_m) the epochs and values found in the eval-epochNNN.json
    /// files, in epoch order. A task's value is its main metric (<see cref="TaskInfo.MainMetric"/>);
    /// an unknown task falls back to its first metric.
    /// </summary>
    public static SortedDictionary<string, (double[] Epochs, double[] Values)> ReadEvalSeries(string runDir)
    {
        var points = new SortedDictionary<string, List<(double Epoch, double Value)>>(StringComparer.Ordinal);
        if (!Directory.Exists(runDir)) return [];
        var files = Directory.EnumerateFiles(runDir, "eval-epoch*.json")
            .Select(f => (File: f, M: EvalFileName().Match(Path.GetFileName(f))))
            .Where(x => x.M.Success)
            .Select(x => (x.File, Epoch: int.Parse(x.M.Groups[1].Value, CultureInfo.InvariantCulture)))
            .OrderBy(x => x.Epoch);
        foreach (var (file, epoch) in files)
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(File.ReadAllText(file)); }
            catch (JsonException) { continue; } // a file being written by a live run: skip, the next call sees it
            using (doc)
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    double? v = null;
                    if (p.Value.ValueKind == JsonValueKind.Number) v = p.Value.GetDouble();
                    else if (p.Value.ValueKind == JsonValueKind.Object) v = MainValue(p.Name, p.Value);
                    if (v is not double d) continue;
                    if (!points.TryGetValue(p.Name, out var list)) points[p.Name] = list = [];
                    list.Add((epoch, d));
                }
        }
        var result = new SortedDictionary<string, (double[], double[])>(StringComparer.Ordinal);
        foreach (var (k, list) in points) result[k] = (list.Select(x => x.Epoch).ToArray(), list.Select(x => x.Value).ToArray());
        return result;
    }

    static double? MainValue(string task, JsonElement block)
    {
        string? key = TaskNames.All.Contains(task) ? TaskInfo.MainMetric(task) : null;
        foreach (var q in block.EnumerateObject())
            if (q.Value.ValueKind == JsonValueKind.Number && (key == null || q.Name == key)) return q.Value.GetDouble();
        return null;
    }

    /// <summary>One line plot of several series (NaN points are dropped); returns <paramref name="pngPath"/>.</summary>
    public static string Lines(string pngPath, string title, string xLabel, string yLabel,
        IReadOnlyList<(string Label, double[] X, double[] Y)> series, bool markers = false)
    {
        var plt = new ScottPlot.Plot();
        foreach (var (label, x, y) in series)
        {
            var keep = Enumerable.Range(0, Math.Min(x.Length, y.Length)).Where(i => double.IsFinite(x[i]) && double.IsFinite(y[i])).ToArray();
            if (keep.Length == 0) continue;
            var s = plt.Add.Scatter(keep.Select(i => x[i]).ToArray(), keep.Select(i => y[i]).ToArray());
            s.LegendText = label;
            s.MarkerSize = markers || keep.Length == 1 ? 6 : 0;
            s.LineWidth = 1.5f;
        }
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        if (series.Count > 1) plt.ShowLegend(ScottPlot.Alignment.UpperRight);
        Save(plt, pngPath, Width, Height);
        return pngPath;
    }

    internal static void Save(ScottPlot.Plot plt, string pngPath, int width, int height)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(pngPath))!);
        plt.SavePng(pngPath, width, height);
    }
}
