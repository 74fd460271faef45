using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>The device anchor sampler: both variants equal the host reference exactly for fixed
/// counters; the reference's draws are uniform without replacement among valid pixels; the counter
/// lives on the device, advances there, and is what makes steps (and replays) differ.</summary>
public class CcrAnchorTests
{
    static int[] Valid(int seed, int n, int hw, double validShare)
    {
        var r = Rand.New(seed);
        return Enumerable.Range(0, n * hw).Select(_ => r.NextFloat() < validShare ? 1 : 0).ToArray();
    }

    static int[] Sample(Device d, int[] valid, int n, int hw, int perImage, ulong seed, int counter)
    {
        using var scope = new TensorScope();
        var tv = Tensor.FromArray(d, valid, n, hw);
        var tc = Tensor.FromArray(d, new[] { counter }, 1);
        var ta = Tensor.Empty(d, DType.I32, n, perImage);
        CcrAnchors.SampleAnchors(d, ta.IntData, tv.IntData, tc.IntData, seed, n, hw, perImage);
        return ta.ToIntArray();
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void DeviceSamplerEqualsTheReference(string dev)
    {
        var d = Devices.Get(dev);
        // 3 images of 11x13: image 0 mostly valid, image 1 with fewer valid pixels than anchors, image 2 none
        int n = 3, hw = 143, perImage = 9;
        var valid = Valid(5, n, hw, 0.7);
        for (int i = 0; i < hw; i++) { valid[hw + i] = i % 29 == 0 ? 1 : 0; valid[2 * hw + i] = 0; }
        foreach (int counter in dev == "cpu" ? new[] { 0, 1, 2, -7, int.MaxValue } : new[] { 0, 3 })
        {
            var got = Sample(d, valid, n, hw, perImage, 0xABCDEF, counter);
            Assert.Equal(CcrAnchors.Reference.Sample(valid, n, hw, perImage, 0xABCDEF, counter), got);
            Assert.Equal(new[] { 0, 29, 58, 87, 116, -1, -1, -1, -1 }, got.Skip(perImage).Take(perImage)); // all 5 valid, padded
            Assert.All(got.Skip(2 * perImage), a => Assert.Equal(-1, a));
        }
    }

    [Fact]
    public void CpuAndCudaVariantsAgreeAtTheProjectionMapsSize()
    {
        // 2 images of 30x40 with 12 anchors each: several radix passes on the CUDA variant
        int n = 2, hw = 1200, perImage = 12;
        var valid = Valid(9, n, hw, 0.9);
        var cpu = Sample(Devices.Cpu, valid, n, hw, perImage, 77, 41);
        Assert.Equal(CcrAnchors.Reference.Sample(valid, n, hw, perImage, 77, 41), cpu);
        Assert.Equal(cpu, Sample(Devices.CudaOnCpu, valid, n, hw, perImage, 77, 41));
    }

    [Fact]
    public void DrawsAreUniformWithoutReplacementAmongValidPixels()
    {
        // one image of 40 pixels, 20 valid, 5 anchors, 4,000 counters: each valid pixel is drawn
        // with probability 5/20, each pair of valid pixels together with (5/20)(4/19)
        int hw = 40, perImage = 5, draws = 4000;
        var valid = Enumerable.Range(0, hw).Select(i => i % 2).ToArray();
        var count = new int[hw];
        var pair = new int[hw, hw];
        for (int c = 0; c < draws; c++)
        {
            var a = CcrAnchors.Reference.Sample(valid, 1, hw, perImage, 2024, c);
            Assert.Equal(perImage, a.Distinct().Count());
            Assert.All(a, i => Assert.Equal(1, valid[i]));
            Assert.Equal(a.OrderBy(i => i), a); // pixel order
            foreach (int i in a) { count[i]++; foreach (int j in a) pair[i, j]++; }
        }
        double p = perImage / 20.0, sd = Math.Sqrt(draws * p * (1 - p));
        for (int i = 1; i < hw; i += 2) Assert.InRange(count[i], draws * p - 5 * sd, draws * p + 5 * sd);
        double q = p * (perImage - 1) / 19.0, sdq = Math.Sqrt(draws * q * (1 - q));
        foreach (var (i, j) in new[] { (1, 3), (1, 39), (17, 21), (5, 33) })
            Assert.InRange(pair[i, j], draws * q - 5 * sdq, draws * q + 5 * sdq);
        // chi-square of the marginals over the 20 valid pixels (19 degrees of freedom; 99.99% quantile ~ 50)
        double chi = Enumerable.Range(0, 20).Sum(k => Math.Pow(count[2 * k + 1] - draws * p, 2) / (draws * p));
        Assert.True(chi < 50, $"chi-square {chi:F1} over 19 degrees of freedom");
    }

    [Fact]
    public void TheCounterAdvancesOnTheDeviceAndSelectsTheStream()
    {
        var d = Devices.Cpu;
        int hw = 300, perImage = 6;
        var valid = Valid(3, 1, hw, 0.8);
        using var scope = new TensorScope();
        var tv = Tensor.FromArray(d, valid, 1, hw);
        var counter = Tensor.FromArray(d, new[] { 10 }, 1);
        var a = Tensor.Empty(d, DType.I32, 1, perImage);
        CcrAnchors.SampleAnchors(d, a.IntData, tv.IntData, counter.IntData, 5, 1, hw, perImage);
        var first = a.ToIntArray();
        CcrAnchors.Advance(d, counter.IntData);
        Assert.Equal(11, counter.ToIntArray()[0]);
        CcrAnchors.SampleAnchors(d, a.IntData, tv.IntData, counter.IntData, 5, 1, hw, perImage);
        var second = a.ToIntArray();
        Assert.NotEqual(first, second);
        Assert.Equal(CcrAnchors.Reference.Sample(valid, 1, hw, perImage, 5, 11), second);
        Assert.NotEqual(first, Sample(d, valid, 1, hw, perImage, 6, 10)); // the seed matters too
        Assert.NotEqual(CcrAnchors.MiningSeed(5, 10), CcrAnchors.MiningSeed(5, 11));
    }

    [Fact]
    public void BadSizesAreOneLineErrors()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var v = Tensor.FromArray(d, new int[10], 1, 10);
        var c = Tensor.FromArray(d, new int[1], 1);
        var a = Tensor.Empty(d, DType.I32, 1, 3);
        var e = Assert.Throws<ArgumentException>(() => CcrAnchors.SampleAnchors(d, a.IntData, v.IntData, c.IntData, 1, 1, 10, 4));
        Assert.Contains("anchors", e.Message);
        Assert.Throws<ArgumentException>(() => CcrAnchors.SampleAnchors(d, a.IntData, v.IntData, c.IntData, 1, 1, 10, 0));
    }

