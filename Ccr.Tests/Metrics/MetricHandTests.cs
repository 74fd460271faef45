using Ccr.Tests.Data;
using Ccr.Training.Data;
using Ccr.Training.Metrics;
using Xunit;

namespace Ccr.Tests.Metrics;

/// <summary>Every metric on cases small enough to compute by hand, edge cases included.</summary>
public class MetricHandTests
{
    [Fact]
    public void MIoUCountsAbsentClassesAsZeroAndIgnores255()
    {
        var m = new SegmentationMetric(3);
        // Class 0: TP 2, FN 1 (predicted 1); class 1: TP 1, FP 1; class 2 absent everywhere.
        m.Update([0, 0, 1, 1, 2], [0, 0, 0, 1, 255]);
        var r = m.Compute();
        TestData.Close((2.0 / 3 + 1.0 / 2 + 0) / 3, r["mIoU"]);
        TestData.Close(3.0 / 4, r["pixAcc"]);
    }

    [Fact]
    public void AllIgnoreImageChangesNothing()
    {
        var a = new SegmentationMetric(2);
        var b = new SegmentationMetric(2);
        a.Update([0, 1], [0, 1]);
        b.Update([0, 1], [0, 1]);
        b.Update([1, 1, 0], [255, 255, 255]);
        Assert.Equal(a.Compute(), b.Compute());
        var empty = new SegmentationMetric(2);
        empty.Update([1, 0], [255, 255]);
        Assert.Equal(0, empty.Compute()["mIoU"]);
    }

    [Fact]
    public void PerfectSegmentationIsOneAndOutOfRangePredictionIsWrong()
    {
        var m = new SegmentationMetric(2);
        m.Update([0, 1], [0, 1]);
        Assert.Equal(1, m.Compute()["mIoU"]);
        var w = new SegmentationMetric(2);
        w.Update([0, 7], [0, 1]);
        TestData.Close((1 + 0) / 2.0, w.Compute()["mIoU"]);
        Assert.Throws<ArgumentException>(() => w.Update([0], [5]));
    }

    [Fact]
    public void DepthIsPixelWiseOverTheDatasetAndSkipsZeros()
    {
        var m = new DepthMetric();
        m.Update([1f, 2f, 5f], [2f, 0f, 4f]);  // errors 1 and 1 (the 0 is invalid)
        m.Update([3f], [1f]);                  // error 2
        var r = m.Compute();
        TestData.Close(Math.Sqrt((1 + 1 + 4) / 3.0), r["rmse"]);   // not the mean of per-image RMSEs
        TestData.Close((0.5 + 0.25 + 2.0) / 3, r["abs_rel"]);
        Assert.Equal(0, r["delta1"]);                              // ratios 2, 1.25, 3: 1.25 is not < 1.25
        TestData.Close(1.0 / 3, r["delta2"]);
        var clamp = new DepthMetric();
        clamp.Update([-1f], [2f]);                                 // clamped to 0
        TestData.Close(2.0, clamp.Compute()["rmse"]);
        Assert.Equal(0, clamp.Compute()["delta3"]);
        var none = new DepthMetric();
        none.Update([1f, 2f], [0f, 0f]);
        Assert.True(double.IsNaN(none.Compute()["rmse"]));
    }

    [Fact]
    public void NormalsAnglesZeroNormalsAndInvalidLabels()
    {
        var m = new NormalsMetric();
        // (3, H=1, W=4): same direction (scaled), opposite, orthogonal, zero prediction; plus a zero label.
        float[] pred = [2, -1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        float[] gt = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        m.Update(pred.AsSpan(0, 12), gt.AsSpan(0, 12));
        var r = m.Compute();
        TestData.Close((0 + 180 + 90 + 90) / 4.0, r["mean"], 1e-9);
        TestData.Close(90, r["median"], 1e-3);
        TestData.Close(Math.Sqrt((0 + 180 * 180 + 2 * 90 * 90) / 4.0), r["rmse"], 1e-9);
        TestData.Close(0.25, r["11.25"]);
        var zeroLabels = new NormalsMetric();
        zeroLabels.Update(new float[6], new float[6]);
        Assert.True(double.IsNaN(zeroLabels.Compute()["mean"]));
        var same = new NormalsMetric();
        same.Update([0.6f, 0.8f, 0f], [0.6f, 0.8f, 0f]);
        Assert.Equal(0, same.Compute()["mean"]);
    }

    [Fact]
    public void SaliencyMaxFByHand()
    {
        var m = new SaliencyMetric();
        // At thresholds <= 0.3: 3 predicted, 2 true positives of 2 -> P 2/3, R 1; above 0.3 and up to 0.9: P 1, R 1/2.
        m.Update([0.9f, 0.3f, 0.3f, 0.0f, 0.5f], [1, 1, 0, 0, 255]);
        double f1 = 1.3 * (2.0 / 3) / (0.3 * 2.0 / 3 + 1), f2 = 1.3 * 0.5 / (0.3 + 0.5);
        TestData.Close(Math.Max(f1, f2), m.Compute()["maxF"]);
        var perfect = new SaliencyMetric();
        perfect.Update([1f, 0f, 1f], [1, 0, 1]);
        Assert.Equal(1, perfect.Compute()["maxF"], 12);
        var empty = new SaliencyMetric();
        empty.Update([0f, 0f], [0, 0]);
        Assert.Equal(0, empty.Compute()["maxF"]);
    }

    [Fact]
    public void DeltaMSignConventions()
    {
        var st = new Dictionary<string, Dictionary<string, double>>
        {
            ["depth"] = new() { ["rmse"] = 0.5 }, ["semseg"] = new() { ["mIoU"] = 0.4 },
        };
        var betterDepth = new Dictionary<string, Dictionary<string, double>>
        {
            ["depth"] = new() { ["rmse"] = 0.4 }, ["semseg"] = new() { ["mIoU"] = 0.4 },
        };
        TestData.Close(100 * (0.2 + 0) / 2, DeltaM.Compute(betterDepth, st)); // lower rmse is a gain
        TestData.Close(0, DeltaM.Compute(st, st));
        Assert.Throws<ArgumentException>(() => DeltaM.Compute(st, new Dictionary<string, Dictionary<string, double>>()));
        Assert.True(TaskInfo.LowerIsBetter(TaskNames.Normals) && !TaskInfo.LowerIsBetter(TaskNames.Edge));
    }
}
