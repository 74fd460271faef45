using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>The range-guided radix select on key distributions that break digit schedules (all
/// keys in [0, 2], one value everywhere, a few ulps of range, signed zeros, 60 decades, NaN
/// holes, fewer eligible keys than k), and the fused mining launch against the staged one.</summary>
public class CcrSelectTests
{
    const int Hw = 300;

    // one row per distribution; column 0 is the anchor (excluded from every set)
    static float[] HardRows(out int rows)
    {
        var r = Rand.New(71);
        var kinds = new List<Func<int, float>>
        {
            _ => MathF.Sqrt(2 - 2 * r.Uniform(-1, 1)),                   // unit-norm feature distances: all in [0, 2]
            _ => 0.75f,                                                   // one value: order by index only
            _ => BitConverter.Int32BitsToSingle(0x3F800000 + r.NextInt(5)), // 1.0 and its next four ulps
            i => i % 3 == 0 ? -0f : i % 3 == 1 ? 0f : -r.NextFloat(),    // signed zeros and negatives
            _ => MathF.Pow(10, r.Uniform(-30, 30)),                       // 60 decades
            i => i % 4 == 0 ? float.NaN : r.Uniform(0, 3),                // ineligible holes
            i => i < 12 ? r.Uniform(0, 1) : float.NaN,                    // 11 eligible keys only
        };
        rows = kinds.Count;
        var l = new float[rows * Hw];
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < Hw; i++) l[row * Hw + i] = kinds[row](i);
        return l;
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void TopKBoundsEqualSortedSelectionOnHardDistributions(string dev)
    {
        var d = Devices.Get(dev);
        var ld = HardRows(out int rows);
        var anchors = new int[rows];
        foreach (int k in dev == "cpu" ? new[] { 1, 2, 7, 11, 12, 100, 149, 150, 298, 299, 400 } : new[] { 11, 149 })
        {
            var b = TopKBounds(d, ld, anchors, rows, Hw, k);
            var (pos, neg) = CcrSelect.Reference.Sets(Rand.D(ld), anchors, rows, Hw, k, CcrLabelMetric.L1);
            for (int row = 0; row < rows; row++)
                for (int i = 0; i < Hw; i++)
                {
                    float v = ld[row * Hw + i];
                    Assert.True(pos[row * Hw + i] == CcrSelect.IsPositive(1, i, 0, v, b[2 * row]),
                        $"{dev} k={k} row {row} pixel {i} ({v:R}): positive set differs");
                    Assert.True(neg[row * Hw + i] == CcrSelect.IsNegative(1, i, 0, v, b[2 * row], b[2 * row + 1]),
                        $"{dev} k={k} row {row} pixel {i} ({v:R}): negative set differs");
                }
        }
    }

    [Theory]
    [InlineData("cpu", CcrLabelMetric.L1, CcrSampling.Hard)]
    [InlineData("cpu", CcrLabelMetric.Angle, CcrSampling.Basic)]
    [InlineData("cpu", CcrLabelMetric.Discrete, CcrSampling.Basic)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.L1, CcrSampling.Basic)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.Discrete, CcrSampling.Hard)]
    [InlineData("cpu", CcrLabelMetric.L1, CcrSampling.Hard, true)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.L1, CcrSampling.Hard, true)]
    [InlineData("cuda-on-cpu", CcrLabelMetric.Discrete, CcrSampling.Basic, true)]
    public void FusedMiningEqualsTheStagesAndTheReference(string dev, CcrLabelMetric metric, CcrSampling mode, bool fromLabels = false)
    {
        var d = Devices.Get(dev);
        int n = dev == "cpu" ? 2 : 1, a = 3; // quantised inputs: both variants' distances are exact, so they mine alike
        const int k = 6, c = 4, counter = 12345;
        uint seed = CcrAnchors.MiningSeed(31, counter); // what the kernel derives from the device counter
        CcrTestData.Inputs x;
        CcrTestData.Mined staged;
        int s = 90;
        do // the first inputs whose rows have semi-hard negatives (not a vacuous comparison)
        {
            x = CcrTestData.Make(s++, metric, n, 6, 42, a, quantised: true);
            staged = CcrTestData.Mine(Devices.Cpu, x, k, c, mode, seed);
        } while (!staged.Neg.Any(q => q >= 0));
        var fused = CcrTestData.MineFused(d, x, k, c, mode, 31, counter, fromLabels);
        Assert.Equal(staged.Pos, fused.Pos);
        Assert.Equal(staged.Neg, fused.Neg);
        Assert.Equal(staged.Dpos, fused.Dpos);
        var (pos, neg) = CcrSelect.Reference.Mine(Rand.D(staged.Fd), Rand.D(staged.Ld), x.Anchors, n * a, 42, k, c, metric, mode, seed);
        Assert.Equal(pos, fused.Pos);
        Assert.Equal(neg, fused.Neg);
    }

    /// <summary>
    /// The CUDA select on 520-pixel rows (more keys than the 256 it collects directly, so histogram
    /// passes run) whose distributions take each of its paths: one value (order by index only), a
    /// cluster of ties holding most keys, an ulp ladder, 60 decades, NaN holes, and two tight
    /// clusters far apart (a pass whose keys all fall into one bin, then a jump to their differing
    /// bits). Each bound must equal the k-th of a sort of the row's composite keys, bit for bit, for
    /// k near both ends and past the 256 a collection holds (k = 519: all of a full row's keys).
    /// </summary>
    [Fact]
    public void CudaTopKBoundsEqualASortOnEveryPassPath()
    {
        const int hw = 520;
        var r = Rand.New(72);
        var kinds = new List<Func<int, float>>
        {
            _ => 0.75f,
            i => i % 13 == 0 ? r.Uniform(0, 2) : 0.5f,
            i => BitConverter.Int32BitsToSingle(0x3F800000 + i * 7919 % hw),
            _ => MathF.Pow(10, r.Uniform(-30, 30)),
            i => i % 2 == 0 ? float.NaN : r.Uniform(0, 3),
            i => i % 2 == 0 ? 1e-3f * (1 + r.NextInt(1000) * 1e-6f) : 1e3f * (1 + r.NextInt(1000) * 1e-6f),
        };
        int rows = kinds.Count;
        var ld = new float[rows * hw];
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < hw; i++) ld[row * hw + i] = kinds[row](i);
        var anchors = new int[rows]; // pixel 0: excluded from every set
        var d = Devices.CudaOnCpu;
        foreach (int k in new[] { 2, 257, 300, 519 })
        {
            var b = TopKBounds(d, ld, anchors, rows, hw, k);
            for (int row = 0; row < rows; row++)
            {
                var pos = Enumerable.Range(1, hw - 1).Where(i => !float.IsNaN(ld[row * hw + i]))
                    .Select(i => CcrSelect.Compose(CcrSelect.OrderedKey(ld[row * hw + i]), i)).OrderBy(v => v).ToList();
                ulong posB = pos.Count >= k ? pos[k - 1] : CcrSelect.None;
                var neg = Enumerable.Range(1, hw - 1).Where(i => !float.IsNaN(ld[row * hw + i]) &&
                                                                 CcrSelect.Compose(CcrSelect.OrderedKey(ld[row * hw + i]), i) > posB)
                    .Select(i => CcrSelect.Compose(CcrSelect.OrderedKey(-ld[row * hw + i]), i)).OrderBy(v => v).ToList();
                ulong negB = neg.Count >= k ? neg[k - 1] : CcrSelect.None;
                Assert.True(posB == b[2 * row], $"k={k} row {row}: positive bound {b[2 * row]:X16}, sort says {posB:X16}");
                Assert.True(negB == b[2 * row + 1], $"k={k} row {row}: negative bound {b[2 * row + 1]:X16}, sort says {negB:X16}");
            }
        }
    }

    /// <summary>
    /// A host model of the digit schedule (not the kernel: the kernel's results are tested above)
    /// that counts passes over the keys, to back the claim in CcrSelect's comment: on 19,200
    /// unit-norm distances a top-16 or top-128 takes one histogram pass and one collecting pass
    /// after the (count, min, max) pass, where the fixed 8-bit MSB-first schedule over (32-bit key,
    /// 15-bit index) needs 6 passes.
    /// </summary>
    [Fact]
    public void RangeGuidedDigitsNeedFewPassesOnUnitNormDistances()
    {
        var r = Rand.New(5);
        int hw = 19200;
        var keys = new ulong[hw];
        for (int i = 0; i < hw; i++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int c = 0; c < 16; c++) { double u = r.NextGaussian(), v = r.NextGaussian(); dot += u * v; na += u * u; nb += v * v; }
            float dist = (float)Math.Sqrt(Math.Max(0, 2 - 2 * dot / Math.Sqrt(na * nb)));
            keys[i] = CcrSelect.Compose(CcrSelect.OrderedKey(dist), i);
        }
        var sorted = keys.OrderBy(v => v).ToArray();
        foreach (int k in new[] { 16, 128, 9600 })
        {
            var (bound, passes) = ModelSelect(keys, k);
            Assert.Equal(sorted[k - 1], bound);
            Assert.InRange(passes, 1, k < 1000 ? 2 : 3);
        }
        Assert.Equal((sorted[0], 0), ModelSelect(keys, 1));
        Assert.Equal((sorted[^1], 0), ModelSelect(keys, hw));
    }

    // CcrSelect.GroupSelect's schedule on the host: passes after the (count, min, max) one
    static (ulong Bound, int Passes) ModelSelect(ulong[] keys, int k)
    {
        const int collectMax = 256; // CcrSelect.CollectMax
        ulong lo = keys.Min(), hi = keys.Max(), above = 0, prefix = 0;
        int cnt = keys.Length, kRem = k, passes = 0;
        if (k == 1) return (lo, 0);
        if (k == cnt) return (hi, 0);
        while (true)
        {
            passes++;
            var range = keys.Where(v => (v & above) == prefix).ToArray();
            if (cnt <= collectMax) return (range.OrderBy(v => v).ElementAt(kRem - 1), passes);
            int top = 63 - System.Numerics.BitOperations.LeadingZeroCount(lo ^ hi), shift = Math.Max(top - 7, 0);
            ulong mask = (1UL << (top - shift + 1)) - 1, binBase = lo & (top == 63 ? 0 : ~0UL << (top + 1));
            ulong mn = range.Min(), mx = range.Max();
            int below = 0, digit = 0;
            foreach (var g in range.GroupBy(v => (int)((v >> shift) & mask)).OrderBy(g => g.Key))
            {
                if (below + g.Count() >= kRem) { digit = g.Key; cnt = g.Count(); break; }
                below += g.Count();
            }
            kRem -= below;
            ulong binLo = binBase | ((ulong)digit << shift);
            if (shift == 0) return (binLo, passes);
            bool hasLo = (int)((mn >> shift) & mask) == digit, hasHi = (int)((mx >> shift) & mask) == digit;
            if (hasLo && kRem == 1) return (mn, passes);
            if (hasHi && kRem == cnt) return (mx, passes);
            lo = hasLo ? mn : binLo;
            hi = hasHi ? mx : binLo | ((1UL << shift) - 1);
            above = ~0UL << shift;
            prefix = binLo;
        }
    }

    // the kernel's (positive, negative) bounds per row for label distances ld (rows x hw) and top-k k
    static ulong[] TopKBounds(Device d, float[] ld, int[] anchors, int rows, int hw, int k)
    {
        using var scope = new TensorScope();
        var tl = Tensor.FromArray(d, ld, rows, hw);
        var ta = Tensor.FromArray(d, anchors, rows);
        using var block = d.Pool.Rent(16L * rows);
        var bounds = new Buf<ulong>(block, 0, 2L * rows);
        CcrSelect.LabelTopKBounds(d, bounds, tl.Data, ta.IntData, rows, hw, k);
        return bounds.ToArray();
    }
}
