using Ccr.Nn;
using System.Globalization;
using Ccr.Training.Reporting;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace Ccr.Tests.Reporting;

public sealed class ReportingTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "ccr-reporting-" + Guid.NewGuid().ToString("N"));

    public ReportingTests() => Directory.CreateDirectory(_dir);
    // CCR_KEEP_PLOTS=1 keeps the temporary folder, to look at the pictures.
    public void Dispose() { if (Environment.GetEnvironmentVariable("CCR_KEEP_PLOTS") != null) return; try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>The PNG decodes, has the size asked for and is not one flat colour.</summary>
    static void AssertPicture(string path, int width, int height)
    {
        Assert.True(File.Exists(path), $"{path} not written");
        using var img = Image.Load<Rgba32>(path);
        Assert.Equal(width, img.Width);
        Assert.Equal(height, img.Height);
        var colours = new HashSet<Rgba32>();
        for (int y = 0; y < img.Height; y += 3)
            for (int x = 0; x < img.Width; x += 3) colours.Add(img[x, y]);
        Assert.True(colours.Count > 2, $"{path}: only {colours.Count} colours");
    }

    void WriteSyntheticRun()
    {
        // A metrics.csv as RunLog writes it: a ccr column, and a blank cell that must not break parsing.
        var lines = new List<string> { "step,epoch,lr,loss,loss_semseg,loss_depth,ccr,ccr_pos_dist,ccr_neg_dist,images_per_s" };
        for (int s = 0; s < 30; s++)
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{s * 10},{s / 10.0},0.001,{3 * Math.Exp(-s / 10.0) + 0.2},{2 * Math.Exp(-s / 8.0)},{Math.Exp(-s / 12.0)},{(s == 5 ? "" : (0.1 + 0.01 * s).ToString(CultureInfo.InvariantCulture))},{0.8 - 0.01 * s},{1.2 + 0.01 * s},12.5"));
        File.WriteAllLines(Path.Combine(_dir, "metrics.csv"), lines);
        for (int e = 1; e <= 3; e++)
            File.WriteAllText(Path.Combine(_dir, $"eval-epoch{e:D3}.json"), string.Create(CultureInfo.InvariantCulture,
                $$"""{ "semseg": { "pixAcc": 0.5, "mIoU": {{0.2 + 0.1 * e}} }, "depth": { "rmse": {{1.0 - 0.1 * e}}, "mae": 0.3 }, "delta_m": {{-5.0 + e}} }"""));
    }

    [Fact]
    public void RunPlotsWritesLossAndEvalPictures()
    {
        WriteSyntheticRun();
        var written = RunPlots.Write(_dir);
        var names = written.Select(Path.GetFileName).OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "ccr_distances.png", "eval_delta_m.png", "eval_depth.png", "eval_semseg.png", "losses.png" }, names);
        foreach (var p in written)
        {
            Assert.Equal(Path.Combine(_dir, "plots"), Path.GetDirectoryName(p));
            AssertPicture(p, RunPlots.Width, RunPlots.Height);
        }
    }

    [Fact]
    public void EvalSeriesTakeEachTasksMainMetricInEpochOrder()
    {
        WriteSyntheticRun();
        File.WriteAllText(Path.Combine(_dir, "eval.json"), "{}"); // not an epoch file: ignored
        var s = RunPlots.ReadEvalSeries(_dir);
        Assert.Equal(new[] { 1.0, 2, 3 }, s["semseg"].Epochs);
        Assert.Equal(new[] { 0.3, 0.4, 0.5 }, s["semseg"].Values.Select(v => Math.Round(v, 9)));
        Assert.Equal(new[] { 0.9, 0.8, 0.7 }, s["depth"].Values.Select(v => Math.Round(v, 9)));
        Assert.Equal(new[] { -4.0, -3, -2 }, s["delta_m"].Values);
        var csv = RunPlots.ReadMetricsCsv(Path.Combine(_dir, "metrics.csv"));
        Assert.True(double.IsNaN(csv["ccr"][5]));
        Assert.Equal(30, csv["loss_depth"].Length);
    }

    [Fact]
    public void RunPlotsOfAnEmptyFolderWriteNothing()
    {
        Assert.Empty(RunPlots.Write(_dir));
    }

    [Fact]
    public void DistanceHistogramCountsMatchTheSamples()
    {
        var rng = new Rng(7);
        float[] Draw(int n, double mean, double spread) =>
            Enumerable.Range(0, n).Select(_ => (float)Math.Clamp(mean + spread * (rng.NextFloat() - 0.5), 0, 2)).ToArray();
        var series = new[]
        {
            ("baseline", Draw(500, 0.9, 0.8), Draw(1500, 1.1, 0.8)),
            ("CCR", Draw(400, 0.5, 0.6), Draw(1300, 1.5, 0.6)),
        };
        // End points: 0 and exactly 2 (and a float-rounding overshoot) land in the end bins.
        series[1].Item2[0] = 0f; series[1].Item3[0] = 2f; series[1].Item3[1] = 2.0000002f;
        var png = Path.Combine(_dir, "hist", "fig1.png");
        var csvPath = DistanceHistograms.Write(png, "Figure 1", series);
        Assert.Equal(Path.ChangeExtension(png, ".csv"), csvPath);
        AssertPicture(png, 2 * DistanceHistograms.PanelWidth, DistanceHistograms.Height);

        var lines = File.ReadAllLines(csvPath);
        Assert.Equal("bin_lo,bin_hi,baseline_pos,baseline_neg,CCR_pos,CCR_neg", lines[0]);
        Assert.Equal(1 + DistanceHistograms.Bins, lines.Length);
        var cells = lines.Skip(1).Select(l => l.Split(',').Select(c => double.Parse(c, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(2.0, cells[^1][1], 9);
        Assert.Equal(new[] { 500.0, 1500, 400, 1300 }, Enumerable.Range(2, 4).Select(c => cells.Sum(r => r[c])));
        Assert.True(cells[0][4] >= 1 && cells[^1][5] >= 2);
        // Each bin holds exactly the samples in [lo, hi).
        var direct = series[0].Item2.Count(v => v >= cells[10][0] && v < cells[10][1]);
        Assert.Equal(direct, (int)cells[10][2]);
    }

    [Fact]
    public void HistogramCountsSkipNonFiniteAndRejectBadBins()
    {
        var c = DistanceHistograms.Counts([0.01f, 0.06f, float.NaN, -0.5f, 3f, float.PositiveInfinity], bins: 4, max: 2);
        Assert.Equal(new long[] { 3, 0, 0, 1 }, c);
        Assert.Throws<ArgumentOutOfRangeException>(() => DistanceHistograms.Counts([1f], bins: 0));
    }

    static readonly Dictionary<string, double> Row = new()
    {
        ["step"] = 20, ["loss"] = 1.23456, ["loss_semseg"] = 0.5, ["ccr"] = 0.25, ["lr"] = 0.001, ["images_per_s"] = 42.25,
    };

    [Fact]
    public void PlainProgressPrintsOneLinePerCall()
    {
        var w = new StringWriter();
        using (var p = new TrainingProgress(w))
        {
            Assert.False(p.IsLive);
            p.Update(20, 100, 1, Row, 75);
            p.Message("eval: semseg mIoU 0.3");
            p.Update(40, 100, 2, Row, 3725);
        }
        var lines = w.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal("step 20/100 epoch 1 loss 1.2346 ccr 0.2500 lr 1.00E-003 42.2 img/s eta 01:15", lines[0]);
        Assert.Equal("eval: semseg mIoU 0.3", lines[1]);
        Assert.EndsWith("eta 1:02:05", lines[2]);
    }

    [Fact]
    public void LiveProgressDrawsAndKeepsMessages()
    {
        var w = new StringWriter();
        using (var p = new TrainingProgress(w, live: true))
        {
            for (int s = 1; s <= 5; s++) p.Update(s * 10, 50, 1, Row, 50 - s * 10);
            p.Message("checkpoint written");
        }
        var text = w.ToString();
        Assert.Contains("checkpoint written", text);
        Assert.Contains("step 50/50", text);
        Assert.Contains("loss_semseg", text);
    }
}
