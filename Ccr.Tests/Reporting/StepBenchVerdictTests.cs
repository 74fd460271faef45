using Ccr.Bench.Report;
using Xunit;

namespace Ccr.Tests.Reporting;

/// <summary>The step benchmark fails a row whose timed steps were not all replayed from a CUDA graph
/// while graphs were requested on a CUDA device (<see cref="StepBench.ReplayVerdict"/>).</summary>
public class StepBenchVerdictTests
{
    [Fact]
    public void ARowWithGraphsRequestedButNotReplayedFails()
    {
        Assert.Null(StepBench.ReplayVerdict(graphRequested: true, cuda: true, timedSteps: 10, replays: 10, null));
        var some = StepBench.ReplayVerdict(true, true, 10, 7, null);
        Assert.StartsWith("FAIL: 3 of 10 timed steps were not replayed", some);
        var off = StepBench.ReplayVerdict(true, true, 4, 0, "capture failed (CudaGraphException: cuStreamBeginCapture_v2 failed)");
        Assert.Contains("graphs off: capture failed", off);
        Assert.Null(StepBench.ReplayVerdict(graphRequested: false, cuda: true, 10, 0, null)); // the .nograph rows
        Assert.Null(StepBench.ReplayVerdict(graphRequested: true, cuda: false, 10, 0, null)); // the CPU variant has no graphs
    }
}
