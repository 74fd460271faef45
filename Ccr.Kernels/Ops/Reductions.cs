using System.Numerics.Tensors;
using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Sums: all elements to one value, and per channel over (N, H, W) (bias gradients). Outputs are
/// written (=). CUDA variant: two-level ordered reductions built on <see cref="BlockReduce"/>
/// (per-group partial sums, then one pass over the partials in a fixed order: deterministic, no
/// atomics); per channel, many groups share a channel (<see cref="ChannelSplit"/>), so an
/// 18-channel layer still fills the GPU. CPU variant: host code on spans, sums in double.
/// </summary>
internal static partial class Reductions
{
    // ---------------------------------------------------------------- kernels

    // Stage 1 (and stage 2 with one group): each group sums a grid-stride share of x into partial[group].
    static void SumStageKernel(ArrayView<float> partial, ArrayView<float> x, float scale)
    {
        float acc = 0f;
        int n = x.IntLength, st = Launch.Stride, i = ILGPU.Grid.GlobalIndex.X;
        for (; i + 3 * st < n; i += 4 * st)
        {
            float x0 = x[i], x1 = x[i + st], x2 = x[i + 2 * st], x3 = x[i + 3 * st];
            acc += (x0 + x1) + (x2 + x3);
        }
        for (; i < n; i += st) acc += x[i];
        float s = BlockReduce.Sum(acc);
        if (Group.IdxX == 0) partial[ILGPU.Grid.IdxX] = s * scale;
    }

    // Stage 1 of the per-channel sum: group g = (channel, part) sums its range of the channel into
    // partial[g] (or dst[channel] when there is one part).   x (N, C, HW)
    static void SumPerChannelPartialKernel(ArrayView<float> partial, ArrayView<float> x, ChannelSplit s)
    {
        int g = ILGPU.Grid.IdxX, c = g / s.Parts;
        long lo = s.Lo(g - c * s.Parts), hi = s.Lo(g - c * s.Parts + 1);
        float acc = 0f;
        for (int n = s.FirstImage(lo); n < s.N && (long)n * s.Hw < hi; n++)
        {
            var seg = s.Segment(n, c, lo, hi);
            int i = seg.A + Group.IdxX, step = Group.DimX;
            // four independent loads per iteration keep enough bytes in flight for GPU bandwidth
            for (; i + 3 * step < seg.B; i += 4 * step)
            {
                float x0 = x[seg.Base + i], x1 = x[seg.Base + i + step], x2 = x[seg.Base + i + 2 * step], x3 = x[seg.Base + i + 3 * step];
                acc += (x0 + x1) + (x2 + x3);
            }
            for (; i < seg.B; i += step) acc += x[seg.Base + i];
        }
        float r = BlockReduce.Sum(acc);
        if (Group.IdxX == 0) partial[g] = r;
    }

