using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Sums: all elements to one value (two-stage on the CUDA variant, double accumulation on the CPU
/// variant), and per channel over (N, H, W) for bias gradients. Outputs are written (=).
/// CUDA variant: one group per channel / per partial, shared-memory tree reduction
/// (<see cref="GroupSum"/>, also used by batch norm). CPU variant: host code on spans.
/// </summary>
public static partial class Reductions
{
    /// <summary>Shared-memory tree size: groups are at most 256 threads (Device.GroupSize).</summary>
    public const int MaxGroup = 256;

    /// <summary>Sum of <paramref name="v"/> over the threads of a group, returned to every thread.
    /// <paramref name="sh"/> is a shared array of at least Group.DimX floats; it may be reused
    /// right after the call (the closing barrier protects it). Works for any group size.
    /// Three barriers instead of a log2(group) tree: barriers dominate on the CPU accelerator
    /// (tens of ms each at 256 threads), and on a GPU 8 + 32 shared loads per thread are cheap.</summary>
    public static float GroupSum(ArrayView<float> sh, float v)
    {
        int t = Group.IdxX, n = Group.DimX;
        sh[t] = v;
        Group.Barrier();
        // Lanes t < 32 fold the entries congruent to t mod 32 into sh[t] (disjoint sets: no race).
        if (t < 32)
        {
            float a = 0f;
            for (int k = t; k < n; k += 32) a += sh[k];
            sh[t] = a;
        }
        Group.Barrier();
        float r = 0f;
        int m = n < 32 ? n : 32;
        for (int k = 0; k < m; k++) r += sh[k];
        Group.Barrier();
        return r;
    }

    /// <summary>Two floats, returned by <see cref="GroupSum2"/> inside kernels.</summary>
    public struct Float2 { public float X, Y; }

    /// <summary>Two sums at once (same three barriers): <paramref name="sh"/> and
    /// <paramref name="sh2"/> are shared arrays of at least Group.DimX floats each.</summary>
    public static Float2 GroupSum2(ArrayView<float> sh, ArrayView<float> sh2, float v, float w)
    {
        int t = Group.IdxX, n = Group.DimX;
        sh[t] = v; sh2[t] = w;
        Group.Barrier();
        if (t < 32)
        {
            float a = 0f, b = 0f;
            for (int k = t; k < n; k += 32) { a += sh[k]; b += sh2[k]; }
            sh[t] = a; sh2[t] = b;
        }
        Group.Barrier();
        var r = new Float2();
        int m = n < 32 ? n : 32;
        for (int k = 0; k < m; k++) { r.X += sh[k]; r.Y += sh2[k]; }
        Group.Barrier();
        return r;
    }

    /// <summary>Threads per group for a reduction over <paramref name="work"/> elements per group:
    /// <see cref="Device.GroupSize"/>, but no more warps than the work fills (a 35-element channel
    /// needs 64 threads, not 256; barriers on the CPU accelerator cost per thread).</summary>
    public static int ReduceGroup(Device d, long work)
    {
        int warp = Math.Max(1, d.Accelerator.WarpSize);
        long g = (Math.Max(1, work) + warp - 1) / warp * warp;
        return (int)Math.Min(d.GroupSize, g);
    }

    // ---------------------------------------------------------------- kernels

    // Stage 1 (and stage 2 with one group): each group sums a grid-stride share of x into partial[group].
    static void SumStageKernel(ArrayView<float> partial, ArrayView<float> x, float scale)
    {
        var sh = SharedMemory.Allocate<float>(MaxGroup);
        float acc = 0f;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < x.IntLength; i += Launch.Stride) acc += x[i];
        float s = GroupSum(sh, acc);
        if (Group.IdxX == 0) partial[ILGPU.Grid.IdxX] = s * scale;
    }

    // One group per channel: dst[c] = sum over n, i of x[n, c, i].   x (N, C, HW)
    static void SumPerChannelKernel(ArrayView<float> dst, ArrayView<float> x, int n, int c, int hw)
    {
        var sh = SharedMemory.Allocate<float>(MaxGroup);
        int ch = ILGPU.Grid.IdxX;
        float acc = 0f;
        for (int j = Group.IdxX; j < n * hw; j += Group.DimX)
        {
            int b = j / hw, i = j - b * hw;
            acc += x[(b * c + ch) * hw + i];
        }
        float s = GroupSum(sh, acc);
        if (Group.IdxX == 0) dst[ch] = s;
    }

    // y[i] = scale * s[0]: the backward of a sum to a scalar, without reading s back to the host.
    static void BroadcastKernel(ArrayView<float> y, ArrayView<float> s, float scale)
    {
        float v = s[0] * scale;
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride) y[i] = v;
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> SumStage;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> SumPerChannel;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> Broadcast;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            SumStage = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(SumStageKernel);
            SumPerChannel = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(SumPerChannelKernel);
            Broadcast = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(BroadcastKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));
    internal static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    /// <summary>Host loop over <paramref name="count"/> independent items of about
    /// <paramref name="workPerItem"/> elements each: serial when the whole is small (a Parallel.For
    /// costs more than 100k elements of SIMD work on a busy 2-core machine), else a few contiguous
    /// chunks per core rather than one task per item.</summary>
    internal static void HostFor(int count, long workPerItem, Action<int> body)
    {
        int cores = Environment.ProcessorCount;
        if (cores == 1 || count == 1 || count * workPerItem < 1 << 16)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        int chunks = Math.Min(count, cores * 4);
        Parallel.For(0, chunks, k =>
        {
            int hi = (int)((long)(k + 1) * count / chunks);
            for (int i = (int)((long)k * count / chunks); i < hi; i++) body(i);
        });
    }

    internal static void CheckGroup(Device d, string op)
    {
        if (d.GroupSize > MaxGroup)
            throw new InvalidOperationException($"{op}: group size {d.GroupSize} exceeds the shared tree of {MaxGroup}");
    }

    /// <summary>dst[0] = scale * sum(x). An empty x gives 0.</summary>
    public static void Sum(Device d, Buf<float> dst, Buf<float> x, float scale = 1f)
    {
        if (dst.Length != 1) throw new ArgumentException($"Sum: output has {dst.Length} elements, expected 1");
        if (Host(d))
        {
            dst.Span[0] = (float)(HostSum(x.Span) * scale);
            return;
        }
        CheckGroup(d, "Sum");
        // Stage 1: G partials; stage 2: one group sums them (and applies the scale).
        var cfg = d.Grid(Math.Max(1, x.Length));
        if (x.Length < d.GroupSize) cfg = new KernelConfig(1, ReduceGroup(d, x.Length));
        int groups = cfg.GridDim.X;
        using var block = d.Pool.Rent(groups * 4L);
        var partial = new Buf<float>(block, 0, groups);
        var k = K(d);
        k.SumStage(cfg, partial.View, x.View, 1f);
        k.SumStage(new KernelConfig(1, ReduceGroup(d, groups)), dst.View, partial.View, scale);
    }

    /// <summary>y[i] = scale * s[0] for every i (gradient of a sum or mean).   s (1)</summary>
    public static void Broadcast(Device d, Buf<float> y, Buf<float> s, float scale = 1f)
    {
        if (s.Length != 1) throw new ArgumentException($"Broadcast: source has {s.Length} elements, expected 1");
        if (y.Length == 0) return;
        if (Host(d)) { y.Span.Fill(s.Span[0] * scale); return; }
        K(d).Broadcast(d.Grid(y.Length), y.View, s.View, scale);
    }

    /// <summary>Sum of a span, accumulated in double over SIMD float chunks of 4096.</summary>
    public static double HostSum(ReadOnlySpan<float> x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i += 4096)
            s += TensorPrimitives.Sum(x.Slice(i, Math.Min(4096, x.Length - i)));
        return s;
    }

    /// <summary>dst[c] = sum over n, h, w of x[n, c, h, w].   dst (C), x (N, C, H, W)</summary>
    public static void SumPerChannel(Device d, Buf<float> dst, Buf<float> x, int n, int c, int hw)
    {
        if (dst.Length != c || x.Length != (long)n * c * hw)
            throw new ArgumentException($"SumPerChannel: dst of {dst.Length} and x of {x.Length} elements do not fit (N={n}, C={c}, HW={hw})");
        if (c == 0) return;
        if (Host(d))
        {
            var xp = x; var dp = dst;
            HostFor(c, (long)n * hw, ch =>
            {
                var xs = xp.Span;
                double s = 0;
                for (int b = 0; b < n; b++) s += HostSum(xs.Slice((b * c + ch) * hw, hw));
                dp.Span[ch] = (float)s;
            });
            return;
        }
        CheckGroup(d, "SumPerChannel");
        K(d).SumPerChannel(new KernelConfig(c, ReduceGroup(d, (long)n * hw)), dst.View, x.View, n, c, hw);
    }

    /// <summary>float64 host references of the reductions.</summary>
    public static class Reference
    {
        public static double Sum(double[] x) { double s = 0; foreach (var v in x) s += v; return s; }

        public static double[] SumPerChannel(double[] x, int n, int c, int hw)
        {
            var r = new double[c];
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < hw; i++) r[ch] += x[(b * c + ch) * hw + i];
            return r;
        }
    }
}
