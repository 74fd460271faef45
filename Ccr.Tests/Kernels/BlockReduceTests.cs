using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The group reduction every kernel uses, on CPU-accelerator devices of several warp shapes
/// (32-lane warps as on a GPU, and the small warps of the CPU devices): every thread of every group
/// must get back the same bits, equal to the float sum in the documented order (butterfly inside
/// each warp, warps in order) and close to the float64 sum.
/// </summary>
public class BlockReduceTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 32, 1, 1 },  // one 32-lane warp: shuffles only, no shared array
        { 32, 4, 1 },  // 128-thread groups of 32-lane warps
        { 4, 4, 2 },   // small warps, several multiprocessors
        { 2, 1, 2 },   // the CPU variant's device shape
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryThreadGetsTheOrderedSum(int warp, int warpsPerGroup, int mps)
    {
        using var d = Device.CreateCpu(warp, warpsPerGroup, mps, KernelVariant.Cuda);
        Assert.Equal(warp, d.Accelerator.WarpSize);
        var r = Rand.New(warp * 100 + warpsPerGroup);
        for (int group = warp; group <= warp * warpsPerGroup; group += warp)
        {
            const int groups = 3;
            // Mixed magnitudes, so a different order of additions would change the low bits.
            var v = Rand.Floats(r, groups * group);
            for (int i = 0; i < v.Length; i += 3) v[i] *= 1000f;
            foreach (int mode in new[] { 1, 2, 4 })
            {
                using var scope = new TensorScope();
                var tv = Tensor.FromArray(d, v, v.Length);
                var outp = Tensor.Empty(d, v.Length * mode);
                BlockReduce.Probe(d, outp.Data, tv.Data, groups, group, mode);
                var got = outp.ToArray();
                for (int g = 0; g < groups; g++)
                {
                    var part = v.AsSpan(g * group, group);
                    float sum = BlockReduce.ReferenceOrder(part, warp);
                    float half = BlockReduce.ReferenceOrder(part.ToArray().Select(x => x + 0.5f).ToArray(), warp);
                    double exact = part.ToArray().Sum(x => (double)x);
                    Tol.Close(exact, sum, 1e-6 * group * 1000, 1e-6, $"ordered sum vs float64, group {group}");
                    for (int t = 0; t < group; t++)
                    {
                        int i = (g * group + t) * mode;
                        string at = $"warp {warp}, group {group}, mode {mode}, group #{g}, thread {t}";
                        Assert.True(sum == got[i], $"{at}: sum {got[i]:R}, expected {sum:R}");
                        if (mode == 2) Assert.True(half == got[i + 1], $"{at}: second sum {got[i + 1]:R}, expected {half:R}");
                        if (mode == 4)
                        {
                            Assert.True(group == got[i + 1], $"{at}: count {got[i + 1]}, expected {group}");
                            Assert.True(half == got[i + 2], $"{at}: third sum {got[i + 2]:R}, expected {half:R}");
                            Assert.True(-sum == got[i + 3], $"{at}: negated sum {got[i + 3]:R}, expected {-sum:R}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void ReferenceOrderIsTheButterflyNotASequentialSum()
    {
        // 1e8 + 1 - 1e8 + 1 summed left to right in float gives 1; the butterfly pairs (1e8, -1e8)
        // and (1, 1) first and gives 2. The model must be the kernel's order, not a plain loop.
        float[] v = [1e8f, 1f, -1e8f, 1f];
        Assert.Equal(2f, BlockReduce.ReferenceOrder(v, 4));
        Assert.Equal(0f, BlockReduce.ReferenceOrder(v, 2)); // warp sums 1e8 + 1 = 1e8 and -1e8 + 1 = -1e8
    }

    [Fact]
    public void GroupsThatBreakTheRequirementsAreRejectedOnTheHost()
    {
        var d = Devices.CudaOnCpu; // 32-lane warps, 256-thread groups
        var e = Assert.Throws<InvalidOperationException>(() => BlockReduce.CheckGroup(d, 48, "probe"));
        Assert.Contains("not a multiple of the warp size 32", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => BlockReduce.CheckGroup(d, 512, "probe"));
        Assert.Contains("exceeds the device's 256", e.Message);
        using var scope = new TensorScope();
        var v = Tensor.Zeros(d, 64);
        var o = Tensor.Zeros(d, 64);
        var e2 = Assert.Throws<ArgumentException>(() => BlockReduce.Probe(d, o.Data, v.Data, 2, 32, 3));
        Assert.Contains("mode must be 1, 2 or 4", e2.Message);
    }

    [Fact]
    public void GroupForUsesNoMoreWarpsThanTheWork()
    {
        var d = Devices.CudaOnCpu;
        Assert.Equal(32, BlockReduce.GroupFor(d, 1));
        Assert.Equal(64, BlockReduce.GroupFor(d, 35));
        Assert.Equal(256, BlockReduce.GroupFor(d, 1_000_000));
    }
}
