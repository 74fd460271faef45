using ILGPU;

namespace Ccr.Kernels;

/// <summary>Launch shapes shared by every op family.</summary>
internal static partial class Launch
{
    /// <summary>A 1-D grid-stride launch over <paramref name="n"/> elements: enough groups to fill the
    /// device, never more than the work needs. Kernels loop with stride <see cref="Stride"/>.</summary>
    public static KernelConfig Grid(this Device d, long n)
    {
        long groups = Math.Clamp((n + d.GroupSize - 1) / d.GroupSize, 1, d.GridGroups);
        return new KernelConfig((int)groups, d.GroupSize);
    }

    /// <summary>The grid-stride step inside a kernel launched with <see cref="Grid"/>.</summary>
    public static int Stride => ILGPU.Grid.DimX * Group.DimX;

    /// <summary>Throws when two buffers that an op pairs element by element differ in length.</summary>
    public static void SameLength(string op, long a, long b, string what = "operands")
    {
        if (a != b) throw new ArgumentException($"{op}: {what} have {a} and {b} elements");
    }
}
