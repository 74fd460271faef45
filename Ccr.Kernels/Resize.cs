using ILGPU;
using ILGPU.Runtime;

namespace Ccr.Kernels;

/// <summary>
/// Spatial resizing of (planes, H, W) maps, planes = N * C, as torch.nn.functional.interpolate:
/// bilinear with align_corners=False and 'nearest' (floor(dst * in / out), PyTorch's float
/// arithmetic, so label maps pick the same source pixels as PyTorch). Forward outputs and input
/// gradients are written (=). The backward passes are deterministic on both variants: the CUDA
/// variant gathers (one thread per input pixel, fixed order, no float atomics); the CPU variant
/// scatter-adds serially within a plane, planes in parallel. Reference in Resize.Reference.cs.
/// </summary>
public static partial class Resize
{
    // ---------------------------------------------------------------- index arithmetic (PyTorch's)

    /// <summary>Source coordinate of a bilinear output index: (dst + 0.5) * scale - 0.5, clamped at 0
    /// (area_pixel_compute_source_index), with scale = in / out computed in float.</summary>
    public static float BilinearSrc(int dst, float scale)
    {
        float s = scale * (dst + 0.5f) - 0.5f;
        return s < 0f ? 0f : s;
    }

    /// <summary>PyTorch's nearest_idx: identity, halving, or min(floor(dst * scale), in - 1) in float.</summary>
    public static int NearestSrc(int dst, int inSize, int outSize, float scale)
    {
        if (outSize == inSize) return dst;
        if (outSize == 2 * inSize) return dst >> 1;
        int s = (int)(dst * scale); // floor: dst * scale >= 0
        return s < inSize - 1 ? s : inSize - 1;
    }

    public static float Scale(int inSize, int outSize) => (float)inSize / outSize;

    // ---------------------------------------------------------------- kernels (grid-stride over outputs)

