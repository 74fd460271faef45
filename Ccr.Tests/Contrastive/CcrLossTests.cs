using Ccr.Kernels.Contrastive;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>The CCR pair loss against PyTorch goldens, its mining properties on random inputs, the
/// masking rules for empty or short sets, and the host-side pieces (labels, anchors, pairs, lambda).</summary>
public class CcrLossTests
{
    static JsonElement Fixture(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "ccr", name + ".json"))).RootElement;

    static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => v.GetSingle()).ToArray();
    static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    [Theory]
    [InlineData("semseg", "semseg", "cpu")]
    [InlineData("depth", "depth", "cpu")]
    [InlineData("normals", "normals", "cpu")]
    [InlineData("semseg", "semseg", "cuda-on-cpu")] // the GPU path: labels mined without a distance matrix, gather backward
    [InlineData("depth", "depth", "cuda-on-cpu")]
    [InlineData("normals", "normals", "cuda-on-cpu")]
    public void PairLossAndGradientMatchPyTorch(string fixture, string task, string dev)
    {
        var d = Devices.Get(dev);
        var f = Fixture(fixture);
        int n = f.GetProperty("N").GetInt32(), dim = f.GetProperty("D").GetInt32();
        int h = f.GetProperty("H").GetInt32(), w = f.GetProperty("W").GetInt32();
        var cfg = new CcrConfig
        {
            TopK = f.GetProperty("K").GetInt32(), NumNegatives = f.GetProperty("C").GetInt32(),
            Margin = f.GetProperty("margin").GetSingle(),
        };
        using var scope = new TensorScope();
        using var labels = TaskLabels.Create(d, task, Floats(f.GetProperty("labels")), n, h, w);
        var proj = Tensor.FromArray(d, Floats(f.GetProperty("proj")), n, dim, h, w);
        proj.RequiresGrad = true;
        var loss = CcrOps.PairLoss(proj, labels, Ints(f.GetProperty("anchors")), cfg, 1, out var r, collect: true);
        Assert.Equal(Ints(f.GetProperty("pos_idx")), r.PosIdx);
        Assert.Equal(Ints(f.GetProperty("neg_idx")), r.NegIdx);
        Tol.Close(f.GetProperty("loss").GetDouble(), loss.Item(), 1e-6, 1e-4, $"{fixture} loss");
        Assert.Equal(f.GetProperty("triplets").GetInt32(), (int)r.Stats.ToArray()[(int)CcrTriplet.Stat.Triplets]);
        loss.Backward(Tensor.FromArray(d, new[] { f.GetProperty("dloss").GetSingle() }, 1));
        Tol.Close(Doubles(f.GetProperty("grad")), proj.Grad!.ToArray(), 1e-6, 1e-4, $"{fixture} gradient");
        proj.Grad.Dispose();
    }

    [Theory]
    [InlineData(CcrLabelMetric.Discrete)]
    [InlineData(CcrLabelMetric.L1)]
    [InlineData(CcrLabelMetric.Angle)]
    public void MiningPropertiesHoldOnRandomInputs(CcrLabelMetric metric)
    {
        const int n = 2, dim = 16, hw = 13 * 11, a = 9, k = 12, c = 16;
        foreach (int seed in new[] { 31, 32, 33 })
            foreach (var mode in new[] { CcrSampling.Hard, CcrSampling.Basic })
            {
                var x = CcrTestData.Make(seed, metric, n, dim, hw, a, quantised: seed == 33);
                var m = CcrTestData.Mine(Devices.Cpu, x, k, c, mode, (uint)seed);
                int triplets = 0;
                for (int row = 0; row < n * a; row++)
                {
                    int b = row / a, anc = x.Anchors[row], p = m.Pos[row];
                    if (anc < 0) { Assert.Equal(-1, p); continue; }
                    Assert.Equal(1, x.Valid[b * hw + anc]);
                    if (p < 0) { Assert.All(m.Neg.Skip(row * c).Take(c), q => Assert.Equal(-1, q)); continue; }
                    Assert.NotEqual(anc, p);
                    Assert.Equal(1, x.Valid[b * hw + p]); // no ignored pixel is ever chosen
                    float lp = m.Ld[row * hw + p];
                    if (metric == CcrLabelMetric.Discrete) Assert.Equal(0f, lp); // same class
                    else
                    {
                        int closer = Enumerable.Range(0, hw).Count(i => i != anc && !float.IsNaN(m.Ld[row * hw + i]) && m.Ld[row * hw + i] < lp);
                        Assert.True(closer < k, $"positive {p} has {closer} strictly nearer labels, k = {k}");
                    }
                    var negs = m.Neg.Skip(row * c).Take(c).Where(q => q >= 0).ToArray();
                    Assert.Equal(negs.Length, negs.Distinct().Count());
                    foreach (int q in negs)
                    {
                        triplets++;
                        Assert.Equal(1, x.Valid[b * hw + q]);
                        Assert.NotEqual(anc, q);
                        if (metric == CcrLabelMetric.Discrete) Assert.NotEqual(0f, m.Ld[row * hw + q]);
                        else Assert.True(m.Ld[row * hw + q] >= lp, "a negative's label is nearer than the positive's");
                        if (mode == CcrSampling.Hard)
                            Assert.True(m.Fd[row * hw + q] > m.Dpos[row], $"semi-hard negative {q} not beyond the positive");
                    }
                }
                Assert.True(triplets > 0, "vacuous property test");
            }
    }

    [Fact]
    public void ClassFillingTheImageGivesNoTripletAndZeroLoss()
    {
        // one class everywhere (plus ignored pixels): no anchor has a negative; the loss is 0, not NaN
        var d = Devices.Cpu;
        int h = 5, w = 6;
        var lab = Enumerable.Range(0, h * w).Select(i => i % 7 == 0 ? 255f : 2f).ToArray();
        using var scope = new TensorScope();
        using var labels = TaskLabels.Create(d, "semseg", lab, 1, h, w);
        var proj = Tensor.FromArray(d, Rand.Floats(Rand.New(1), 4 * h * w), 1, 4, h, w);
        proj.RequiresGrad = true;
        var counter = Tensor.FromArray(d, new int[1], 1);
        var anchors = CcrOps.SampleAnchors(labels, 4, counter, 3);
        var loss = CcrOps.PairLoss(proj, labels, anchors, new CcrConfig(), counter, 9, out var r, collect: true);
        Assert.Equal(0f, loss.Item());
        Assert.All(r.PosIdx!, p => Assert.True(p >= 0));
        Assert.All(r.NegIdx!, q => Assert.Equal(-1, q));
        loss.Backward();
        Assert.All(proj.Grad!.ToArray(), g => Assert.Equal(0f, g));
        proj.Grad.Dispose();
    }

    [Fact]
    public void FewerSemiHardNegativesThanAskedArePaddedAndTheMeanIsOverExistingTriplets()
    {
        // 1-D features along a line: anchor at x=0, positive (same class) at x=0.5, negatives at
        // x = 0.2 (closer than the positive: excluded), 0.7 and 0.9 (semi-hard); 16 asked, 2 exist
        var d = Devices.Cpu;
        var proj = new float[] { 0f, 0.5f, 0.2f, 0.7f, 0.9f };
        var lab = new float[] { 1, 1, 0, 0, 0 };
        using var scope = new TensorScope();
        using var labels = TaskLabels.Create(d, "semseg", lab, 1, 1, 5);
        var tp = Tensor.FromArray(d, proj, 1, 1, 1, 5);
        var loss = CcrOps.PairLoss(tp, labels, [0], new CcrConfig { Margin = 0.3f }, 1, out var r, collect: true);
        Assert.Equal(1, r.PosIdx![0]);
        Assert.Equal(new[] { 3, 4 }.Concat(Enumerable.Repeat(-1, 14)), r.NegIdx!);
        Tol.Close(((0.5 - 0.7 + 0.3) + Math.Max(0, 0.5 - 0.9 + 0.3)) / 2, loss.Item(), 1e-6, 1e-5, "mean over 2 triplets");
    }

    [Fact]
    public void LabelsDownsampleByNearestBinariseAndMarkIgnoredPixels()
    {
        var d = Devices.Cpu;
        // sal 2x4 -> 1x2: src = floor(dst * in / out) picks (0,0) and (0,2)
        using var sal = TaskLabels.Create(d, "sal", new[] { 0.7f, 0.1f, 255f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f }, 1, 2, 4);
        var s = sal.Resized(1, 2);
        Assert.Equal(new[] { 1f, 255f }, s.Values);
        Assert.Equal(new[] { 1, 0 }, s.Valid);
        using var depth = TaskLabels.Create(d, "depth", new[] { 0f, 2f, 3f, float.NaN }, 1, 2, 2);
        Assert.Equal(new[] { 0, 1, 1, 0 }, depth.Valid);
        using var normals = TaskLabels.Create(d, "normals", new float[] { 0, 1, 0, 0, 0, 0 }, 1, 1, 2);
        Assert.Equal(new[] { 0, 1 }, normals.Valid);
        Assert.Equal(CcrLabelMetric.Angle, normals.Space.Metric);
        Assert.Throws<ArgumentException>(() => LabelSpace.For("albedo"));
    }

    [Fact]
    public void AnchorsAreDistinctValidSeededAndPaddedWhenTooFew()
    {
        var d = Devices.Cpu;
        var lab = Enumerable.Range(0, 2 * 40).Select(i => i < 40 ? (i % 3 == 0 ? 255f : 1f) : (i == 45 ? 0f : 255f)).ToArray();
        using var scope = new TensorScope();
        using var labels = TaskLabels.Create(d, "semseg", lab, 2, 5, 8);
        var counter = Tensor.FromArray(d, new[] { 4 }, 1);
        var a1 = CcrOps.SampleAnchors(labels, 6, counter, 5).ToIntArray();
        var a2 = CcrOps.SampleAnchors(labels, 6, counter, 5).ToIntArray();
        Assert.Equal(a1, a2); // the same counter draws the same anchors
        var first = a1.Take(6).ToArray();
        Assert.Equal(6, first.Distinct().Count());
        Assert.All(first, i => Assert.Equal(1, labels.Valid[i]));
        Assert.Equal(new[] { 5, -1, -1, -1, -1, -1 }, a1.Skip(6)); // one valid pixel in image 2
        Assert.Equal(1, new CcrConfig().AnchorsPerImage(6, 7));
        Assert.Equal(192, new CcrConfig().AnchorsPerImage(120, 160));
    }

    [Fact]
    public void PairSamplerDrawsOtherTasksUniformlyOrAllPairs()
    {
        string[] tasks = ["semseg", "depth", "normals", "edge"];
        var rng = new Rng(11);
        var sampler = new TaskPairSampler(tasks, PairSelection.RandomSource);
        var counts = new Dictionary<(string, string), int>();
        for (int step = 0; step < 3000; step++)
        {
            var pairs = sampler.Next(rng);
            Assert.Equal(tasks, pairs.Select(p => p.Target));
            foreach (var p in pairs) { Assert.NotEqual(p.Target, p.Source); counts[p] = counts.GetValueOrDefault(p) + 1; }
        }
        Assert.Equal(12, counts.Count);
        Assert.All(counts.Values, v => Assert.InRange(v, 850, 1150)); // 1000 expected each
        Assert.Equal(12, new TaskPairSampler(tasks, PairSelection.AllPairs).Next(rng).Count);
        Assert.Empty(new TaskPairSampler(["semseg"], PairSelection.AllPairs).Next(rng));
        Assert.All(sampler.Next(rng, s => s == "depth").Where(p => p.Target != "depth"), p => Assert.Equal("depth", p.Source));
    }

    [Fact]
    public void LambdaRampsLinearly()
    {
        var c = new CcrConfig { Lambda = 2f, RampEpochs = 4 };
        Assert.Equal(0f, c.LambdaAt(0));
        Assert.Equal(1f, c.LambdaAt(2));
        Assert.Equal(2f, c.LambdaAt(4));
        Assert.Equal(2f, c.LambdaAt(10));
        Assert.Equal(2f, new CcrConfig { Lambda = 2f, RampEpochs = 0 }.LambdaAt(0));
        Assert.Throws<ArgumentException>(() => new CcrConfig { NumNegatives = 65 }.Validate());
    }
}
