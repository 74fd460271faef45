using Ccr.Nn;
using Ccr.Tests.Common;
using Ccr.Training.Metrics;
using Xunit;

namespace Ccr.Tests.Distributed;

/// <summary>Every metric's accumulators, gathered over two disjoint shards of a data set and
/// combined (what the ranks' all-reduce does), give the metrics of one pass over all of it:
/// counts exactly, double sums to rounding.</summary>
public class MetricStateTests
{
    const int H = 9, W = 11, Images = 5;

    static void CheckSharded(Func<ITaskMetric> make, Action<ITaskMetric, int> update, string what)
    {
        var whole = make();
        for (int i = 0; i < Images; i++) update(whole, i);
        var a = make();
        var b = make();
        for (int i = 0; i < Images; i++) update(i % 2 == 0 ? a : b, i); // rank 0 and rank 1's shards
        var sa = a.ExportState();
        sa.Add(b.ExportState());
        var combined = make();
        combined.LoadState(sa);
        var want = whole.Compute();
        var got = combined.Compute();
        Assert.Equal(want.Keys.Order(), got.Keys.Order());
        foreach (var (k, v) in want)
            Assert.True(Math.Abs(v - got[k]) <= 1e-12 * Math.Max(1, Math.Abs(v)), $"{what}.{k}: sharded {got[k]}, whole {v}");
        // a state of another metric is refused
        Assert.Throws<ArgumentException>(() => combined.LoadState(new MetricState { Counts = [1] }));
    }

    static float[] F(Rng r, int n, float lo = 0f, float hi = 1f) => Rand.Floats(r, n, lo, hi);

    [Fact]
    public void ShardsCombineIntoTheWholeSet()
    {
        var r = Rand.New(21);
        var seg = Enumerable.Range(0, Images).Select(_ => (Rand.Ints(r, H * W, 5), Rand.Ints(r, H * W, 5).Select((v, i) => i % 13 == 0 ? 255 : v).ToArray())).ToArray();
        CheckSharded(() => new SegmentationMetric(5), (m, i) => ((SegmentationMetric)m).Update(seg[i].Item1, seg[i].Item2), "semseg");

        var depth = Enumerable.Range(0, Images).Select(_ => (F(r, H * W, -0.1f, 5f), F(r, H * W, 0f, 5f))).ToArray();
        CheckSharded(() => new DepthMetric(), (m, i) => ((DepthMetric)m).Update(depth[i].Item1, depth[i].Item2), "depth");

        var normals = Enumerable.Range(0, Images).Select(_ => (F(r, 3 * H * W, -1f, 1f), F(r, 3 * H * W, -1f, 1f))).ToArray();
        CheckSharded(() => new NormalsMetric(), (m, i) => ((NormalsMetric)m).Update(normals[i].Item1, normals[i].Item2), "normals");

        var sal = Enumerable.Range(0, Images).Select(_ => (F(r, H * W), Rand.Ints(r, H * W, 2))).ToArray();
        CheckSharded(() => new SaliencyMetric(), (m, i) => ((SaliencyMetric)m).Update(sal[i].Item1, sal[i].Item2), "sal");

        var edge = Enumerable.Range(0, Images).Select(_ => (F(r, H * W), Rand.Ints(r, H * W, 6).Select(v => v == 0 ? 1f : 0f).ToArray())).ToArray();
        CheckSharded(() => new EdgeOdsMetric(0.0075), (m, i) => ((EdgeOdsMetric)m).Update(edge[i].Item1, edge[i].Item2, H, W), "edge");
    }
}
