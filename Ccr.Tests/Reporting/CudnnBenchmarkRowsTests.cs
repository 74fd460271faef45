using Ccr.Bench.Report;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>
/// PyTorch is timed with cudnn.benchmark on (its users' setting: the plain id, on which targets
/// are judged) and off (its default: ids ending ".cudnn_off", tools/torch_requires.py); the report
/// table shows both beside ours, the off row right after the on row and for information only.
/// </summary>
public class CudnnBenchmarkRowsTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "ccr-cudnn-rows-" + Guid.NewGuid().ToString("N"));

    public CudnnBenchmarkRowsTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static ResultRow Row(string id, string part, double ms) => new() { Id = id, Part = part, What = id, Precision = "fp32", Ms = ms };

    [Fact]
    public void BothSettingsAppear_TheTargetOnTheBenchmarkedOne()
    {
        new ResultFile { Side = "ours", Results = [Row("conv.a.fwd.fp32", "kernel", 1.0), Row("step.ccr.fp32", "step", 100), Row("step.ccr.fp32.nograph", "step", 130)] }
            .Save(Path.Combine(_dir, "ours.json"));
        new ResultFile
        {
            Side = "torch",
            Results =
            [
                Row("conv.a.fwd.fp32", "kernel", 0.5),            // benchmark on: ours 2x slower, target missed
                Row("conv.a.fwd.fp32.cudnn_off", "kernel", 0.9),  // off: 1.11x, information only
                Row("step.ccr.fp32", "step", 95),
                Row("step.ccr.fp32.cudnn_off", "step", 120),
            ],
        }.Save(Path.Combine(_dir, "torch_step.json"));
        var (md, rows) = ReportTable.Build(_dir);
        var ids = rows.Select(r => r.Id).ToList();
        int on = ids.IndexOf("conv.a.fwd.fp32");
        Assert.Equal("conv.a.fwd.fp32.cudnn_off", ids[on + 1]);
        Assert.Equal("missed", rows[on].Status);
        Assert.Equal(2.0, rows[on].Ratio!.Value, 9);
        var off = rows[on + 1];
        Assert.Equal("info", off.Status);
        Assert.Equal(1.0 / 0.9, off.Ratio!.Value, 9);
        Assert.Contains("cudnn.benchmark off", off.What);
        Assert.Equal("", off.Target);
        // our eager step (no graph) beside PyTorch's eager step, in both settings too
        Assert.Contains("step.ccr.fp32.nograph.cudnn_off", ids);
        Assert.Equal(130 / 120.0, rows.Single(r => r.Id == "step.ccr.fp32.nograph.cudnn_off").Ratio!.Value, 9);
        Assert.Equal(2, ids.Count(i => i.StartsWith("conv.a.fwd.fp32"))); // no stray row for the off id itself
        Assert.Contains("(PyTorch: cudnn.benchmark off)", md);
    }
}
