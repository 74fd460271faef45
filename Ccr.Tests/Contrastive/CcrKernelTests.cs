using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>Each CCR kernel against its float64 brute-force reference on tiny maps (6x7, D = 8),
/// both variants, all label kinds, ignored pixels, a row without anchor, and exact ties.</summary>
public class CcrKernelTests
{
    const int N = 2, Dim = 8, Hw = 42, A = 3;

    [Theory]
    [InlineData("cpu", CcrLabelMetric.Discrete)]
    [InlineData("cpu", CcrLabelMetric.L1)]
    [InlineData("cpu", CcrLabelMetric.Angle)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.Discrete)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.Angle)]
    public void DistancesMatchReference(string dev, CcrLabelMetric metric)
    {
        var d = Devices.Get(dev);
        var x = CcrTestData.Make(3 + (int)metric, metric, N, Dim, Hw, A, quantised: false);
        var m = CcrTestData.Mine(d, x, 5, 4, CcrSampling.Hard, 1, distancesOnly: true);
        var fref = CcrDistances.Reference.FeatureDistances(CcrTestData.D(x.Proj), x.Anchors, N, Dim, Hw, A);
        var lref = CcrDistances.Reference.LabelDistances(CcrTestData.D(x.Labels), x.Valid, x.Anchors, N, x.L, Hw, A, metric);
        Tol.Close(fref, m.Fd, 1e-5, 1e-4, $"{dev} feature distances");
        Tol.Close(lref, m.Ld, 2e-5, 1e-4, $"{dev} label distances ({metric})");
        // the NaN pattern is the ignore mask: every ignored pixel and the anchor-less row
        for (int row = 0; row < N * A; row++)
            for (int i = 0; i < Hw; i++)
                Assert.Equal(x.Anchors[row] < 0 || x.Valid[row / A * Hw + i] == 0, float.IsNaN(m.Ld[row * Hw + i]));
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda-on-cpu")]
    public void FeatureDistancesAcrossTilesAndChunks(string dev)
    {
        // 37 anchors (a partial tile of 64; the last row without anchor), 11 channels (a partial
        // chunk of 16), 17x18 = 306 pixels (two full tiles of 128 and a partial one)
        var d = Devices.Get(dev);
        var x = CcrTestData.Make(19, CcrLabelMetric.L1, 2, 11, 306, 37, quantised: false);
        var m = CcrTestData.Mine(d, x, 5, 4, CcrSampling.Hard, 1, distancesOnly: true);
        Tol.Close(CcrDistances.Reference.FeatureDistances(CcrTestData.D(x.Proj), x.Anchors, 2, 11, 306, 37), m.Fd, 1e-5, 1e-4,
                  $"{dev} feature distances, 37 anchors, 11 channels, 306 pixels");
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]      // one pixel, one channel, one anchor (the only row has none)
    [InlineData(2, 33, 130, 65)]  // two full chunks of 16 and one channel, a tile and 2 pixels, a tile and 1 anchor
    [InlineData(3, 16, 127, 64)]  // exactly one chunk, one pixel short of a tile, exactly one anchor tile
    [InlineData(1, 17, 300, 129)] // 129 = 2 x 64 + 1 anchors
    public void CudaFeatureDistancesAtAwkwardShapes(int n, int dim, int hw, int a)
    {
        // the CUDA kernel's tile is 64 anchors x 128 pixels in chunks of 16 channels; every edge of
        // it, on fresh inputs, against the float64 reference (channels past D are staged as zeros)
        var x = CcrTestData.Make(100 + dim, CcrLabelMetric.L1, n, dim, hw, a, quantised: false);
        var m = CcrTestData.Mine(Devices.CudaOnCpu, x, 1, 1, CcrSampling.Hard, 1, distancesOnly: true);
        Tol.Close(CcrDistances.Reference.FeatureDistances(CcrTestData.D(x.Proj), x.Anchors, n, dim, hw, a), m.Fd, 1e-5, 1e-4,
                  $"feature distances N={n} D={dim} HW={hw} A={a}");
        // the label kernel (one group per row) against the CPU variant: L1 is exact in both
        var c = CcrTestData.Mine(Devices.Cpu, x, 1, 1, CcrSampling.Hard, 1, distancesOnly: true);
        Tol.Close(CcrTestData.D(c.Ld), m.Ld, 0, 0, $"label distances N={n} HW={hw} A={a}, CUDA kernel vs CPU variant");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void FeatureDistancesAcrossAnchorBlocks(string dev)
    {
        // 11 anchors per image: one full block of 8 and a partial one (the CPU variant blocks anchors by 8)
        var d = Devices.Get(dev);
        var x = CcrTestData.Make(17, CcrLabelMetric.L1, N, 5, Hw, 11, quantised: false);
        var m = CcrTestData.Mine(d, x, 5, 4, CcrSampling.Hard, 1, distancesOnly: true);
        Tol.Close(CcrDistances.Reference.FeatureDistances(CcrTestData.D(x.Proj), x.Anchors, N, 5, Hw, 11), m.Fd, 1e-5, 1e-4,
                  $"{dev} feature distances, 11 anchors");
    }

    [Theory]
    [InlineData("cpu", CcrLabelMetric.Discrete, CcrSampling.Hard)]
    [InlineData("cpu", CcrLabelMetric.L1, CcrSampling.Hard)]
    [InlineData("cpu", CcrLabelMetric.Angle, CcrSampling.Hard)]
    [InlineData("cpu", CcrLabelMetric.Discrete, CcrSampling.Basic)]
    [InlineData("cpu", CcrLabelMetric.L1, CcrSampling.Basic)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.Discrete, CcrSampling.Hard)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.L1, CcrSampling.Hard)]
    public void MiningMatchesReferenceWithTies(string dev, CcrLabelMetric metric, CcrSampling mode)
    {
        var d = Devices.Get(dev);
        foreach (int seed in dev == "cpu" ? new[] { 1, 2, 3, 4 } : new[] { 5 })
        {
            int a = dev == "cpu" ? A : 2; // barriers are slow on the CPU accelerator: 4 rows, one without anchor
            var x = CcrTestData.Make(seed, metric, N, Dim, Hw, a, quantised: true);
            const int k = 6, c = 4;
            var m = CcrTestData.Mine(d, x, k, c, mode, 99u + (uint)seed);
            var (pos, neg) = CcrSelect.Reference.Mine(CcrTestData.D(m.Fd), CcrTestData.D(m.Ld), x.Anchors, N * a, Hw, k, c,
                                                      metric, mode, 99u + (uint)seed);
            Assert.Equal(pos, m.Pos);
            Assert.Equal(neg, m.Neg);
            Assert.Contains(m.Neg, q => q >= 0); // the case is not vacuous
        }
    }

    [Fact]
    public void CudaMiningOnAnOddSizedMapWithOneRow()
    {
        // 5x7 = 35 pixels, one anchor row: odd-sized matrices, one group; the anchor must be valid
        var d = Devices.CudaOnCpu;
        var x = CcrTestData.Make(41, CcrLabelMetric.Discrete, 1, 4, 35, 2, quantised: true);
        x = x with { Anchors = [x.Anchors[0]], A = 1 };
        var m = CcrTestData.Mine(d, x, 6, 5, CcrSampling.Hard, 3);
        var (pos, neg) = CcrSelect.Reference.Mine(CcrTestData.D(m.Fd), CcrTestData.D(m.Ld), x.Anchors, 1, 35, 6, 5,
                                                  CcrLabelMetric.Discrete, CcrSampling.Hard, 3);
        Assert.Equal(pos, m.Pos);
        Assert.Equal(neg, m.Neg);
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void TripletForwardBackwardMatchReference(string dev)
    {
        var d = Devices.Get(dev);
        var x = CcrTestData.Make(21, CcrLabelMetric.Discrete, N, Dim, Hw, A, quantised: false);
        const int c = 4; const float margin = 0.9f; // a large margin: most triplets are active
        var m = CcrTestData.Mine(Devices.Cpu, x, 6, c, CcrSampling.Basic, 5);
        m.Neg[c + 1] = -1; // a missing negative inside a row
        using var scope = new TensorScope();
        int rows = N * A;
        var proj = Tensor.FromArray(d, x.Proj, N, Dim, Hw);
        var anc = Tensor.FromArray(d, x.Anchors, rows);
        var pos = Tensor.FromArray(d, m.Pos, rows);
        var neg = Tensor.FromArray(d, m.Neg, rows, c);
        var loss = Tensor.Empty(d, rows, c); var dap = Tensor.Empty(d, rows); var dan = Tensor.Empty(d, rows, c);
        var scalar = Tensor.Empty(d, 1); var stats = Tensor.Empty(d, CcrTriplet.StatCount);
        var dloss = Tensor.FromArray(d, new[] { -1.7f }, 1);
        var dproj = Tensor.Empty(d, N, Dim, Hw);
        CcrTriplet.Forward(d, loss.Data, dap.Data, dan.Data, proj.Data, anc.IntData, pos.IntData, neg.IntData, N, Dim, Hw, A, c, margin);
        CcrTriplet.Reduce(d, scalar.Data, stats.Data, loss.Data, dap.Data, dan.Data, anc.IntData, pos.IntData, neg.IntData, rows, c);
        CcrTriplet.Backward(d, dproj.Data, dloss.Data, stats.Data, proj.Data, anc.IntData, pos.IntData, neg.IntData,
                            loss.Data, dap.Data, dan.Data, N, Dim, Hw, A, c);
        var px = CcrTestData.D(x.Proj);
        var (refLoss, refCount) = CcrTriplet.Reference.Forward(px, x.Anchors, m.Pos, m.Neg, Dim, Hw, A, c, margin);
        Assert.True(refCount > 4, $"only {refCount} triplets");
        Tol.Close(refLoss, scalar.ToArray()[0], 1e-6, 1e-5, $"{dev} loss");
        var st = stats.ToArray();
        Assert.Equal(refCount, (int)st[(int)CcrTriplet.Stat.Triplets]);
        Assert.Equal(N * A - 1, (int)st[(int)CcrTriplet.Stat.AnchorsSampled]);
        var gref = CcrTriplet.Reference.Backward(-1.7, px, x.Anchors, m.Pos, m.Neg, Dim, Hw, A, c, margin);
        Tol.Close(gref, dproj.ToArray(), 1e-6, 1e-4, $"{dev} dproj");
        Assert.Contains(gref, v => v != 0);
    }

    [Fact]
    public void CudaBackwardSumsEveryPixelInEntryOrderWithoutAtomics()
    {
        // 7 anchors per image on 42 pixels with 5 negatives each: pixels recur across rows and roles,
        // so chains of several entries are summed; the result must equal the host replay of the
        // entry-order contract bit for bit, and repeat itself
        var d = Devices.CudaOnCpu;
        const int a = 7, c = 5, dim = 6; const float margin = 1.5f;
        var x = CcrTestData.Make(23, CcrLabelMetric.Discrete, N, dim, Hw, a, quantised: false);
        var m = CcrTestData.Mine(Devices.Cpu, x, 6, c, CcrSampling.Basic, 8);
        using var scope = new TensorScope();
        int rows = N * a;
        var proj = Tensor.FromArray(d, x.Proj, N, dim, Hw);
        var anc = Tensor.FromArray(d, x.Anchors, rows);
        var pos = Tensor.FromArray(d, m.Pos, rows);
        var neg = Tensor.FromArray(d, m.Neg, rows, c);
        var loss = Tensor.Empty(d, rows, c); var dap = Tensor.Empty(d, rows); var dan = Tensor.Empty(d, rows, c);
        var scalar = Tensor.Empty(d, 1); var stats = Tensor.Empty(d, CcrTriplet.StatCount);
        var dloss = Tensor.FromArray(d, new[] { 0.37f }, 1);
        CcrTriplet.Forward(d, loss.Data, dap.Data, dan.Data, proj.Data, anc.IntData, pos.IntData, neg.IntData, N, dim, Hw, a, c, margin);
        CcrTriplet.Reduce(d, scalar.Data, stats.Data, loss.Data, dap.Data, dan.Data, anc.IntData, pos.IntData, neg.IntData, rows, c);
        float[] Run()
        {
            var g = Tensor.Empty(d, N, dim, Hw);
            CcrTriplet.Backward(d, g.Data, dloss.Data, stats.Data, proj.Data, anc.IntData, pos.IntData, neg.IntData,
                                loss.Data, dap.Data, dan.Data, N, dim, Hw, a, c);
            return g.ToArray();
        }
        var got = Run();
        var lossH = loss.ToArray();
        var replay = CcrTriplet.Reference.BackwardEntryOrder(0.37f, stats.ToArray()[1], x.Proj, x.Anchors, m.Pos, m.Neg, lossH,
                                                             dap.ToArray(), dan.ToArray(), N, dim, Hw, a, c);
        Assert.Equal(replay, got);
        Assert.Equal(got, Run());
        Tol.Close(CcrTriplet.Reference.Backward(0.37, CcrTestData.D(x.Proj), x.Anchors, m.Pos, m.Neg, dim, Hw, a, c, margin),
                  got, 1e-6, 1e-4, "entry-order gather vs float64 reference");
        // not vacuous: some pixel is the target of several live entries (one per live row for its
        // anchor and positive, one per active triplet for a negative)
        var entries = new List<(int, int)>();
        for (int r = 0; r < rows; r++)
        {
            var live = Enumerable.Range(0, c).Where(j => lossH[r * c + j] > 0f).ToList();
            if (live.Count == 0) continue;
            entries.Add((r / a, x.Anchors[r])); entries.Add((r / a, m.Pos[r]));
            foreach (int j in live) entries.Add((r / a, m.Neg[r * c + j]));
        }
        Assert.Contains(entries.GroupBy(t => t).Select(g => g.Count()), k => k >= 3);
    }

    [Fact]
    public void HostArctangentIsAccurateOverEveryOctant()
    {
        // c >= 0 (a norm), d of either sign, ratios from 0 to huge, exact octant borders; 1003 values: a scalar tail too
        var r = Rand.New(12);
        var c = new float[1003]; var d = new float[1003];
        for (int i = 0; i < c.Length; i++)
        {
            c[i] = i % 5 == 0 ? 0f : MathF.Pow(10, r.Uniform(-6, 6)) * r.NextFloat();
            d[i] = i % 7 == 0 ? 0f : i % 11 == 0 ? c[i] : i % 13 == 0 ? -c[i] : (r.NextFloat() - 0.5f) * MathF.Pow(10, r.Uniform(-6, 6));
        }
        c[0] = 0; d[0] = 0;
        var o = new float[c.Length];
        CcrDistances.AtanHost(c, d, o);
        var want = c.Select((v, i) => Math.Atan2(v, d[i] == 0 ? 0.0 : d[i])).ToArray(); // atan2(0, -0) = 0 here: zero vectors are invalid pixels
        Tol.Close(want, o, 4e-7, 4e-7, "vectorised atan2 against Math.Atan2");
    }

    [Fact]
    public void ReferenceGradientMatchesFiniteDifferences()
    {
        var x = CcrTestData.Make(8, CcrLabelMetric.L1, N, 3, Hw, A, quantised: false);
        var m = CcrTestData.Mine(Devices.Cpu, x, 6, 3, CcrSampling.Basic, 2);
        var p = CcrTestData.D(x.Proj);
        for (int i = 0; i < p.Length; i++) p[i] = x.Proj[i] * 0.5; // small distances: active hinges
        var g = CcrTriplet.Reference.Backward(0.8, p, x.Anchors, m.Pos, m.Neg, 3, Hw, A, 3, 0.5);
        var num = Rand.NumericGrad(v => 0.8 * CcrTriplet.Reference.Forward(v, x.Anchors, m.Pos, m.Neg, 3, Hw, A, 3, 0.5).Loss, p);
        Tol.Close(num, g, 1e-7, 1e-5, "reference gradient vs central differences");
        Assert.Contains(g, v => v != 0);
    }

    [Fact]
    public void GradientAtZeroDistanceIsZero()
    {
        // anchor and positive with identical features: D(a, p) = 0 must pass no NaN and no gradient through p
        var d = Devices.Cpu;
        var proj = new float[] { 1, 1, 0,  0, 0, 1 }; // (1, 2, 3): pixels 0 and 1 equal
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, proj, 1, 2, 3);
        var anc = Tensor.FromArray(d, new[] { 0 }, 1); var pos = Tensor.FromArray(d, new[] { 1 }, 1);
        var neg = Tensor.FromArray(d, new[] { 2 }, 1, 1);
        var loss = Tensor.Empty(d, 1, 1); var dap = Tensor.Empty(d, 1); var dan = Tensor.Empty(d, 1, 1);
        var s = Tensor.Empty(d, 1); var st = Tensor.Empty(d, CcrTriplet.StatCount);
        var g = Tensor.Empty(d, 1, 2, 3);
        CcrTriplet.Forward(d, loss.Data, dap.Data, dan.Data, tp.Data, anc.IntData, pos.IntData, neg.IntData, 1, 2, 3, 1, 1, 2f);
        CcrTriplet.Reduce(d, s.Data, st.Data, loss.Data, dap.Data, dan.Data, anc.IntData, pos.IntData, neg.IntData, 1, 1);
        CcrTriplet.Backward(d, g.Data, Tensor.FromArray(d, new[] { 1f }, 1).Data, st.Data, tp.Data, anc.IntData, pos.IntData,
                            neg.IntData, loss.Data, dap.Data, dan.Data, 1, 2, 3, 1, 1);
        Tol.Close(2 - Math.Sqrt(2), s.ToArray()[0], 1e-6, 1e-6, "loss");
        var gr = g.ToArray();
        Assert.All(gr, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(0f, gr[1]); Assert.Equal(0f, gr[4]); // the positive gets nothing
    }
}
