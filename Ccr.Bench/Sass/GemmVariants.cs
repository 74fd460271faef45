using Ccr.Kernels.Ops;
using System.Reflection;
using Ccr.Kernels;
using ILGPU.Runtime;

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

    /// <summary>The operand / output types of Convolution.Implicit.cs (forward, input gradient, weight gradient)
    /// and Gemm.cs (the plain batched GEMM).</summary>
    public static Use[] Uses() =>
    [
        new("conv.fwd", typeof(Convolution.WeightRows), typeof(Convolution.InputPatches), typeof(Convolution.OutputStore)),
        new("conv.dgrad", typeof(Convolution.WeightColumns), typeof(Convolution.GradOutTaps), typeof(Convolution.PlanesStore)),
        new("conv.wgrad", typeof(Convolution.GradOutRows), typeof(Convolution.InputPatchesT), typeof(Convolution.RowsStore)),
        // the plain GEMM in its most common layout (A row-major, B row-major: A k-fast, B^T mn-fast); the
        // other three transpose combinations differ only in which threads load which elements
        new("gemm", typeof(Gemm.StridedK), typeof(Gemm.StridedMN), typeof(Gemm.ScaledOutput)),
    ];

    /// <summary>Kernels outside <see cref="Family"/> whose main loop is math (so its mix and issue-bound ceiling
    /// mean something; the table leaves the loop columns of streaming kernels empty).</summary>
    public static readonly string[] OtherMathKernels = ["CcrDistances.FeatureKernel"];

    /// <summary>The arithmetic a kernel of the family computes in, from its name (Tf32..., Fp32...); "-" for
    /// one that serves both (the split-K sum).</summary>
    public static string Precision(MethodInfo kernel) =>
        kernel.Name.Contains("Tf32", StringComparison.OrdinalIgnoreCase) ? "tf32"
        : kernel.Name.Contains("Fp32", StringComparison.OrdinalIgnoreCase) ? "fp32" : "-";

    /// <summary>Whether tile shape <paramref name="shape"/> belongs to <paramref name="kernel"/> (the fp32 kernel's
    /// shapes are <see cref="TileShapes"/>' F..., the TF32 kernel's T...); true for a type that is no tile shape.</summary>
    public static bool Fits(MethodInfo kernel, Type shape)
    {
        if (!typeof(IGemmTileShape).IsAssignableFrom(shape)) return true;
        string p = Precision(kernel);
        return TileShapes.All().Any(x => x.Shape == shape && (p == "-" || (x.Precision == MathPrecision.Tf32) == (p == "tf32")));
    }

    /// <summary>The tile shape a closed family kernel was specialised for, or null.</summary>
    public static Type? ShapeOf(MethodInfo kernel) =>
        kernel.IsGenericMethod ? kernel.GetGenericArguments().FirstOrDefault(typeof(IGemmTileShape).IsAssignableFrom) : null;

    /// <summary>The launch bounds the product compiles a kernel with on a GPU (<see cref="ImplicitGemm.Bounds{TT}"/>):
    /// the GEMM kernels' per tile shape; none for the rest.</summary>
    public static KernelSpecialization Specialization(MethodInfo kernel)
    {
        var shape = ShapeOf(kernel);
        if (shape == null) return new KernelSpecialization();
        var bounds = typeof(ImplicitGemm).GetMethod(nameof(ImplicitGemm.LaunchBounds))!.MakeGenericMethod(shape);
        return (KernelSpecialization)bounds.Invoke(null, null)!;
    }

    /// <summary>Iterations of the loop inside the main loop per k-tile, when the k rows of a BK-deep stage are a
    /// loop of their own: the fp32 kernels step two k rows per iteration (BK / 2 trips); the TF32 kernel writes
    /// its two k-steps out (no inner loop). Null: unknown (the table then weights an inner loop once and marks
    /// it). <c>sass --inner-trips N</c> overrides it.</summary>
    public static int? InnerTrips(MethodInfo kernel) => Precision(kernel) switch
    {
        "fp32" => GemmTiles.BK / 2,
        "tf32" => 1,
        _ => null,
    };

    /// <summary>The launch <see cref="ImplicitGemm"/>.Run makes of a closed <paramref name="kernel"/>: its tile's
    /// threads per block and dynamic shared memory (<see cref="ImplicitGemm.SharedFloats"/> on a GPU). Null: not
    /// a main kernel (launched with the device's group size and no dynamic shared memory).</summary>
    public static List<LaunchShape>? Launches(MethodInfo kernel)
    {
        var shape = ShapeOf(kernel);
        if (shape == null) return null;
        var (precision, tile, _) = TileShapes.All().First(x => x.Shape == shape);
        int threads = TileShapes.Threads(tile, precision);
        return [new LaunchShape(tile.ToString(), threads, ImplicitGemm.SharedFloats(tile, precision, emulated: false) * 4)];
    }
}

/// <summary>One launch of a kernel: its name (a tile), threads per block, dynamic shared memory in bytes.</summary>
public sealed record LaunchShape(string Name, int Threads, int DynamicSmem);
