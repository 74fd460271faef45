using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>Two floats summed together by <see cref="BlockReduce.Sum2"/>.</summary>
internal struct Float2
{
    public float X, Y;
    public Float2(float x, float y) { X = x; Y = y; }
}

/// <summary>Four floats summed together by <see cref="BlockReduce.Sum4"/>.</summary>
internal struct Float4
{
    public float X, Y, Z, W;
    public Float4(float x, float y, float z, float w) { X = x; Y = y; Z = z; W = w; }
}

/// <summary>
/// The one group reduction every kernel calls (the model is CUB's BlockReduce and PyTorch's
/// cuda/block_reduce.cuh). Inside a kernel, every thread of the group passes its value and gets the
/// group's sum back:
/// 1. each warp sums its lanes by an XOR butterfly of <see cref="Warp.ShuffleXor{T}(T, int)"/>
///    (log2(warp) steps; every lane ends with the same bits, as a + b == b + a in IEEE);
/// 2. lane 0 of each warp writes its warp's sum into a small shared array, one barrier;
/// 3. every thread adds the warp sums in warp order (broadcast reads), one closing barrier so the
///    shared array may be reused by the next call.
/// The order of additions depends only on the group size and the warp size, never on timing, so a
/// launch gives the same bits every time (determinism of everything built on it).
/// Requirements, checked on the host by <see cref="CheckGroup"/> before a launch (an assertion in a
/// CPU-accelerator kernel kills the process): the group is a multiple of the warp size, the warp
/// size is a power of two, and there are at most <see cref="MaxWarps"/> warps. With one warp the
/// shared array and both barriers are skipped. Every thread of the group must call it (barriers).
/// </summary>
internal static class BlockReduce
{
    /// <summary>Warps per group the shared array holds: 64 (a 1024-thread group of 16-lane warps,
    /// or a 256-thread group of 4-lane CPU warps).</summary>
    public const int MaxWarps = 64;

    // ---------------------------------------------------------------- in-kernel reductions

    /// <summary>Sum over the lanes of the calling warp, returned to every lane.</summary>
    public static float WarpSum(float v)
    {
        for (int m = Warp.WarpSize / 2; m > 0; m >>= 1) v += Warp.ShuffleXor(v, m);
        return v;
    }

    /// <summary>Sum of <paramref name="v"/> over the group, returned to every thread.</summary>
    public static float Sum(float v)
    {
        var slots = SharedMemory.Allocate<float>(MaxWarps);
        v = WarpSum(v);
        int warps = Group.DimX / Warp.WarpSize;
        if (warps == 1) return v;
        if (Warp.IsFirstLane) slots[Warp.WarpIdx] = v;
        Group.Barrier();
        float r = slots[0];
        for (int w = 1; w < warps; w++) r += slots[w];
        Group.Barrier();
        return r;
    }

    /// <summary>Two sums at once (the same two barriers).</summary>
    public static Float2 Sum2(float a, float b)
    {
        var sa = SharedMemory.Allocate<float>(MaxWarps);
        var sb = SharedMemory.Allocate<float>(MaxWarps);
        a = WarpSum(a);
        b = WarpSum(b);
        int warps = Group.DimX / Warp.WarpSize;
        if (warps == 1) return new Float2(a, b);
        if (Warp.IsFirstLane) { sa[Warp.WarpIdx] = a; sb[Warp.WarpIdx] = b; }
        Group.Barrier();
        float ra = sa[0], rb = sb[0];
        for (int w = 1; w < warps; w++) { ra += sa[w]; rb += sb[w]; }
        Group.Barrier();
        return new Float2(ra, rb);
    }

    /// <summary>Four sums at once (the same two barriers).</summary>
    public static Float4 Sum4(Float4 v)
    {
        var sx = SharedMemory.Allocate<float>(MaxWarps);
        var sy = SharedMemory.Allocate<float>(MaxWarps);
        var sz = SharedMemory.Allocate<float>(MaxWarps);
        var sw = SharedMemory.Allocate<float>(MaxWarps);
        v.X = WarpSum(v.X); v.Y = WarpSum(v.Y); v.Z = WarpSum(v.Z); v.W = WarpSum(v.W);
        int warps = Group.DimX / Warp.WarpSize;
        if (warps == 1) return v;
        int wi = Warp.WarpIdx;
        if (Warp.IsFirstLane) { sx[wi] = v.X; sy[wi] = v.Y; sz[wi] = v.Z; sw[wi] = v.W; }
        Group.Barrier();
        var r = new Float4(sx[0], sy[0], sz[0], sw[0]);
        for (int w = 1; w < warps; w++) { r.X += sx[w]; r.Y += sy[w]; r.Z += sz[w]; r.W += sw[w]; }
        Group.Barrier();
        return r;
    }

    // ---------------------------------------------------------------- host side

