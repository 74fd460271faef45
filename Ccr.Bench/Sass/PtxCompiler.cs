using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;

namespace Ccr.Bench.Sass;

/// <summary>
/// ILGPU's PTX backend for sm_80 (the target it uses on Hopper too), without a GPU: what the PTX
/// tests and the <c>sass</c> command compile kernels with. Kernels are the families' private static
/// <c>...Kernel</c> methods. The PTX ISA version is the one ILGPU would write for a current driver
/// (8.0) unless given: CUDA 11.8's ptxas reads PTX up to ISA 7.8, so <c>sass</c> asks for that (the
/// code is the same, only the <c>.version</c> line differs).
/// </summary>
public sealed class PtxCompiler : IDisposable
{
    const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Static;
    readonly Context _ctx = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(Ccr.Kernels.Device.CudaOptimization));
    readonly PTXBackend _backend;

    public PtxCompiler() : this(CudaInstructionSet.ISA_80) { }

    public PtxCompiler(CudaInstructionSet isa) => _backend = new PTXBackend(_ctx, CudaArchitecture.SM_80, isa, null!);

    // the CUDA driver's library name, resolved before this class's context binds ILGPU's imports (a later
    // Device.Create in the same process would otherwise miss libcuda.so.1)
    static PtxCompiler() => Ccr.Kernels.CudaLibrary.Install();

    /// <summary>The PTX of <paramref name="kernel"/> (an explicitly grouped kernel, generic ones closed), with the
    /// launch bounds the product gives it on a GPU (<see cref="GemmVariants.Specialization"/>).</summary>
    public string Ptx(MethodInfo kernel) =>
        ((PTXCompiledKernel)_backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), GemmVariants.Specialization(kernel))).PTXAssembly;

    /// <summary>The PTX of the kernel <paramref name="name"/> of <paramref name="family"/>.</summary>
    public string Ptx(Type family, string name) => Ptx(Kernel(family, name));

    public static MethodInfo Kernel(Type family, string name) =>
        family.GetMethod(name, Private) ?? throw new InvalidOperationException($"{family.Name}.{name} not found (renamed?)");

    /// <summary>Every kernel of <paramref name="family"/>: its private static void methods named ...Kernel.</summary>
    public static IEnumerable<MethodInfo> KernelsOf(Type family) =>
        family.GetMethods(Private).Where(m => m.Name.EndsWith("Kernel") && m.ReturnType == typeof(void));

    /// <summary>The distinct atomic instructions in <paramref name="ptx"/>: <c>atom.*</c>, and
    /// <c>red.*</c> (an atomic whose result is unused).</summary>
    public static List<string> Atomics(string ptx) =>
        Regex.Matches(ptx, @"\b(atom|red)\.[a-z0-9.]+").Select(x => x.Value).Distinct().ToList();

    /// <summary>How often <paramref name="what"/> occurs in <paramref name="s"/> (overlaps not counted).</summary>
    public static int Count(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    public void Dispose()
    {
        _backend.Dispose();
        _ctx.Dispose();
    }
}
