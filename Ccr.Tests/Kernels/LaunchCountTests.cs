using Ccr.Kernels.Ops;
using Ccr.Bench.Report;
using Ccr.Kernels;
using Ccr.Tests.Common;
using Ccr.Tests.Train;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// Launches counted without running (<see cref="LaunchLog.CountWithoutRunning"/>, behind
/// <c>Ccr.Bench launches</c>): nothing runs while counting and the device goes on as before; and a
/// training step's count equals the launches the same step makes when it really runs (recorded).
/// </summary>
public class LaunchCountTests
{
    [Fact]
    public void CountedLaunchesDoNotRun_AndMatchAnEagerRecording()
    {
        var d = Devices.CudaOnCpu;
        using var a = d.Pool.Rent(40 * 4);
        using var b = d.Pool.Rent(40 * 4);
        var y = new Buf<float>(a, 0, 40);
        var x = new Buf<float>(b, 0, 40);
        y.CopyFrom(Enumerable.Repeat(7f, 40).ToArray());
        x.CopyFrom(Enumerable.Repeat(2f, 40).ToArray());
        void Body() { Elementwise.Fill(d, y, 3f); Elementwise.Add(d, y, y, x); Elementwise.Fill(d, y, 1f); }
        var counted = d.Launches.CountWithoutRunning(Body);
        Assert.All(y.ToArray(), v => Assert.Equal(7f, v)); // nothing ran
        Assert.Equal(3, counted.Sum(c => c.Count));
        Assert.False(d.Launches.Capturing);
        using (var rec = d.Launches.Record())
        {
            Body();
            Assert.Equal(rec.Launches.Select(l => l.Kernel).Distinct(), counted.Select(c => c.Kernel));
            Assert.Equal(rec.Launches.GroupBy(l => l.Kernel).Select(g => g.Count()), counted.Select(c => c.Count));
        }
        Assert.All(y.ToArray(), v => Assert.Equal(1f, v)); // and then it runs as usual
        Assert.Throws<InvalidOperationException>(() => d.Launches.CountWithoutRunning(() => throw new InvalidOperationException("body failed")));
        Assert.False(d.Launches.Capturing); // a failing body ends the count
    }

    [Fact]
    public void ATrainingStepsCountEqualsTheLaunchesOfTheSameStepRun()
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-launches-" + Guid.NewGuid().ToString("N"));
        try
        {
            var d = Devices.CudaOnCpu;
            var cfg = SteadyStepTests.Tiny(root, "tasks=[depth]", "ccr.enabled=false"); // a cheap real step (batch 2: batch norm needs more than one value per channel at the 1x1 branch)
            var rows = LaunchCount.Count(d, cfg, Path.Combine(root, "count"), steps: 2, id: "tiny");
            Assert.Equal(rows[0].Launches, rows[1].Launches);
            Assert.True(rows[0].Launches > 100, $"{rows[0].Launches} launches");

            using var s = new TrainSession(cfg, d);
            var t = new Trainer(s, Path.Combine(root, "run"), _ => { });
            using var rec = d.Launches.Record();
            t.TrainStep(s.Loader.MakeBatch(0, 0), 1.0, log: false);
            Assert.Equal(rows[1].Launches, rec.Launches.Count);
            Assert.Equal(rows[1].PerKernel.Select(p => p.Kernel), rec.Launches.Select(l => l.Kernel).Distinct());
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
