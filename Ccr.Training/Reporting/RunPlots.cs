using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ccr.Training.Data;

namespace Ccr.Training.Reporting;

/// <summary>
/// PNG pictures of a run folder, written to <c>&lt;run&gt;/plots/</c>: the loss curves of metrics.csv
/// (losses.png: the total <c>loss</c> and what it is made of, each task's loss times its weight from
/// the run's config.yaml, e.g. "10 × normals", and <c>ccr</c>, so the parts add up to the total;
/// ccr_distances.png when the CCR diagnostics are logged), drawn as TensorBoard draws them: an
/// exponential moving average (<see cref="Smoothing"/>) over the raw series, which stays faint
/// behind it; and the evaluation metrics over training from the <c>eval-epochNNN.json</c> files
/// (eval_&lt;task&gt;.png: the task's main metric against the epoch; eval_delta_m.png when Δm was
/// computed), only when there are at least two evaluations. Drawn with ScottPlot (SkiaSharp, no
/// native dependencies); on a machine without any font the text is left out and the curves are still drawn.
/// </summary>
public static partial class RunPlots
{
    public const int Width = 900, Height = 540;
    /// <summary>Largest weight of the previous value in the moving average of a logged series
    /// (TensorBoard's slider); see <see cref="SmoothingFor"/>.</summary>
    public const double Smoothing = 0.9;

    /// <summary>The smoothing weight for a series of <paramref name="points"/> logged values: an
    /// average over about a twentieth of the run (1 - 20 / points), between TensorBoard's default
    /// 0.6 for short runs and <see cref="Smoothing"/>.</summary>
    public static double SmoothingFor(int points) => Math.Clamp(1 - 20.0 / Math.Max(1, points), 0.6, Smoothing);

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
                var losses = LossSeries(cols, step, LossWeights(runDir));
                string ema = SmoothingFor(step.Length).ToString("0.##", CultureInfo.InvariantCulture);
                if (losses.Count > 0)
                    written.Add(Lines(Path.Combine(outDir, "losses.png"), "Training loss: the total and its weighted parts", "step",
                        $"loss (smoothed, EMA {ema}; raw faint)", losses, smooth: true));
                var distCols = new[] { ("ccr_pos_dist", "positive (hardest)"), ("ccr_neg_dist", "negative (semi-hard)") }
                    .Where(c => cols.ContainsKey(c.Item1)).ToList();
                if (distCols.Count > 0)
                    written.Add(Lines(Path.Combine(outDir, "ccr_distances.png"), "CCR: mean feature distance of the mined pairs", "step",
                        $"distance (smoothed, EMA {ema}; raw faint)", distCols.Select(c => (c.Item2, step, cols[c.Item1])).ToList(), smooth: true));
            }
        }
        var evals = ReadEvalSeries(runDir);
        foreach (var (name, (epochs, values)) in evals.Where(e => e.Value.Epochs.Length >= 2)) // one point is no curve
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

    /// <summary>
    /// The series of losses.png: the total loss, then each task's loss times its weight (labelled
    /// "10 × normals" where the weight is not 1) and the CCR loss (lambda already applied), which
    /// add up to the total at every step.
    /// </summary>
    public static List<(string Label, double[] X, double[] Y)> LossSeries(Dictionary<string, double[]> cols, double[] step,
                                                                         IReadOnlyDictionary<string, float> weights)
    {
        var parts = new List<(string, double[], double[])>();
        foreach (var c in cols.Keys.Where(k => k.StartsWith("loss_", StringComparison.Ordinal)))
        {
            string task = c["loss_".Length..];
            double w = weights.TryGetValue(task, out var v) ? v : 1.0;
            string label = w == 1 ? task : string.Create(CultureInfo.InvariantCulture, $"{w:0.###} × {task}");
            parts.Add((label, step, cols[c].Select(x => w * x).ToArray()));
        }
        if (cols.TryGetValue("ccr", out var ccr)) parts.Add(("ccr (λ applied)", step, ccr));
        var series = new List<(string, double[], double[])>();
        if (cols.TryGetValue("loss", out var total))
            series.Add((parts.Count > 0 ? "total = " + string.Join(" + ", parts.Select(p => p.Item1)) : "total", step, total));
        series.AddRange(parts);
        return series;
    }

    /// <summary>The run's task loss weights from its config.yaml (empty when there is none or it does not load).</summary>
    static IReadOnlyDictionary<string, float> LossWeights(string runDir)
    {
        string path = Path.Combine(runDir, "config.yaml");
        if (!File.Exists(path)) return new Dictionary<string, float>();
        try { return Config.ConfigLoader.Load(path, []).LossWeights; }
        catch (Exception e) when (e is ConfigException or IOException or YamlDotNet.Core.YamlException) { return new Dictionary<string, float>(); }
    }

    /// <summary>
    /// TensorBoard's smoothing: last = w·last + (1 - w)·y from last = 0, divided by 1 - w^k after k
    /// finite values (the debiasing that keeps the first points from being pulled towards 0). A
    /// non-finite value is passed through and does not enter the average.
    /// </summary>
    public static double[] Ema(IReadOnlyList<double> y, double weight = Smoothing)
    {
        if (!(weight >= 0 && weight < 1)) throw new ArgumentOutOfRangeException(nameof(weight), $"smoothing weight must be in [0, 1), got {weight}");
        var r = new double[y.Count];
        double last = 0;
        int k = 0;
        for (int i = 0; i < y.Count; i++)
        {
            if (!double.IsFinite(y[i])) { r[i] = y[i]; continue; }
            last = last * weight + (1 - weight) * y[i];
            k++;
            r[i] = last / (1 - Math.Pow(weight, k));
        }
        return r;
    }

    /// <summary>One line plot of several series (NaN points are dropped); with <paramref name="smooth"/>
    /// each series is drawn faint as logged and solid as its moving average. Returns <paramref name="pngPath"/>.</summary>
    public static string Lines(string pngPath, string title, string xLabel, string yLabel,
        IReadOnlyList<(string Label, double[] X, double[] Y)> series, bool markers = false, bool smooth = false)
    {
        var plt = new ScottPlot.Plot();
        int index = 0;
        foreach (var (label, x, y) in series)
        {
            var colour = plt.Add.Palette.GetColor(index++);
            var keep = Enumerable.Range(0, Math.Min(x.Length, y.Length)).Where(i => double.IsFinite(x[i]) && double.IsFinite(y[i])).ToArray();
            if (keep.Length == 0) continue;
            double[] xs = keep.Select(i => x[i]).ToArray(), ys = keep.Select(i => y[i]).ToArray();
            if (smooth && keep.Length > 2)
            {
                var raw = plt.Add.Scatter(xs, ys);
                raw.Color = colour.WithAlpha(0.25);
                raw.MarkerSize = 0;
                raw.LineWidth = 1f;
                ys = Ema(ys, SmoothingFor(ys.Length));
            }
            var s = plt.Add.Scatter(xs, ys);
            s.Color = colour;
            s.LegendText = label;
            s.MarkerSize = markers || keep.Length == 1 ? 6 : 0;
            s.LineWidth = smooth ? 2f : 1.5f;
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
