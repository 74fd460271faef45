using Ccr.Tests.Data;
using Ccr.Training.Metrics;
using Xunit;

namespace Ccr.Tests.Metrics;

public class EdgeOdsTests
{
    private const int H = 96, W = 128; // diagonal 160 px: radius 0.011 * 160 = 1.76 px

    /// <summary>A rectangle outline and a diagonal staircase, one pixel thin.</summary>
    private static float[] Edges(int shiftX = 0)
    {
        var e = new float[H * W];
        for (int x = 20; x <= 100; x++) { e[20 * W + x + shiftX] = 1; e[70 * W + x + shiftX] = 1; }
        for (int y = 20; y <= 70; y++) { e[y * W + 20 + shiftX] = 1; e[y * W + 100 + shiftX] = 1; }
        for (int k = 0; k < 15; k++) { e[(75 + k) * W + 10 + k + shiftX] = 1; e[(75 + k) * W + 11 + k + shiftX] = 1; }
        return e;
    }

    [Fact]
    public void IdenticalMapScoresOne()
    {
        var m = new EdgeOdsMetric(0.011);
        m.Update(Edges(), Edges(), H, W);
        Assert.Equal(1, m.Compute()["odsF"], 12);
    }

    [Fact]
    public void OnePixelShiftIsWithinTheRadius()
    {
        var m = new EdgeOdsMetric(0.011);
        m.Update(Edges(1), Edges(), H, W);
        Assert.Equal(1, m.Compute()["odsF"], 12);
        // A vertical line two pixels away is beyond 1.76 px: nothing matches.
        var line = new float[H * W];
        var moved = new float[H * W];
        for (int y = 10; y < 80; y++) { line[y * W + 50] = 1; moved[y * W + 52] = 1; }
        var far = new EdgeOdsMetric(0.011);
        far.Update(moved, line, H, W);
        Assert.Equal(0, far.Compute()["odsF"]);
        // PASCAL's 0.0075 * 160 = 1.2 px still covers a one-pixel shift.
        var near = new EdgeOdsMetric(0.0075);
        near.Update(Edges(1), Edges(), H, W);
        Assert.Equal(1, near.Compute()["odsF"], 12);
    }

    [Fact]
    public void SpuriousEdgesLowerPrecisionOnly()
    {
        var gt = Edges();
        var pred = Edges();
        int gtCount = gt.Count(v => v > 0), extra = 0;
        // Isolated spurious pixels far from any label edge, at half strength.
        for (int y = 35; y < 60; y += 6)
            for (int x = 40; x < 85; x += 6) { pred[y * W + x] = 0.5f; extra++; }
        var m = new EdgeOdsMetric(0.011);
        m.Update(pred, gt, H, W);
        var r = m.Compute();
        // At thresholds above 0.5 the spurious pixels vanish: ODS picks such a threshold and scores 1.
        Assert.Equal(1, r["odsF"], 12);
        var curve = m.Curve();
        int low = 10; // threshold 11/102 < 0.5: every spurious pixel counts
        TestData.Close((double)gtCount / (gtCount + extra), curve[low].P, 1e-12, 0, "precision");
        Assert.Equal(1, curve[low].R, 12);
        var hard = new EdgeOdsMetric(0.011);
        for (int i = 0; i < pred.Length; i++) if (pred[i] == 0.5f) pred[i] = 1f;
        hard.Update(pred, gt, H, W);
        var h = hard.Compute();
        TestData.Close((double)gtCount / (gtCount + extra), h["odsP"], 1e-12, 0, "precision");
        TestData.Close(2 * h["odsP"] / (h["odsP"] + 1), h["odsF"], 1e-12);
    }

    [Fact]
    public void NmsThinsAThickRidgeAndMatchingIsOneToOne()
    {
        // A 3-pixel-wide vertical ridge (0.5, 1, 0.5) against a one-pixel label: NMS keeps the centre.
        var pred = new float[H * W];
        var gt = new float[H * W];
        for (int y = 10; y < 80; y++) { pred[y * W + 49] = 0.5f; pred[y * W + 50] = 1; pred[y * W + 51] = 0.5f; gt[y * W + 50] = 1; }
        var m = new EdgeOdsMetric(0.011);
        m.Update(pred, gt, H, W);
        Assert.Equal(1, m.Compute()["odsF"], 12);
        // Without NMS the side columns find no unmatched label pixel: precision 1/3 at low thresholds.
        var raw = new EdgeOdsMetric(0.011, nms: false);
        raw.Update(pred, gt, H, W);
        TestData.Close(1.0 / 3, raw.Curve()[0].P, 1e-12);
    }

    [Fact]
    public void IgnoredLabelPixelsCountNeitherWay()
    {
        var gt = Edges();
        var pred = Edges();
        for (int x = 0; x < W; x++) { gt[5 * W + x] = 255; pred[5 * W + x] = 1; }
        var m = new EdgeOdsMetric(0.011);
        m.Update(pred, gt, H, W);
        Assert.Equal(1, m.Compute()["odsF"], 12);
    }
}

public class EdgeMatchingReferenceTests
{
    /// <summary>Plain Kuhn's algorithm from scratch (recursive DFS): the reference maximum matching.</summary>
    private static int MaxMatching(List<(int Y, int X)> pred, List<(int Y, int X)> gt, double radius)
    {
        var matchR = new int[gt.Count];
        Array.Fill(matchR, -1);
        bool Try(int u, bool[] seen)
        {
            for (int g = 0; g < gt.Count; g++)
            {
                double dy = pred[u].Y - gt[g].Y, dx = pred[u].X - gt[g].X;
                if (dy * dy + dx * dx > radius * radius || seen[g]) continue;
                seen[g] = true;
                if (matchR[g] < 0 || Try(matchR[g], seen)) { matchR[g] = u; return true; }
            }
            return false;
        }
        int m = 0;
        for (int u = 0; u < pred.Count; u++) if (Try(u, new bool[gt.Count])) m++;
        return m;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void IncrementalMatchingEqualsFromScratchMaximumMatching(int seed)
    {
        const int h = 20, w = 24;
        var rng = new Ccr.Training.Data.KeyedRng((ulong)seed);
        var prob = new float[h * w];
        var gt = new float[h * w];
        for (int i = 0; i < h * w; i++)
        {
            if (rng.Chance(0.25)) prob[i] = (float)rng.NextDouble();
            if (rng.Chance(0.2)) gt[i] = 1;
        }
        double maxDist = 0.06; // radius 0.06 * 31.2 = 1.87 px: crowded, many competing matches
        var m = new EdgeOdsMetric(maxDist, nms: false);
        m.Update(prob, gt, h, w);
        var curve = m.Curve();
        double radius = maxDist * Math.Sqrt(h * h + w * w);
        var gts = new List<(int, int)>();
        for (int i = 0; i < h * w; i++) if (gt[i] > 0) gts.Add((i / w, i % w));
        for (int t = 0; t < EdgeOdsMetric.ThresholdCount; t += 7)
        {
            var preds = new List<(int, int)>();
            for (int i = 0; i < h * w; i++) if (prob[i] >= EdgeOdsMetric.Thresholds[t]) preds.Add((i / w, i % w));
            int matched = MaxMatching(preds, gts, radius);
            Assert.Equal((double)matched / gts.Count, curve[t].R, 12);
            if (preds.Count > 0) Assert.Equal((double)matched / preds.Count, curve[t].P, 12);
        }
    }
}
