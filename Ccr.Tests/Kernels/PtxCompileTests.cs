using System.Reflection;
using Ccr.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The CUDA variant's GEMM kernels through ILGPU's PTX backend for sm_80 (what a GPU would JIT), without a
/// GPU: the CPU accelerator never compiles the <c>CudaAsm.IsSupported</c> branch to PTX, so this is the one
/// check in CI that the tensor-core path turns into PTX at all and carries the mma instruction DESIGN.md
/// measured, and that no kernel of the family sums with atomics (the K split is an ordered pass).
/// (Assembling that PTX, ptxas, still needs the driver of a GPU machine.) PtxTests does the same for the
/// other families.
/// </summary>
public class PtxCompileTests
{
    const string Mma = "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32";

    static string Ptx(PTXBackend backend, MethodInfo kernel) =>
        ((PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), new KernelSpecialization())).PTXAssembly;

    static int Count(string s, string w)
    {
        int c = 0;
        for (int i = s.IndexOf(w, StringComparison.Ordinal); i >= 0; i = s.IndexOf(w, i + w.Length, StringComparison.Ordinal)) c++;
        return c;
    }

    [Fact]
    public void GemmKernelsCompileToPtxWithTheTensorCoreInstruction()
    {
        using var ctx = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var backend = new PTXBackend(ctx, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var flags = BindingFlags.NonPublic | BindingFlags.Static;
        MethodInfo Kernel(Type owner, string name) =>
            owner.GetMethod(name, flags) ?? throw new InvalidOperationException($"{owner.Name}.{name} not found (renamed?)");
        Type[] gemm = [typeof(Gemm.StridedOperand), typeof(Gemm.StridedOperand), typeof(Gemm.ScaledOutput)];

        // one warp, one instruction: exactly one mma, and the emulation's warp barriers sit in the branch ptxas drops
        var single = Ptx(backend, Kernel(typeof(Ccr.Kernels.Mma), "SingleKernel"));
        Assert.Equal(1, Count(single, Mma));
        // the TF32 GEMM: 2 x 4 mma tiles per warp per k-step of 8, written out once
        var tf32 = Ptx(backend, Kernel(typeof(ImplicitGemm), "Tf32Kernel").MakeGenericMethod(gemm));
        Assert.Equal(8, Count(tf32, Mma));
        Assert.Contains(".target sm_80", tf32);
        // fp32: no tensor cores, the shared-memory double buffer's barriers, no local-memory arrays
        var fp32 = Ptx(backend, Kernel(typeof(ImplicitGemm), "Fp32Kernel").MakeGenericMethod(gemm));
        Assert.Equal(0, Count(fp32, "mma.sync"));
        Assert.True(Count(fp32, "bar.sync") >= 2);
        Assert.Equal(0, Count(fp32, ".local"));
        var sum = Ptx(backend, Kernel(typeof(ImplicitGemm), "SplitSumKernel").MakeGenericMethod(typeof(Gemm.ScaledOutput)));
        foreach (var (name, ptx) in new[] { ("Tf32Kernel", tf32), ("Fp32Kernel", fp32), ("SplitSumKernel", sum) })
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(ptx, @"\b(atom|red)\."), $"ImplicitGemm.{name}: PTX has an atomic instruction (a non-deterministic sum)");
    }
}
