using Ccr.Kernels.Contrastive;
using Ccr.Kernels;
using Ccr.Bench.Sass;
using Xunit;

namespace Ccr.Tests.Contrastive;

/// <summary>
/// The CCR kernels compiled to PTX for sm_80 here, without a GPU (as Kernels/PtxTests does for the
/// other families): every one must compile (the select's generic key sources, warp shuffles and
/// leading-zero counts included), the backward and every float path must have no atomic
/// instruction at all, and the selects' atomics must be 32-bit adds on shared memory (counts:
/// their results do not depend on the order they run in; min and max are warp-aggregated).
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
                    Assert.All(atomics, a => Assert.Matches(@"^(atom|red)\.add\.shared\.(u32|s32)$", a));
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
    public void TheSelectCountsWithSharedIncrementsAndAggregatesMinMaxPerWarp()
    {
        foreach (var (t, k) in new[] { (typeof(CcrSelect), "SelectKernel"), (typeof(CcrAnchors), "SampleKernel") })
        {
            string ptx = Ptx(t, k);
            // histogram counts and slot counters: 32-bit shared adds, nothing else; no 64-bit atomic
            // min / max (ptxas makes each one a compare-and-swap loop per key) and no CAS at all
            Assert.Contains("red.add.shared.u32", ptx);
            Assert.DoesNotContain("atom.shared.cas", ptx);
            Assert.DoesNotContain("cas.b", ptx);
            Assert.DoesNotMatch(@"\b(atom|red)\.[a-z.]*(u64|s64|b64)\b", ptx);
            // (count, min, max) by warp shuffles: a butterfly step of GroupStats shuffles the count
            // and the two 64-bit keys as 2 x 32 bits (5), for each inlined GroupStats
            int shuffles = PtxCompiler.Count(ptx, "shfl.sync.bfly.b32");
            Assert.True(shuffles > 0 && shuffles % 5 == 0, $"{k}: {shuffles} butterfly shuffles");
            Assert.Contains("clz.b64", ptx);
            Assert.Contains("bar.sync", ptx);
        }
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