    [Fact]
    public void CcrLossKeepsItsCounterInTheStateDictAndAdvancesItPerPair()
    {
        var d = Devices.Cpu;
        var ccr = new CcrLoss(d, new Rng(1), new CcrConfig { ProjectionDim = 4, TopK = 4, NumNegatives = 2, Gamma = 0.2f },
                              [("semseg", 3), ("depth", 3)]);
        Assert.Contains(ccr.NamedBuffers(), b => b.Name == "rng_counter" && b.Tensor.DType == DType.I32);
        using (var scope = new TensorScope())
        {
            var r = Rand.New(2);
            var f = new Dictionary<string, Tensor>
            {
                ["semseg"] = Tensor.FromArray(d, Rand.Floats(r, 2 * 3 * 20), 2, 3, 4, 5),
                ["depth"] = Tensor.FromArray(d, Rand.Floats(r, 2 * 3 * 20), 2, 3, 4, 5),
            };
            using var sem = TaskLabels.Create(d, "semseg", Rand.Ints(r, 2 * 80, 3), 2, 8, 10);
            using var dep = TaskLabels.Create(d, "depth", Rand.Floats(r, 2 * 80, 0.5f, 3f), 2, 8, 10);
            ccr.Forward(f, new Dictionary<string, TaskLabels> { ["semseg"] = sem, ["depth"] = dep }, 1);
        }
        Assert.Equal(2, ccr.Counter.ToIntArray()[0]); // two pairs
        ccr.DisposeTensors();
    }

    [Fact]
    public void PairGeneratorsOfAnotherStreamDrawOtherAnchors()
    {
        // data-parallel ranks: the same seed and counter, but rank r's pair generator has another
        // stream (DistributedTraining.RankRng), so its anchors must differ too
        var d = Devices.Cpu;
        float[] Positives(Rng? pairRng)
        {
            var cfg = new CcrConfig { ProjectionDim = 4, TopK = 4, NumNegatives = 2, Gamma = 0.2f, CollectSamples = true, Sharing = ProjectorSharing.None };
            var ccr = new CcrLoss(d, new Rng(1), cfg, [("semseg", 3), ("depth", 3)], seed: 9);
            if (pairRng != null) ccr.SamplingRng = pairRng;
            var r = Rand.New(2);
            using var scope = new TensorScope();
            var f = new Dictionary<string, Tensor> { ["semseg"] = Tensor.FromArray(d, Rand.Floats(r, 2 * 3 * 80), 2, 3, 8, 10) };
            using var dep = TaskLabels.Create(d, "depth", Rand.Floats(r, 2 * 80, 0.5f, 3f), 2, 8, 10);
            var (_, diag) = ccr.Forward(f, new Dictionary<string, TaskLabels> { ["depth"] = dep }, 1);
            var pos = diag.Pairs.Single().PosSamples!;
            ccr.DisposeTensors();
            return pos;
        }
        var rank0 = Positives(null);
        Assert.Equal(rank0, Positives(null));
        Assert.NotEqual(rank0, Positives(new Rng(9 ^ 0x9E3779B97F4A7C15UL, 78)));
    }
}
