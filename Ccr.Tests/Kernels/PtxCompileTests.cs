using Ccr.Kernels.Ops;
using Ccr.Bench.Sass;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The CUDA variant's GEMM kernels through ILGPU's PTX backend for sm_80 (what a GPU would JIT), without a
/// GPU: the CPU accelerator never compiles the <c>CudaAsm.IsSupported</c> branch to PTX, so this is the one
/// check in CI that the tensor-core path turns into PTX at all and carries the mma instruction docs/DESIGN.md
/// measured, and that no kernel of the family sums with atomics (the K split is an ordered pass).
/// (Sass/SassAssembleTests assembles that PTX with ptxas, when the CUDA tools are there.) PtxTests does the same for the
/// other families.
/// </summary>
public class PtxCompileTests
{
    const string Mma = "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32";

    [Fact]
    public void GemmKernelsCompileToPtxWithTheTensorCoreInstruction()
    {
        using var ptx = new PtxCompiler();
        Type[] gemm = [typeof(Gemm.StridedK), typeof(Gemm.StridedMN), typeof(Gemm.ScaledOutput)];

        // one warp, one instruction: exactly one mma, and the emulation's warp barriers sit in the branch ptxas drops
        var single = ptx.Ptx(PtxCompiler.Kernel(typeof(Ccr.Kernels.Ops.Mma), "SingleKernel"));
        Assert.Equal(1, PtxCompiler.Count(single, Mma));
        // the TF32 GEMM: 2 x 4 mma tiles per warp per k-step of 8, both k-steps of a stage written out
        var tf32 = ptx.Ptx(PtxCompiler.Kernel(typeof(ImplicitGemm), "Tf32Kernel").MakeGenericMethod([typeof(TileShapes.T64x64), .. gemm]));
        Assert.Equal(16, PtxCompiler.Count(tf32, Mma));
        Assert.Contains(".target sm_80", tf32);
        // fp32: no tensor cores, the shared-memory double buffer's barriers, no local-memory arrays
        var fp32 = ptx.Ptx(PtxCompiler.Kernel(typeof(ImplicitGemm), "Fp32Kernel").MakeGenericMethod([typeof(TileShapes.F64x64), .. gemm]));
        Assert.Equal(0, PtxCompiler.Count(fp32, "mma.sync"));
        Assert.True(PtxCompiler.Count(fp32, "bar.sync") >= 2);
        Assert.Equal(0, PtxCompiler.Count(fp32, ".local"));
        // operand tiles move through shared memory 128 bits at a time (the 4x4 micro tiles' reads)
        Assert.True(PtxCompiler.Count(fp32, "ld.shared.v4.f32") >= 3, "fp32 GEMM: no 128-bit shared loads");
        var sum = ptx.Ptx(PtxCompiler.Kernel(typeof(ImplicitGemm), "SplitSumKernel").MakeGenericMethod(typeof(Gemm.ScaledOutput)));
        foreach (var (name, code) in new[] { ("Tf32Kernel", tf32), ("Fp32Kernel", fp32), ("SplitSumKernel", sum) })
            Assert.True(PtxCompiler.Atomics(code).Count == 0, $"ImplicitGemm.{name}: PTX has an atomic instruction (a non-deterministic sum)");
    }
}