    static void BilinearKernel(ArrayView<float> y, ArrayView<float> x, int inH, int inW, int outH, int outW, float sh, float sw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride)
        {
            int ox = i % outW, t = i / outW, oy = t % outH, p = t / outH;
            float fy = BilinearSrc(oy, sh), fx = BilinearSrc(ox, sw);
            int y0 = (int)fy, x0 = (int)fx;
            int y1 = y0 < inH - 1 ? y0 + 1 : y0, x1 = x0 < inW - 1 ? x0 + 1 : x0;
            float ly = fy - y0, lx = fx - x0;
            int b = p * inH * inW;
            y[i] = (1f - ly) * ((1f - lx) * x[b + y0 * inW + x0] + lx * x[b + y0 * inW + x1])
                 + ly * ((1f - lx) * x[b + y1 * inW + x0] + lx * x[b + y1 * inW + x1]);
        }
    }

    // ---------------------------------------------------------------- backward kernels (gather form)
    //
    // One thread per INPUT pixel sums the shares of the output pixels whose taps include it, in
    // output order (oy, then ox; each output's taps in the forward's order): no atomics, no zero
    // fill, every dx element written (=) by one thread in a fixed order, so a backward gives the
    // same bits every run. The candidate outputs along an axis form a contiguous range, bounded
    // conservatively in 32-bit integers (ranges below; Check keeps (in + 2) * out in range) and
    // tested exactly with the forward's own index arithmetic, so float rounding of the scale can
    // never drop a tap.

    /// <summary>First output index whose bilinear taps may include input index i (conservative).</summary>
    public static int BilinearFirst(int i, int inSize, int outSize)
    {
        int lo = (i - 1) * outSize / inSize - 1;
        return lo < 0 ? 0 : lo;
    }

    /// <summary>One past the last output index whose bilinear taps may include input index i.</summary>
    public static int BilinearEnd(int i, int inSize, int outSize)
    {
        int hi = ((i + 2) * outSize + inSize - 1) / inSize + 1;
        return hi > outSize ? outSize : hi;
    }

    /// <summary>First output index whose nearest source may be input index i (conservative).</summary>
    public static int NearestFirst(int i, int inSize, int outSize)
    {
        int lo = i * outSize / inSize - 1;
        return lo < 0 ? 0 : lo;
    }

    /// <summary>One past the last output index whose nearest source may be input index i (the last
    /// input index also collects every clamped output).</summary>
    public static int NearestEnd(int i, int inSize, int outSize)
    {
        if (i == inSize - 1) return outSize;
        int hi = ((i + 1) * outSize + inSize - 1) / inSize + 1;
        return hi > outSize ? outSize : hi;
    }

    static void BilinearBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, int inH, int inW, int outH, int outW, float sh, float sw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < dx.IntLength; i += Launch.Stride)
        {
            int ix = i % inW, t = i / inW, iy = t % inH, p = t / inH;
            int oyEnd = BilinearEnd(iy, inH, outH), oxBegin = BilinearFirst(ix, inW, outW), oxEnd = BilinearEnd(ix, inW, outW);
            int b = p * outH * outW;
            float acc = 0f;
            for (int oy = BilinearFirst(iy, inH, outH); oy < oyEnd; oy++)
            {
                float fy = BilinearSrc(oy, sh);
                int y0 = (int)fy, y1 = y0 < inH - 1 ? y0 + 1 : y0;
                if (y0 != iy && y1 != iy) continue;
                float ly = fy - y0;
                for (int ox = oxBegin; ox < oxEnd; ox++)
                {
                    float fx = BilinearSrc(ox, sw);
                    int x0 = (int)fx, x1 = x0 < inW - 1 ? x0 + 1 : x0;
                    if (x0 != ix && x1 != ix) continue;
                    float lx = fx - x0, g = dy[b + oy * outW + ox];
                    float top = (1f - ly) * g, bot = ly * g;
                    // the forward's tap order: (y0, x0), (y0, x1), (y1, x0), (y1, x1)
                    if (y0 == iy) { if (x0 == ix) acc += (1f - lx) * top; if (x1 == ix) acc += lx * top; }
                    if (y1 == iy) { if (x0 == ix) acc += (1f - lx) * bot; if (x1 == ix) acc += lx * bot; }
                }
            }
            dx[i] = acc;
        }
    }

    static void NearestKernel(ArrayView<float> y, ArrayView<float> x, int inH, int inW, int outH, int outW, float sh, float sw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride)
        {
            int ox = i % outW, t = i / outW, oy = t % outH, p = t / outH;
            y[i] = x[(p * inH + NearestSrc(oy, inH, outH, sh)) * inW + NearestSrc(ox, inW, outW, sw)];
        }
    }

    static void NearestBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, int inH, int inW, int outH, int outW, float sh, float sw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < dx.IntLength; i += Launch.Stride)
        {
            int ix = i % inW, t = i / inW, iy = t % inH, p = t / inH;
            int oyEnd = NearestEnd(iy, inH, outH), oxBegin = NearestFirst(ix, inW, outW), oxEnd = NearestEnd(ix, inW, outW);
            int b = p * outH * outW;
            float acc = 0f;
            for (int oy = NearestFirst(iy, inH, outH); oy < oyEnd; oy++)
            {
                if (NearestSrc(oy, inH, outH, sh) != iy) continue;
                for (int ox = oxBegin; ox < oxEnd; ox++)
                    if (NearestSrc(ox, inW, outW, sw) == ix) acc += dy[b + oy * outW + ox];
            }
            dx[i] = acc;
        }
    }

    static void NearestLabelsKernel(ArrayView<int> y, ArrayView<int> x, int inH, int inW, int outH, int outW, float sh, float sw)
    {
        for (int i = ILGPU.Grid.GlobalIndex.X; i < y.IntLength; i += Launch.Stride)
        {
            int ox = i % outW, t = i / outW, oy = t % outH, p = t / outH;
            y[i] = x[(p * inH + NearestSrc(oy, inH, outH, sh)) * inW + NearestSrc(ox, inW, outW, sw)];
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, int, float, float>
            Bilinear, BilinearBackward, Nearest, NearestBackward;
        public readonly Action<KernelConfig, ArrayView<int>, ArrayView<int>, int, int, int, int, float, float> NearestLabels;

        public Kernels(Device d)
        {
            var a = d.Accelerator;
            Bilinear = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, int, float, float>(BilinearKernel);
            BilinearBackward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, int, float, float>(BilinearBackwardKernel);
            Nearest = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, int, float, float>(NearestKernel);
            NearestBackward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, int, float, float>(NearestBackwardKernel);
            NearestLabels = a.LoadStreamKernel<ArrayView<int>, ArrayView<int>, int, int, int, int, float, float>(NearestLabelsKernel);
        }
    }

    static Kernels K(Device d) => d.Kernels(static d => new Kernels(d));

    static void Check(string op, long outLen, long inLen, int planes, int inH, int inW, int outH, int outW)
    {
        if (planes < 0 || inH <= 0 || inW <= 0 || outH <= 0 || outW <= 0)
            throw new ArgumentException($"{op}: sizes must be positive, got planes={planes}, in {inH}x{inW}, out {outH}x{outW}");
        if ((long)(inH + 2) * outH > int.MaxValue || (long)(inW + 2) * outW > int.MaxValue)
            throw new ArgumentException($"{op}: sizes {inH}x{inW} -> {outH}x{outW} are too large for the gather index arithmetic");
        if (inLen != (long)planes * inH * inW || outLen != (long)planes * outH * outW)
            throw new ArgumentException($"{op}: input of {inLen} and output of {outLen} elements do not match {planes} planes of {inH}x{inW} -> {outH}x{outW}");
    }

    /// <summary>Per-output-index source pairs and weights along one axis (host tables).</summary>
    static (int[] I0, int[] I1, float[] L1) BilinearTable(int inSize, int outSize)
    {
        var i0 = new int[outSize]; var i1 = new int[outSize]; var l1 = new float[outSize];
        float scale = Scale(inSize, outSize);
        for (int o = 0; o < outSize; o++)
        {
            float f = BilinearSrc(o, scale);
            i0[o] = (int)f;
            i1[o] = i0[o] < inSize - 1 ? i0[o] + 1 : i0[o];
            l1[o] = f - i0[o];
        }
        return (i0, i1, l1);
    }

    static int[] NearestTable(int inSize, int outSize)
    {
        var t = new int[outSize];
        float scale = Scale(inSize, outSize);
        for (int o = 0; o < outSize; o++) t[o] = NearestSrc(o, inSize, outSize, scale);
        return t;
    }

    /// <summary>y = bilinear resize of x.   y (P, outH, outW), x (P, inH, inW)</summary>
    public static void Bilinear(Device d, Buf<float> y, Buf<float> x, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeBilinear", y.Length, x.Length, planes, inH, inW, outH, outW);
        if (y.Length == 0) return;
        if (Reductions.Host(d))
        {
            var (ry0, ry1, rly) = BilinearTable(inH, outH);
            var (cx0, cx1, clx) = BilinearTable(inW, outW);
            Reductions.HostFor(planes * outH, outW, row =>
            {
                int p = row / outH, oy = row - p * outH;
                var xs = x.Span; var ys = y.Span.Slice(row * outW, outW);
                var r0 = xs.Slice((p * inH + ry0[oy]) * inW, inW);
                var r1 = xs.Slice((p * inH + ry1[oy]) * inW, inW);
                float ly = rly[oy];
                for (int ox = 0; ox < outW; ox++)
                {
                    float lx = clx[ox];
                    float top = (1f - lx) * r0[cx0[ox]] + lx * r0[cx1[ox]];
                    float bot = (1f - lx) * r1[cx0[ox]] + lx * r1[cx1[ox]];
                    ys[ox] = (1f - ly) * top + ly * bot;
                }
            });
            return;
        }
        K(d).Bilinear(d.Grid(y.Length), y.View, x.View, inH, inW, outH, outW, Scale(inH, outH), Scale(inW, outW));
    }

    /// <summary>dx (=) of the bilinear resize.   dx (P, inH, inW), dy (P, outH, outW)</summary>
    public static void BilinearBackward(Device d, Buf<float> dx, Buf<float> dy, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeBilinearBackward", dy.Length, dx.Length, planes, inH, inW, outH, outW);
        if (dx.Length == 0) return;
        if (Reductions.Host(d))
        {
            var (ry0, ry1, rly) = BilinearTable(inH, outH);
            var (cx0, cx1, clx) = BilinearTable(inW, outW);
            Reductions.HostFor(planes, (long)outH * outW, p =>
            {
                var dxs = dx.Span.Slice(p * inH * inW, inH * inW);
                var dys = dy.Span.Slice(p * outH * outW, outH * outW);
                dxs.Clear();
                for (int oy = 0; oy < outH; oy++)
                {
                    int o0 = ry0[oy] * inW, o1 = ry1[oy] * inW;
                    float ly = rly[oy];
                    for (int ox = 0; ox < outW; ox++)
                    {
                        float g = dys[oy * outW + ox], lx = clx[ox];
                        float top = (1f - ly) * g, bot = ly * g;
                        dxs[o0 + cx0[ox]] += (1f - lx) * top;
                        dxs[o0 + cx1[ox]] += lx * top;
                        dxs[o1 + cx0[ox]] += (1f - lx) * bot;
                        dxs[o1 + cx1[ox]] += lx * bot;
                    }
                }
            });
            return;
        }
        K(d).BilinearBackward(d.Grid(dx.Length), dx.View, dy.View, inH, inW, outH, outW, Scale(inH, outH), Scale(inW, outW));
    }

    /// <summary>y = nearest resize of x.   y (P, outH, outW), x (P, inH, inW)</summary>
    public static void Nearest(Device d, Buf<float> y, Buf<float> x, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeNearest", y.Length, x.Length, planes, inH, inW, outH, outW);
        if (y.Length == 0) return;
        if (Reductions.Host(d))
        {
            var ry = NearestTable(inH, outH); var cx = NearestTable(inW, outW);
            Reductions.HostFor(planes * outH, outW, row =>
            {
                int p = row / outH, oy = row - p * outH;
                var src = x.Span.Slice((p * inH + ry[oy]) * inW, inW);
                var dst = y.Span.Slice(row * outW, outW);
                for (int ox = 0; ox < outW; ox++) dst[ox] = src[cx[ox]];
            });
            return;
        }
        K(d).Nearest(d.Grid(y.Length), y.View, x.View, inH, inW, outH, outW, Scale(inH, outH), Scale(inW, outW));
    }

    /// <summary>dx (=) of the nearest resize: each dy element adds into its source pixel.</summary>
    public static void NearestBackward(Device d, Buf<float> dx, Buf<float> dy, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeNearestBackward", dy.Length, dx.Length, planes, inH, inW, outH, outW);
        if (dx.Length == 0) return;
        if (Reductions.Host(d))
        {
            var ry = NearestTable(inH, outH); var cx = NearestTable(inW, outW);
            Reductions.HostFor(planes, (long)outH * outW, p =>
            {
                var dxs = dx.Span.Slice(p * inH * inW, inH * inW);
                var dys = dy.Span.Slice(p * outH * outW, outH * outW);
                dxs.Clear();
                for (int oy = 0; oy < outH; oy++)
                {
                    int o = ry[oy] * inW;
                    for (int ox = 0; ox < outW; ox++) dxs[o + cx[ox]] += dys[oy * outW + ox];
                }
            });
            return;
        }
        K(d).NearestBackward(d.Grid(dx.Length), dx.View, dy.View, inH, inW, outH, outW, Scale(inH, outH), Scale(inW, outW));
    }

    /// <summary>Nearest resize of an int32 label map (no gradient).   y (P, outH, outW), x (P, inH, inW)</summary>
    public static void NearestLabels(Device d, Buf<int> y, Buf<int> x, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeNearestLabels", y.Length, x.Length, planes, inH, inW, outH, outW);
        if (y.Length == 0) return;
        if (Reductions.Host(d))
        {
            var ry = NearestTable(inH, outH); var cx = NearestTable(inW, outW);
            var xs = x.Span; var ys = y.Span;
            for (int row = 0; row < planes * outH; row++)
            {
                int p = row / outH, oy = row - p * outH;
                var src = xs.Slice((p * inH + ry[oy]) * inW, inW);
                var dst = ys.Slice(row * outW, outW);
                for (int ox = 0; ox < outW; ox++) dst[ox] = src[cx[ox]];
            }
            return;
        }
        K(d).NearestLabels(d.Grid(y.Length), y.View, x.View, inH, inW, outH, outW, Scale(inH, outH), Scale(inW, outW));
    }
}