    // Stage 2: group c sums partial[c*parts .. (c+1)*parts) in a fixed order into dst[c].
    static void SumPartsKernel(ArrayView<float> dst, ArrayView<float> partial, int parts)
    {
        int c = ILGPU.Grid.IdxX;
        float acc = 0f;
        for (int p = Group.IdxX; p < parts; p += Group.DimX) acc += partial[c * parts + p];
        float r = BlockReduce.Sum(acc);
        if (Group.IdxX == 0) dst[c] = r;
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
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ChannelSplit> SumPerChannelPartial;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> SumParts;
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> Broadcast;

        public Kernels(Device d)
        {
            SumStage = d.Load<ArrayView<float>, ArrayView<float>, float>(SumStageKernel);
            SumPerChannelPartial = d.Load<ArrayView<float>, ArrayView<float>, ChannelSplit>(SumPerChannelPartialKernel);
            SumParts = d.Load<ArrayView<float>, ArrayView<float>, int>(SumPartsKernel);
            Broadcast = d.Load<ArrayView<float>, ArrayView<float>, float>(BroadcastKernel);
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

    /// <summary>dst[0] = scale * sum(x). An empty x gives 0.</summary>
    public static void Sum(Device d, Buf<float> dst, Buf<float> x, float scale = 1f)
    {
        if (dst.Length != 1) throw new ArgumentException($"Sum: output has {dst.Length} elements, expected 1");
        if (Host(d))
        {
            dst.Span[0] = (float)(HostSum(x.Span) * scale);
            return;
        }
        // Stage 1: G partials; stage 2: one group sums them (and applies the scale).
        var cfg = d.Grid(Math.Max(1, x.Length));
        if (x.Length < d.GroupSize) cfg = new KernelConfig(1, BlockReduce.GroupFor(d, x.Length));
        int groups = cfg.GridDim.X;
        BlockReduce.CheckGroup(d, cfg.GroupDim.X, "Sum");
        var k = K(d);
        if (groups == 1) { k.SumStage(cfg, dst.View, x.View, scale); return; }
        using var block = d.Pool.Rent(groups * 4L);
        var partial = new Buf<float>(block, 0, groups);
        k.SumStage(cfg, partial.View, x.View, 1f);
        k.SumStage(new KernelConfig(1, BlockReduce.GroupFor(d, groups)), dst.View, partial.View, scale);
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

    /// <summary>dst[c] = sum over n, h, w of x[n, c, h, w].   dst (C), x (N, C, H, W).
    /// <paramref name="parts"/> (groups per channel on the CUDA variant) is chosen from the device
    /// when 0; tests force it to check the split.</summary>
    public static void SumPerChannel(Device d, Buf<float> dst, Buf<float> x, int n, int c, int hw, int parts = 0)
    {
        if (n < 0 || c < 0 || hw < 0 || dst.Length != c || x.Length != (long)n * c * hw)
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
        if ((long)n * hw == 0) { Elementwise.Fill(d, dst, 0f); return; }
        var split = ChannelSplit.For(d, n, c, hw, parts);
        int group = split.GroupSize(d);
        BlockReduce.CheckGroup(d, group, "SumPerChannel");
        var k = K(d);
        if (split.Parts == 1) { k.SumPerChannelPartial(new KernelConfig(c, group), dst.View, x.View, split); return; }
        using var block = d.Pool.Rent(split.Groups * 4L);
        var partial = new Buf<float>(block, 0, split.Groups);
        k.SumPerChannelPartial(new KernelConfig(split.Groups, group), partial.View, x.View, split);
        int g2 = BlockReduce.GroupFor(d, split.Parts);
        BlockReduce.CheckGroup(d, g2, "SumPerChannel");
        k.SumParts(new KernelConfig(c, g2), dst.View, partial.View, split.Parts);
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

/// <summary>
/// How a two-level per-channel reduction splits x (N, C, HW) on the CUDA variant: each channel's
/// M = N*HW elements, taken plane by plane, are cut into <see cref="Parts"/> contiguous ranges, and
/// group g of a launch of C*Parts groups works on channel g / Parts, range g % Parts. Partial
/// results are stored per group and reduced per channel in part order, so the result never depends
/// on scheduling (no atomics). Within its range a group walks the few image planes it touches,
/// each a contiguous run of memory: loads are coalesced, with no division per element. Many parts
/// per channel are what let an 18-channel layer fill a GPU (one group per channel gives 18 groups).
/// </summary>
internal struct ChannelSplit
{
    public int N, C, Hw, Parts;

    /// <summary>Upper bound on parts per channel.</summary>
    public const int MaxParts = 1024;

    public readonly long M => (long)N * Hw;
    public readonly int Groups => C * Parts;

    /// <summary>First flattened (n, i) index of part <paramref name="part"/>; Lo(Parts) == M.</summary>
    public readonly long Lo(int part) => M * part / Parts;

    /// <summary>The image whose plane holds flattened index <paramref name="lo"/>.</summary>
    public readonly int FirstImage(long lo) => (int)(lo / Hw);

    /// <summary>The part of the range [lo, hi) that lies in image n's plane of channel c:
    /// x[Base + A .. Base + B).</summary>
    public readonly PlaneSegment Segment(int n, int c, long lo, long hi)
    {
        long p0 = (long)n * Hw;
        var s = new PlaneSegment();
        s.Base = ((long)n * C + c) * Hw;
        s.A = lo > p0 ? (int)(lo - p0) : 0;
        s.B = hi < p0 + Hw ? (int)(hi - p0) : Hw;
        return s;
    }

    /// <summary>The split for x (N, C, HW) on <paramref name="d"/>: about two waves of groups over all
    /// channels, but at least ~4 elements per thread; <paramref name="parts"/> &gt; 0 forces it (tests).</summary>
    public static ChannelSplit For(Device d, int n, int c, int hw, int parts = 0)
    {
        long m = (long)n * hw;
        if (parts <= 0)
        {
            long want = (2L * d.GridGroups + c - 1) / Math.Max(1, c);
            long byWork = m / (4L * d.GroupSize);
            parts = (int)Math.Clamp(Math.Min(want, byWork), 1, MaxParts);
        }
        if (parts > MaxParts) throw new ArgumentException($"ChannelSplit: {parts} parts per channel, at most {MaxParts}");
        parts = (int)Math.Min(parts, Math.Max(1, m));
        if ((long)c * parts > int.MaxValue) throw new ArgumentException($"ChannelSplit: {c} channels x {parts} parts overflow the grid");
        return new ChannelSplit { N = n, C = c, Hw = hw, Parts = parts };
    }

    /// <summary>Threads per group: no more warps than a part's elements fill.</summary>
    public readonly int GroupSize(Device d) => BlockReduce.GroupFor(d, (M + Parts - 1) / Parts);
}

/// <summary>One plane's share of a <see cref="ChannelSplit"/> range: x[Base + A .. Base + B).</summary>
internal struct PlaneSegment
{
    public long Base;
    public int A, B;
}
