using Ccr.Kernels.Contrastive;
using Ccr.Kernels.Ops;
using System.Reflection;
using Ccr.Bench.Sass;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The CUDA variants compiled to PTX here, without a GPU (ILGPU's PTX backend for sm_80, the target
/// it uses on Hopper too): every kernel of the reduction, batch-norm, elementwise, resize, loss and
/// shape-op families must compile, and the PTX itself is checked for what the CPU accelerator
/// cannot show: no atomic instruction in any of them (deterministic backward passes and reductions), warp
/// shuffles in the block reduction, and the streaming kernels' four-way unrolled loops issuing all
/// their loads before their first store.
/// </summary>
public sealed class PtxTests : IDisposable
{
    readonly PtxCompiler _ptx = new();

    public void Dispose() => _ptx.Dispose();

    static readonly Type[] Families =
        [typeof(BlockReduce), typeof(Reductions), typeof(BatchNorm), typeof(Elementwise), typeof(Resize), typeof(Losses), typeof(ShapeOps)];

    string Ptx(MethodInfo m) => _ptx.Ptx(m);

    [Fact]
    public void EveryKernelCompilesForTheGpuWithoutAtomics()
    {
        var names = new List<string>();
        foreach (var t in Families)
            foreach (var m in PtxCompiler.KernelsOf(t))
            {
                string ptx = Ptx(m);
                Assert.Contains(".entry", ptx);
                var atomics = PtxCompiler.Atomics(ptx);
                Assert.True(atomics.Count == 0, $"{t.Name}.{m.Name}: PTX has atomic instructions {string.Join(", ", atomics)} (a non-deterministic sum)");
                names.Add($"{t.Name}.{m.Name}");
            }
        var triplet = typeof(CcrTriplet).GetMethod("ReduceKernel", BindingFlags.NonPublic | BindingFlags.Static)!;
        Assert.Empty(PtxCompiler.Atomics(Ptx(triplet))); // CcrTriplet.ReduceKernel
        // the families' kernels are all there (a rename must not silently drop one from this test)
        foreach (var k in new[] { "BatchNorm.StatsPartialKernel", "BatchNorm.ForwardKernel", "BatchNorm.BackwardPartialKernel",
                                  "BatchNorm.BackwardDxKernel", "Resize.BilinearBackwardKernel", "Resize.NearestBackwardKernel",
                                  "Reductions.SumPerChannelPartialKernel", "Reductions.SumPartsKernel", "BlockReduce.ProbeKernel" })
            Assert.Contains(k, names);
    }

    [Fact]
    public void BlockReduceUsesWarpShuffles()
    {
        string ptx = Ptx(typeof(BlockReduce).GetMethod("ProbeKernel", BindingFlags.NonPublic | BindingFlags.Static)!);
        Assert.Contains("shfl.sync.bfly", ptx);
        Assert.Contains("bar.sync", ptx);
    }

    [Theory]
    [InlineData(typeof(Elementwise), "BinaryKernel", 8)]
    [InlineData(typeof(Elementwise), "ReluKernel", 4)]
    [InlineData(typeof(Elementwise), "ReluBackwardKernel", 8)]
    public void UnrolledLoopsLoadEverythingBeforeTheFirstStore(Type family, string kernel, int loads)
    {
        string ptx = Ptx(family.GetMethod(kernel, BindingFlags.NonPublic | BindingFlags.Static)!);
        int firstStore = ptx.IndexOf("st.global", StringComparison.Ordinal);
        Assert.True(firstStore > 0, $"{kernel}: no global store");
        int before = PtxCompiler.Count(ptx[..firstStore], "ld.global");
        Assert.True(before >= loads, $"{kernel}: {before} global loads before the first store, expected {loads}");
    }
}
