using System.Text.Json;
using Ccr.Tests.Data;
using Ccr.Training.Data;
using Ccr.Training.Metrics;
using Xunit;

namespace Ccr.Tests.Metrics;

/// <summary>
/// The metrics against NumPy implementations of the same definitions (tools/make_metric_fixtures.py)
/// on random fixtures of 3 images of 12x16, within 1e-6.
/// </summary>
public class MetricFixtureTests
{
    private static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(TestData.Fixture("metrics", "expected.json"))).RootElement;

    private static NpyArray Load(string name) => Npy.Read(TestData.Fixture("metrics", name + ".npy"));

    private static double E(string group, string key) => Expected.GetProperty(group).GetProperty(key).GetDouble();

    [Fact]
    public void SegmentationMatchesNumPy()
    {
        var gt = Load("seg_gt");
        var pred = Load("seg_pred");
        var m = new SegmentationMetric((int)E("seg", "classes"));
        int n = gt.Shape[1] * gt.Shape[2];
        for (int b = 0; b < gt.Shape[0]; b++)
            m.Update(pred.Data.Skip(b * n).Take(n).Select(v => (int)v).ToArray(), gt.Data.Skip(b * n).Take(n).Select(v => (int)v).ToArray());
        var r = m.Compute();
        TestData.Close(E("seg", "mIoU"), r["mIoU"], what: "mIoU");
        TestData.Close(E("seg", "pixAcc"), r["pixAcc"], what: "pixAcc");
        Assert.Equal(0, m.ClassIoU()[5]); // the absent class counts 0
    }

    [Fact]
    public void DepthMatchesNumPy()
    {
        var gt = Load("depth_gt").ToFloat();
        var pred = Load("depth_pred").ToFloat();
        var m = new DepthMetric();
        int n = gt.Length / 3;
        for (int b = 0; b < 3; b++) m.Update(pred.AsSpan(b * n, n), gt.AsSpan(b * n, n));
        var r = m.Compute();
        foreach (string k in new[] { "rmse", "log_rmse", "abs_rel", "delta1", "delta2", "delta3" })
            TestData.Close(E("depth", k), r[k], what: k);
    }

    [Fact]
    public void NormalsMatchNumPy()
    {
        var gt = Load("normals_gt").ToFloat();
        var pred = Load("normals_pred").ToFloat();
        var m = new NormalsMetric();
        int n = gt.Length / 3;
        for (int b = 0; b < 3; b++) m.Update(pred.AsSpan(b * n, n), gt.AsSpan(b * n, n));
        var r = m.Compute();
        foreach (string k in new[] { "mean", "rmse", "11.25", "22.5", "30" })
            TestData.Close(E("normals", k), r[k], what: k);
        TestData.Close(E("normals", "median"), r["median"], atol: 1e-3, what: "median (histogram, 0.001-degree bins)");
    }

    [Fact]
    public void SaliencyMatchesNumPy()
    {
        var gt = Load("sal_gt").Data.Select(v => (int)v).ToArray();
        var prob = Load("sal_prob").ToFloat();
        var m = new SaliencyMetric();
        int n = gt.Length / 3;
        for (int b = 0; b < 3; b++) m.Update(prob.AsSpan(b * n, n), gt.AsSpan(b * n, n));
        TestData.Close(E("sal", "maxF"), m.Compute()["maxF"], what: "maxF");
    }

    [Fact]
    public void DeltaMMatchesNumPy()
    {
        var d = Expected.GetProperty("delta_m");
        Dictionary<string, Dictionary<string, double>> Parse(string k) =>
            JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, double>>>(d.GetProperty(k).GetRawText())!;
        TestData.Close(d.GetProperty("value").GetDouble(), DeltaM.Compute(Parse("multi"), Parse("single")), what: "delta_m");
    }
}