    /// <summary>Threads per group for a reduction over <paramref name="work"/> elements per group:
    /// <see cref="Device.GroupSize"/>, but no more warps than the work fills (a 35-element channel
    /// needs 64 threads, not 256: barriers on the CPU accelerator cost per thread).</summary>
    public static int GroupFor(Device d, long work)
    {
        int warp = Math.Max(1, d.Accelerator.WarpSize);
        long g = (Math.Max(1, work) + warp - 1) / warp * warp;
        return (int)Math.Min(d.GroupSize, g);
    }

    /// <summary>Throws (naming <paramref name="op"/>) unless a group of <paramref name="group"/>
    /// threads meets the requirements of the reductions on this device.</summary>
    public static void CheckGroup(Device d, int group, string op)
    {
        int warp = d.Accelerator.WarpSize;
        if (warp <= 0 || (warp & (warp - 1)) != 0)
            throw new InvalidOperationException($"{op}: the group reduction needs a power-of-two warp size, the device has {warp}");
        if (group <= 0 || group % warp != 0)
            throw new InvalidOperationException($"{op}: group of {group} threads is not a multiple of the warp size {warp}");
        if (group / warp > MaxWarps)
            throw new InvalidOperationException($"{op}: group of {group} threads has {group / warp} warps, the reduction holds {MaxWarps}");
        if (group > d.Accelerator.MaxNumThreadsPerGroup)
            throw new InvalidOperationException($"{op}: group of {group} threads exceeds the device's {d.Accelerator.MaxNumThreadsPerGroup}");
    }

    // ---------------------------------------------------------------- probe (tests and verify)

    // Group g reduces values[g*G .. g*G+G) and every thread writes what it got back:
    // mode 1: Sum -> out[i]; mode 2: Sum2 of (v, v + 0.5) -> out[2i], out[2i+1];
    // mode 4: Sum4 of (v, 1, v + 0.5, -v) -> out[4i..4i+3]. (No products: a GPU compiler may fuse a
    // product into the first butterfly add, which would change the bits the tests expect.)
    static void ProbeKernel(ArrayView<float> outAll, ArrayView<float> values, int mode)
    {
        int i = ILGPU.Grid.IdxX * Group.DimX + Group.IdxX;
        float v = values[i];
        if (mode == 1) outAll[i] = Sum(v);
        else if (mode == 2)
        {
            var r = Sum2(v, v + 0.5f);
            outAll[2 * i] = r.X; outAll[2 * i + 1] = r.Y;
        }
        else
        {
            var r = Sum4(new Float4(v, 1f, v + 0.5f, -v));
            outAll[4 * i] = r.X; outAll[4 * i + 1] = r.Y; outAll[4 * i + 2] = r.Z; outAll[4 * i + 3] = r.W;
        }
    }

    sealed class Kernels(Device d)
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> Probe =
            d.Load<ArrayView<float>, ArrayView<float>, int>(ProbeKernel);
    }

    /// <summary>Runs <paramref name="groups"/> groups of <paramref name="group"/> threads; group g
    /// reduces <c>values[g*group ..]</c> with <see cref="Sum"/> (<paramref name="mode"/> 1),
    /// <see cref="Sum2"/> (2) or <see cref="Sum4"/> (4), and every thread writes the result it
    /// received, so tests see each thread's copy.   out (groups*group*mode), values (groups*group)</summary>
    public static void Probe(Device d, Buf<float> output, Buf<float> values, int groups, int group, int mode)
    {
        if (mode is not (1 or 2 or 4)) throw new ArgumentException($"BlockReduce.Probe: mode must be 1, 2 or 4, got {mode}");
        CheckGroup(d, group, "BlockReduce.Probe");
        if (groups <= 0 || values.Length != (long)groups * group || output.Length != values.Length * mode)
            throw new ArgumentException($"BlockReduce.Probe: {values.Length} values and {output.Length} outputs for {groups} groups of {group} (mode {mode})");
        d.Kernels(static d => new Kernels(d)).Probe(new KernelConfig(groups, group), output.View, values.View, mode);
    }

    /// <summary>The exact float result of <see cref="Sum"/> on one group's values: the butterfly
    /// inside each warp, then the warp sums in order (a bit-exact model of the kernel).</summary>
    public static float ReferenceOrder(ReadOnlySpan<float> v, int warp)
    {
        int warps = v.Length / warp;
        float r = 0f;
        var lanes = new float[warp];
        for (int w = 0; w < warps; w++)
        {
            v.Slice(w * warp, warp).CopyTo(lanes);
            for (int m = warp / 2; m > 0; m >>= 1)
            {
                var next = new float[warp];
                for (int l = 0; l < warp; l++) next[l] = lanes[l] + lanes[l ^ m];
                lanes = next;
            }
            r = w == 0 ? lanes[0] : r + lanes[0];
        }
        return r;
    }
}
