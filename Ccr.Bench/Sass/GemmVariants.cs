using System.Reflection;
using Ccr.Kernels;

namespace Ccr.Bench.Sass;

/// <summary>
/// What the product launches the generic implicit-GEMM kernels with: THE place to update when their
/// signatures change. <see cref="KernelCatalogue"/> closes every generic kernel of <see cref="Family"/> from
/// <see cref="Uses"/>: a type parameter constrained to <see cref="IGemmOperand"/> takes the use's A (the first
/// such parameter) and B (the second), one constrained to <see cref="IGemmOutput"/> its output; any other
/// type parameter (say a tile shape <c>TTile : struct, IGemmTileShape</c>) takes, in turn, every struct of
/// Ccr.Kernels that satisfies its constraints. A kernel that cannot be closed so is an error naming it.
/// </summary>
public static class GemmVariants
{
    /// <summary>One way the product calls the GEMM: the operand gathers of A (M x K) and B^T (N x K) and the output.</summary>
    public sealed record Use(string Name, Type A, Type B, Type Output);

    /// <summary>The family whose generic kernels are closed over <see cref="Uses"/>.</summary>
    public static readonly Type Family = typeof(ImplicitGemm);

    /// <summary>The operand / output types of Conv2d.Implicit.cs (forward, input gradient, weight gradient)
    /// and Gemm.cs (the plain batched GEMM).</summary>
    public static Use[] Uses() =>
    [
        new("conv.fwd", typeof(Conv2d.WeightRows), typeof(Conv2d.InputPatches), typeof(Conv2d.OutputStore)),
        new("conv.dgrad", typeof(Conv2d.WeightColumns), typeof(Conv2d.GradOutTaps), typeof(Conv2d.PlanesStore)),
        new("conv.wgrad", typeof(Conv2d.GradOutRows), typeof(Conv2d.InputPatchesT), typeof(Conv2d.RowsStore)),
        new("gemm", typeof(Gemm.StridedOperand), typeof(Gemm.StridedOperand), typeof(Gemm.ScaledOutput)),
    ];

    /// <summary>Kernels outside <see cref="Family"/> whose main loop is math (so its mix and issue-bound ceiling
    /// mean something; the table leaves the loop columns of streaming kernels empty).</summary>
    public static readonly string[] OtherMathKernels = ["CcrDistances.FeatureKernel"];

    /// <summary>The arithmetic a kernel of the family computes in, from its name (Tf32..., Fp32...); "-" for
    /// one that serves both (the split-K sum).</summary>
    public static string Precision(MethodInfo kernel) =>
        kernel.Name.Contains("Tf32", StringComparison.OrdinalIgnoreCase) ? "tf32"
        : kernel.Name.Contains("Fp32", StringComparison.OrdinalIgnoreCase) ? "fp32" : "-";

    /// <summary>Iterations of the loop inside the main loop per k-tile, when the k-steps within a BK-deep stage
    /// are a loop of their own (ptxas did not unroll them): fp32 kernels step one k at a time (BK trips), the
    /// TF32 kernel one mma.m16n8k8 (BK / 8). Null: unknown (the table then weights an inner loop once and
    /// marks it). <c>sass --inner-trips N</c> overrides it.</summary>
    public static int? InnerTrips(MethodInfo kernel) => Precision(kernel) switch
    {
        "fp32" => GemmTiles.BK,
        "tf32" => GemmTiles.BK / 8,
        _ => null,
    };

    /// <summary>The launches <see cref="ImplicitGemm"/>.Run makes of <paramref name="kernel"/> (a mirror of its
    /// arithmetic): per tile of the precision, threads per block and dynamic shared memory (two stages of the A
    /// and B tiles, padded as the launcher pads them, in the larger of its two layouts). Null: not a main kernel
    /// (launched with the device's group size and no dynamic shared memory).</summary>
    public static List<LaunchShape>? Launches(MethodInfo kernel)
    {
        const int bk = GemmTiles.BK;
        string p = Precision(kernel);
        if (p == "-") return null;
        bool tf32 = p == "tf32", wide = kernel.Name.Contains("Wide");
        int padK = tf32 ? 4 : 1, padMN = tf32 ? 8 : 0;
        var list = new List<LaunchShape>();
        foreach (var t in GemmTiles.For(tf32 ? MathPrecision.Tf32 : MathPrecision.Fp32))
        {
            if (!tf32 && wide != (t.BM == 128 && t.BN == 128)) continue; // 128x128 is the wide kernel's tile
            int threads = tf32 ? t.BM / 32 * (t.BN / 32) * 32 : 256;
            int tileA = Math.Max(t.BM * (bk + padK), bk * (t.BM + padMN)), tileB = Math.Max(t.BN * (bk + padK), bk * (t.BN + padMN));
            list.Add(new LaunchShape(t.ToString(), threads, 2 * (tileA + tileB) * 4));
        }
        return list;
    }
}

/// <summary>One launch of a kernel: its name (a tile), threads per block, dynamic shared memory in bytes.</summary>
public sealed record LaunchShape(string Name, int Threads, int DynamicSmem);
