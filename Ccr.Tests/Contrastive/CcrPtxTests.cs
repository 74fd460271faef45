using Ccr.Kernels;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>
/// The CCR kernels compiled to PTX for sm_80 here, without a GPU (as Kernels/PtxTests does for the
/// other families): every one must compile (the select's generic key sources, 64-bit shared
/// atomics and leading-zero counts included), the backward and every float path must have no
/// atomic instruction at all, and the selects' atomics must be integer ones on shared memory
/// (counts, min and max: their results do not depend on the order they run in).
/// </summary>
public sealed class CcrPtxTests : IDisposable
{
    readonly PtxCompiler _ptx = new();

    public void Dispose() => _ptx.Dispose();

    static readonly Type[] Families = [typeof(CcrDistances), typeof(CcrSelect), typeof(CcrTriplet), typeof(CcrAnchors), typeof(CcrLabels)];

    string Ptx(Type t, string kernel) => _ptx.Ptx(t, kernel);

    [Fact]
    public void EveryCcrKernelCompilesAndOnlySelectsUseSharedIntegerAtomics()
    {
        var names = new List<string>();
        foreach (var t in Families)
            foreach (var m in PtxCompiler.KernelsOf(t))
            {
                string ptx = Ptx(t, m.Name), name = $"{t.Name}.{m.Name}";
                Assert.Contains(".entry", ptx);
                names.Add(name);
                var atomics = PtxCompiler.Atomics(ptx);
                if (name is "CcrSelect.SelectKernel" or "CcrAnchors.SampleKernel")
                    Assert.All(atomics, a => Assert.Matches(@"^(atom|red)\.(add|min|max)\.shared\.(u32|s32|u64)$", a));
                else
                    Assert.True(atomics.Count == 0, $"{name}: PTX has atomic instructions {string.Join(", ", atomics)}");
            }
        foreach (var k in new[] { "CcrDistances.FeatureKernel", "CcrDistances.LabelKernel", "CcrSelect.SelectKernel", "CcrTriplet.ForwardKernel",
                                  "CcrTriplet.ReduceKernel", "CcrTriplet.LinkKernel", "CcrTriplet.GatherKernel", "CcrAnchors.SampleKernel",
                                  "CcrAnchors.AdvanceKernel", "CcrLabels.PrepareKernel" })
            Assert.Contains(k, names);
    }

    [Fact]
    public void TheGatherCannotBeContractedSoItsOrderContractHoldsOnTheGpu()
    {
        // ptxas may fuse a mul.f32 feeding an add.f32 into an fma (no .rn on either); the gather has
        // no such pair (every product feeds a division, every sum adds quotients or differences) and
        // divides with div.rn: so its float results are the host replay's on a GPU too, which is
        // what verify's ccr.backward.entry_order row checks there
        string ptx = Ptx(typeof(CcrTriplet), "GatherKernel");
        Assert.DoesNotContain("div.approx", ptx);
        Assert.DoesNotContain("div.full", ptx);
        Assert.Contains("div.rn.f32", ptx);
        Assert.DoesNotContain("fma.", ptx);
    }

    [Fact]
    public void TheSelectUsesItsHistogramsAndTheFeatureKernelItsTiles()
    {
        string select = Ptx(typeof(CcrSelect), "SelectKernel");
        Assert.Contains("red.min.shared.u64", select);
        Assert.Contains("clz.b64", select);
        Assert.Contains("bar.sync", select);
    }

    [Fact]
    public void TheDistanceKernelsDivideOncePerTileOrRowAndTheFeatureLoopReadsFloat4s()
    {
        // the feature kernel's channel loop (two channels an iteration) reads shared memory only as
        // float4s: 3 a channel (4 anchors, 2 x 4 pixels) for 32 (p - a)^2; staging stores scalars
        string feature = Ptx(typeof(CcrDistances), "FeatureKernel");
        Assert.Equal(6, PtxCompiler.Count(feature, "ld.shared.v4.f32"));
        Assert.Equal(6, PtxCompiler.Count(feature, "ld.shared."));
        Assert.Contains("bar.sync", feature);
        // integer divisions: the tile's coordinates (3, once per tile) and the label kernel's row
        // (2, once per row); none per element (they were e / HW, e % HW, row / A per element)
        Assert.Equal(3, Divisions(feature));
        Assert.Equal(2, Divisions(Ptx(typeof(CcrDistances), "LabelKernel")));
    }

    static int Divisions(string ptx) => PtxCompiler.Count(ptx, "div.s32") + PtxCompiler.Count(ptx, "div.u32") +
                                        PtxCompiler.Count(ptx, "rem.s32") + PtxCompiler.Count(ptx, "rem.u32") +
                                        PtxCompiler.Count(ptx, "div.s64") + PtxCompiler.Count(ptx, "rem.s64") +
                                        PtxCompiler.Count(ptx, "div.u64") + PtxCompiler.Count(ptx, "rem.u64");
}
