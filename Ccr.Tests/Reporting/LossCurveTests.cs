using System.Globalization;
using Ccr.Tests.Common;
using Ccr.Training.Reporting;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>What the run's pictures and summary say: TensorBoard's smoothing, the total loss as the
/// sum of its weighted parts, no one-point evaluation plot, and the CCR diagnostics.</summary>
public sealed class LossCurveTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "ccr-losscurve-" + Guid.NewGuid().ToString("N"));

    public LossCurveTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [Fact]
    public void EmaIsTensorBoardsDebiasedAverage()
    {
        // by hand, w = 0.5: last 0.5, 1.25, 2.125 divided by 1 - 0.5^k = 0.5, 0.75, 0.875
        Tol.Close([1.0, 1.25 / 0.75, 2.125 / 0.875], RunPlots.Ema([1, 2, 3], 0.5), 1e-15, 1e-15, "ema");
        Assert.All(RunPlots.Ema(Enumerable.Repeat(4.2, 50).ToArray()), v => Tol.Close(4.2, v, 1e-12, 1e-12, "constant")); // no pull towards 0
        var withNan = RunPlots.Ema([1, double.NaN, 3], 0.5);
        Assert.True(double.IsNaN(withNan[1]));
        Tol.Close((0.5 * 0.5 + 0.5 * 3) / (1 - 0.5 * 0.5), withNan[2], 1e-15, 1e-15, "after NaN"); // the NaN is skipped: k = 2
        Assert.Equal([7.0, 8.0], RunPlots.Ema([7, 8], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => RunPlots.Ema([1], 1));
        Assert.Equal(0.6, RunPlots.SmoothingFor(8));     // short runs: TensorBoard's default
        Assert.Equal(0.8, RunPlots.SmoothingFor(100), 12); // about a twentieth of the run
        Assert.Equal(0.9, RunPlots.SmoothingFor(5000));
    }

    [Fact]
    public void TotalLossIsTheSumOfItsWeightedParts()
    {
        var step = new double[] { 0, 10, 20 };
        var cols = new Dictionary<string, double[]>
        {
            ["loss_semseg"] = [2.0, 1.5, 1.0], ["loss_depth"] = [1.0, 0.8, 0.6], ["loss_normals"] = [0.5, 0.4, 0.3], ["ccr"] = [0.0, 0.1, 0.2],
        };
        cols["loss"] = Enumerable.Range(0, 3).Select(i => cols["loss_semseg"][i] + cols["loss_depth"][i] + 10 * cols["loss_normals"][i] + cols["ccr"][i]).ToArray();
        var series = RunPlots.LossSeries(cols, step, new Dictionary<string, float> { ["semseg"] = 1, ["depth"] = 1, ["normals"] = 10 });
        Assert.Equal(["total = semseg + depth + 10 × normals + ccr (λ applied)", "semseg", "depth", "10 × normals", "ccr (λ applied)"],
                     series.Select(s => s.Label));
        for (int i = 0; i < 3; i++)
            Tol.Close(series[0].Y[i], series.Skip(1).Sum(s => s.Y[i]), 1e-12, 1e-12, $"sum at row {i}");
    }

    static void WriteRun(string dir, int evals)
    {
        var lines = new List<string> { "step,epoch,lr,loss,loss_semseg,loss_depth,ccr,ccr_pos_dist,ccr_neg_dist,ccr_valid_anchors,ccr_anchors_per_image" };
        for (int s = 0; s < 40; s++)
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{s * 10},{s / 10.0},0.001,{3 - s * 0.05},{2 - s * 0.03},{1 - s * 0.02},{(s < 4 ? 0.1 : 0.3)},{(s < 4 ? 1.0 : 0.5)},{(s < 4 ? 1.1 : 0.9)},{(s < 4 ? 0.9 : 0.6)},64"));
        File.WriteAllLines(Path.Combine(dir, "metrics.csv"), lines);
        for (int e = 1; e <= evals; e++)
            File.WriteAllText(Path.Combine(dir, $"eval-epoch{e:D3}.json"), """{ "semseg": { "mIoU": 0.3 } }""");
    }

    [Fact]
    public void OneEvaluationDrawsNoEvaluationCurve()
    {
        WriteRun(_dir, evals: 1);
        var names = RunPlots.Write(_dir).Select(p => Path.GetFileName(p)).Order().ToArray();
        Assert.Equal(["ccr_distances.png", "losses.png"], names);
        WriteRun(_dir, evals: 2);
        Assert.Contains("eval_semseg.png", RunPlots.Write(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void CcrSummaryGivesStartAndEndOfEachDiagnostic()
    {
        WriteRun(_dir, evals: 0);
        var text = ResultsTable.CcrSummary(RunPlots.ReadMetricsCsv(Path.Combine(_dir, "metrics.csv")))!;
        // 40 rows: the first and last 4 rows are averaged
        Assert.Contains("first / last 4 of 40 logged steps", text);
        Assert.Matches(@"anchors per image\s+64\.0 -> 64\.0", text);
        Assert.Matches(@"valid-anchor share\s+90% -> 60%", text);
        Assert.Matches(@"mean positive distance\s+1\.000 -> 0\.500", text);
        Assert.Matches(@"mean negative distance\s+1\.100 -> 0\.900", text);
        Assert.Matches(@"CCR loss \(lambda applied\)\s+0\.1000 -> 0\.3000\s+\(total loss 2\.925 -> 1\.125\)", text);
        Assert.Null(ResultsTable.CcrSummary(new Dictionary<string, double[]> { ["loss"] = [1.0] })); // no CCR in the run
    }
}
