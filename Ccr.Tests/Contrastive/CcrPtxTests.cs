using Ccr.Kernels;
using Ccr.Bench.Sass;
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
        string feature = Ptx(typeof(CcrDistances), "FeatureKernel");
        Assert.Contains("ld.shared.f32", feature);
        Assert.Contains("bar.sync", feature);
    }
}
