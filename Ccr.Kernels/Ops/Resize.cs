using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Spatial resizing of (planes, H, W) maps, planes = N * C, as torch.nn.functional.interpolate:
/// bilinear with align_corners=False and 'nearest' (floor(dst * in / out), PyTorch's float
/// arithmetic, so label maps pick the same source pixels as PyTorch). Forward outputs and input
/// gradients are written (=). The backward passes are deterministic on both variants: the CUDA
/// variant gathers (one thread per input pixel, fixed order, no float atomics); the CPU variant
/// scatter-adds serially within a plane, planes in parallel (bilinear: separably, Resize.Host.cs).
/// Reference in Resize.Reference.cs.
/// </summary>
internal static partial class Resize
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

    // ---------------------------------------------------------------- kernels
    //
    // GPU layout: a work item is one pixel position and a chunk of up to PlaneChunk planes
    // (item = chunk * positions + position: neighbouring threads take neighbouring pixels, so
    // loads and stores coalesce). The pixel's index arithmetic (two divisions, the source
    // coordinates and weights) is done once per item and serves every plane of the chunk, and the
    // chunk's loads are all issued before its arithmetic: without this, per-element integer
    // division and coordinate math cost more GPU time than the bytes the kernel moves.

    /// <summary>Planes per work item of the GPU resize kernels.</summary>
    public const int PlaneChunk = 4;

    /// <summary>Sizes of a resize launch (one struct keeps the kernel signatures short).</summary>
    public struct Args
    {
        public int Planes, InH, InW, OutH, OutW;
        public float Sh, Sw;
        public readonly int Chunks => (Planes + PlaneChunk - 1) / PlaneChunk;
    }

    static float Lerp4(float a, float b, float c, float e, float ly, float lx) =>
        (1f - ly) * ((1f - lx) * a + lx * b) + ly * ((1f - lx) * c + lx * e);

    static void BilinearKernel(ArrayView<float> y, ArrayView<float> x, Args a)
    {
        int outHW = a.OutH * a.OutW, inHW = a.InH * a.InW, total = outHW * a.Chunks;
        for (int w = ILGPU.Grid.GlobalIndex.X; w < total; w += Launch.Stride)
        {
            int chunk = w / outHW, pos = w - chunk * outHW, oy = pos / a.OutW, ox = pos - oy * a.OutW;
            float fy = BilinearSrc(oy, a.Sh), fx = BilinearSrc(ox, a.Sw);
            int y0 = (int)fy, x0 = (int)fx;
            int y1 = y0 < a.InH - 1 ? y0 + 1 : y0, x1 = x0 < a.InW - 1 ? x0 + 1 : x0;
            float ly = fy - y0, lx = fx - x0;
            int i00 = y0 * a.InW + x0, i01 = y0 * a.InW + x1, i10 = y1 * a.InW + x0, i11 = y1 * a.InW + x1;
            int p0 = chunk * PlaneChunk, cnt = a.Planes - p0 < PlaneChunk ? a.Planes - p0 : PlaneChunk;
            if (cnt == PlaneChunk)
            {
                int b0 = p0 * inHW, b1 = b0 + inHW, b2 = b1 + inHW, b3 = b2 + inHW;
                float a0 = x[b0 + i00], c0 = x[b0 + i01], d0 = x[b0 + i10], e0 = x[b0 + i11];
                float a1 = x[b1 + i00], c1 = x[b1 + i01], d1 = x[b1 + i10], e1 = x[b1 + i11];
                float a2 = x[b2 + i00], c2 = x[b2 + i01], d2 = x[b2 + i10], e2 = x[b2 + i11];
                float a3 = x[b3 + i00], c3 = x[b3 + i01], d3 = x[b3 + i10], e3 = x[b3 + i11];
                int o = p0 * outHW + pos;
                y[o] = Lerp4(a0, c0, d0, e0, ly, lx);
                y[o + outHW] = Lerp4(a1, c1, d1, e1, ly, lx);
                y[o + 2 * outHW] = Lerp4(a2, c2, d2, e2, ly, lx);
                y[o + 3 * outHW] = Lerp4(a3, c3, d3, e3, ly, lx);
            }
            else
                for (int p = p0; p < p0 + cnt; p++)
                {
                    int b = p * inHW;
                    y[p * outHW + pos] = Lerp4(x[b + i00], x[b + i01], x[b + i10], x[b + i11], ly, lx);
                }
        }
    }

    static void NearestKernel(ArrayView<float> y, ArrayView<float> x, Args a)
    {
        int outHW = a.OutH * a.OutW, inHW = a.InH * a.InW, total = outHW * a.Chunks;
        for (int w = ILGPU.Grid.GlobalIndex.X; w < total; w += Launch.Stride)
        {
            int chunk = w / outHW, pos = w - chunk * outHW, oy = pos / a.OutW, ox = pos - oy * a.OutW;
            int src = NearestSrc(oy, a.InH, a.OutH, a.Sh) * a.InW + NearestSrc(ox, a.InW, a.OutW, a.Sw);
            int p0 = chunk * PlaneChunk, cnt = a.Planes - p0 < PlaneChunk ? a.Planes - p0 : PlaneChunk;
            if (cnt == PlaneChunk)
            {
                int b = p0 * inHW + src, o = p0 * outHW + pos;
                float v0 = x[b], v1 = x[b + inHW], v2 = x[b + 2 * inHW], v3 = x[b + 3 * inHW];
                y[o] = v0; y[o + outHW] = v1; y[o + 2 * outHW] = v2; y[o + 3 * outHW] = v3;
            }
            else
                for (int p = p0; p < p0 + cnt; p++) y[p * outHW + pos] = x[p * inHW + src];
        }
    }

    static void NearestLabelsKernel(ArrayView<int> y, ArrayView<int> x, Args a)
    {
        int outHW = a.OutH * a.OutW, inHW = a.InH * a.InW, total = outHW * a.Chunks;
        for (int w = ILGPU.Grid.GlobalIndex.X; w < total; w += Launch.Stride)
        {
            int chunk = w / outHW, pos = w - chunk * outHW, oy = pos / a.OutW, ox = pos - oy * a.OutW;
            int src = NearestSrc(oy, a.InH, a.OutH, a.Sh) * a.InW + NearestSrc(ox, a.InW, a.OutW, a.Sw);
            int p0 = chunk * PlaneChunk, p1 = a.Planes - p0 < PlaneChunk ? a.Planes : p0 + PlaneChunk;
            for (int p = p0; p < p1; p++) y[p * outHW + pos] = x[p * inHW + src];
        }
    }

    // ---------------------------------------------------------------- backward kernels (gather form)
    //
    // One work item per INPUT pixel position and plane chunk sums, for each plane, the shares of
    // the output pixels whose taps include that pixel, in output order (oy, then ox; each output's
    // taps in the forward's order, as the host scatter adds them): no atomics, no zero fill, every
    // dx element written (=) by one thread in a fixed order, so a backward gives the same bits
    // every run. The candidate outputs along an axis form a contiguous range, bounded
    // conservatively in 32-bit integers (ranges below; Check keeps (in + 2) * out in range) and
    // tested exactly with the forward's own index arithmetic, so float rounding of the scale can
    // never drop a tap. The taps and weights are found once per candidate and serve the chunk.

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

    // acc plus the shares of one output's gradient g that reach the input pixel, in the forward's
    // tap order (y0, x0), (y0, x1), (y1, x0), (y1, x1) and with the host scatter's arithmetic.
    static float Share(float acc, float g, float ly, float lx, bool y0Hit, bool y1Hit, bool x0Hit, bool x1Hit)
    {
        float top = (1f - ly) * g, bot = ly * g;
        if (y0Hit) { if (x0Hit) acc += (1f - lx) * top; if (x1Hit) acc += lx * top; }
        if (y1Hit) { if (x0Hit) acc += (1f - lx) * bot; if (x1Hit) acc += lx * bot; }
        return acc;
    }

    static void BilinearBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, Args a)
    {
        int outHW = a.OutH * a.OutW, inHW = a.InH * a.InW, total = inHW * a.Chunks;
        for (int w = ILGPU.Grid.GlobalIndex.X; w < total; w += Launch.Stride)
        {
            int chunk = w / inHW, pos = w - chunk * inHW, iy = pos / a.InW, ix = pos - iy * a.InW;
            int oyEnd = BilinearEnd(iy, a.InH, a.OutH), oxBegin = BilinearFirst(ix, a.InW, a.OutW), oxEnd = BilinearEnd(ix, a.InW, a.OutW);
            int p0 = chunk * PlaneChunk, cnt = a.Planes - p0 < PlaneChunk ? a.Planes - p0 : PlaneChunk;
            int b0 = p0 * outHW, b1 = b0 + outHW, b2 = b1 + outHW, b3 = b2 + outHW;
            float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
            for (int oy = BilinearFirst(iy, a.InH, a.OutH); oy < oyEnd; oy++)
            {
                float fy = BilinearSrc(oy, a.Sh);
                int y0 = (int)fy, y1 = y0 < a.InH - 1 ? y0 + 1 : y0;
                if (y0 != iy && y1 != iy) continue;
                float ly = fy - y0;
                for (int ox = oxBegin; ox < oxEnd; ox++)
                {
                    float fx = BilinearSrc(ox, a.Sw);
                    int x0 = (int)fx, x1 = x0 < a.InW - 1 ? x0 + 1 : x0;
                    if (x0 != ix && x1 != ix) continue;
                    float lx = fx - x0;
                    int o = oy * a.OutW + ox;
                    // the chunk's loads first (planes past the end read nothing)
                    float g0 = dy[b0 + o], g1 = cnt > 1 ? dy[b1 + o] : 0f, g2 = cnt > 2 ? dy[b2 + o] : 0f, g3 = cnt > 3 ? dy[b3 + o] : 0f;
                    bool y0Hit = y0 == iy, y1Hit = y1 == iy, x0Hit = x0 == ix, x1Hit = x1 == ix;
                    acc0 = Share(acc0, g0, ly, lx, y0Hit, y1Hit, x0Hit, x1Hit);
                    acc1 = Share(acc1, g1, ly, lx, y0Hit, y1Hit, x0Hit, x1Hit);
                    acc2 = Share(acc2, g2, ly, lx, y0Hit, y1Hit, x0Hit, x1Hit);
                    acc3 = Share(acc3, g3, ly, lx, y0Hit, y1Hit, x0Hit, x1Hit);
                }
            }
            int d = p0 * inHW + pos;
            dx[d] = acc0;
            if (cnt > 1) dx[d + inHW] = acc1;
            if (cnt > 2) dx[d + 2 * inHW] = acc2;
            if (cnt > 3) dx[d + 3 * inHW] = acc3;
        }
    }

    static void NearestBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, Args a)
    {
        int outHW = a.OutH * a.OutW, inHW = a.InH * a.InW, total = inHW * a.Chunks;
        for (int w = ILGPU.Grid.GlobalIndex.X; w < total; w += Launch.Stride)
        {
            int chunk = w / inHW, pos = w - chunk * inHW, iy = pos / a.InW, ix = pos - iy * a.InW;
            int oyEnd = NearestEnd(iy, a.InH, a.OutH), oxBegin = NearestFirst(ix, a.InW, a.OutW), oxEnd = NearestEnd(ix, a.InW, a.OutW);
            int p0 = chunk * PlaneChunk, cnt = a.Planes - p0 < PlaneChunk ? a.Planes - p0 : PlaneChunk;
            int b0 = p0 * outHW, b1 = b0 + outHW, b2 = b1 + outHW, b3 = b2 + outHW;
            float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
            for (int oy = NearestFirst(iy, a.InH, a.OutH); oy < oyEnd; oy++)
            {
                if (NearestSrc(oy, a.InH, a.OutH, a.Sh) != iy) continue;
                for (int ox = oxBegin; ox < oxEnd; ox++)
                {
                    if (NearestSrc(ox, a.InW, a.OutW, a.Sw) != ix) continue;
                    int o = oy * a.OutW + ox;
                    float g0 = dy[b0 + o], g1 = cnt > 1 ? dy[b1 + o] : 0f, g2 = cnt > 2 ? dy[b2 + o] : 0f, g3 = cnt > 3 ? dy[b3 + o] : 0f;
                    acc0 += g0; acc1 += g1; acc2 += g2; acc3 += g3;
                }
            }
            int d = p0 * inHW + pos;
            dx[d] = acc0;
            if (cnt > 1) dx[d + inHW] = acc1;
            if (cnt > 2) dx[d + 2 * inHW] = acc2;
            if (cnt > 3) dx[d + 3 * inHW] = acc3;
        }
    }

    // ---------------------------------------------------------------- launchers

    sealed class Kernels
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, Args> Bilinear, BilinearBackward, Nearest, NearestBackward;
        public readonly Action<KernelConfig, ArrayView<int>, ArrayView<int>, Args> NearestLabels;

        public Kernels(Device d)
        {
            Bilinear = d.Load<ArrayView<float>, ArrayView<float>, Args>(BilinearKernel);
            BilinearBackward = d.Load<ArrayView<float>, ArrayView<float>, Args>(BilinearBackwardKernel);
            Nearest = d.Load<ArrayView<float>, ArrayView<float>, Args>(NearestKernel);
            NearestBackward = d.Load<ArrayView<float>, ArrayView<float>, Args>(NearestBackwardKernel);
            NearestLabels = d.Load<ArrayView<int>, ArrayView<int>, Args>(NearestLabelsKernel);
        }
    }

    static Args ArgsOf(int planes, int inH, int inW, int outH, int outW) => new()
    {
        Planes = planes, InH = inH, InW = inW, OutH = outH, OutW = outW, Sh = Scale(inH, outH), Sw = Scale(inW, outW),
    };

    /// <summary>Launch over positions x plane chunks.</summary>
    static KernelConfig GridOf(Device d, int planes, long positions) =>
        d.Grid(positions * ((planes + PlaneChunk - 1) / PlaneChunk));

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
        if (Reductions.Host(d)) { HostBilinear(y, x, planes, inH, inW, outH, outW); return; }
        K(d).Bilinear(GridOf(d, planes, (long)outH * outW), y.View, x.View, ArgsOf(planes, inH, inW, outH, outW));
    }

    /// <summary>dx (=) of the bilinear resize.   dx (P, inH, inW), dy (P, outH, outW)</summary>
    public static void BilinearBackward(Device d, Buf<float> dx, Buf<float> dy, int planes, int inH, int inW, int outH, int outW)
    {
        Check("ResizeBilinearBackward", dy.Length, dx.Length, planes, inH, inW, outH, outW);
        if (dx.Length == 0) return;
        if (Reductions.Host(d)) { HostBilinearBackward(dx, dy, planes, inH, inW, outH, outW); return; }
        K(d).BilinearBackward(GridOf(d, planes, (long)inH * inW), dx.View, dy.View, ArgsOf(planes, inH, inW, outH, outW));
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
        K(d).Nearest(GridOf(d, planes, (long)outH * outW), y.View, x.View, ArgsOf(planes, inH, inW, outH, outW));
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
        K(d).NearestBackward(GridOf(d, planes, (long)inH * inW), dx.View, dy.View, ArgsOf(planes, inH, inW, outH, outW));
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
        K(d).NearestLabels(GridOf(d, planes, (long)outH * outW), y.View, x.View, ArgsOf(planes, inH, inW, outH, outW));
    }
}
