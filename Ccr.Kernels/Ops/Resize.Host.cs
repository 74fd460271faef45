using System.Numerics.Tensors;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The CPU variant's bilinear resize, separably: per plane, the input rows the outputs read are first interpolated
/// along W (inH x outW, each input row once, where interpolating per output row did each row's horizontal work
/// twice per output row that reads it), then each output row is one vector blend of two of those rows. The
/// forward's arithmetic per element is the per-pixel formula's ((1 - ly) top + ly bot, top and bot interpolated
/// along W), so its outputs are bitwise those of the formula. The backward keeps the per-pixel scatter (the CUDA
/// variant's gather adds in its order), without the bounds checks of spans.
/// </summary>
internal static partial class Resize
{
    // per thread: the (inH x outW) rows of one plane (grown once, then reused: no allocation in the steady step)
    [ThreadStatic] static float[]? rowsBuffer;

    static float[] Rows(int floats) => rowsBuffer is { } b && b.Length >= floats ? b : rowsBuffer = new float[floats];

    static void HostBilinear(Buf<float> y, Buf<float> x, int planes, int inH, int inW, int outH, int outW)
    {
        var (ry0, ry1, rly) = BilinearTable(inH, outH);
        var (cx0, cx1, clx) = BilinearTable(inW, outW);
        Reductions.HostFor(planes, (long)outH * outW, p =>
        {
            var rows = Rows(inH * outW).AsSpan(0, inH * outW);
            var xs = x.Span.Slice(p * inH * inW, inH * inW);
            var ys = y.Span.Slice(p * outH * outW, outH * outW);
            // the rows the outputs read come in non-decreasing order: each is interpolated along W when first met (a
            // downscale skips the rather than computing them)
            int done = -1;
            for (int oy = 0; oy < outH; oy++)
            {
                if (ry0[oy] > done) Horizontal(xs, rows, done = ry0[oy], inW, outW, cx0, cx1, clx);
                if (ry1[oy] > done) Horizontal(xs, rows, done = ry1[oy], inW, outW, cx0, cx1, clx);
                // (1 - ly) top + ly bot as two products and a sum, as the formula rounds it (no fused multiply-add)
                var o = ys.Slice(oy * outW, outW);
                TensorPrimitives.Multiply(rows.Slice(ry0[oy] * outW, outW), 1f - rly[oy], o);
                TensorPrimitives.MultiplyAdd(rows.Slice(ry1[oy] * outW, outW), rly[oy], o, o);
            }
        });
    }

    // rows[iy] (outW) = input row iy interpolated along W
    static void Horizontal(Span<float> xs, Span<float> rows, int iy, int inW, int outW, int[] cx0, int[] cx1, float[] clx)
    {
        var r = xs.Slice(iy * inW, inW);
        var h = rows.Slice(iy * outW, outW);
        for (int ox = 0; ox < outW; ox++)
        {
            float lx = clx[ox];
            h[ox] = (1f - lx) * r[cx0[ox]] + lx * r[cx1[ox]];
        }
    }

    // dx (=): each dy pixel adds its four shares in (oy, ox) order, the order the CUDA variant's gather adds them in
    // (so the two variants give the same bits; ResizeTests pins it), through pointers
    static unsafe void HostBilinearBackward(Buf<float> dx, Buf<float> dy, int planes, int inH, int inW, int outH, int outW)
    {
        var (ry0, ry1, rly) = BilinearTable(inH, outH);
        var (cx0, cx1, clx) = BilinearTable(inW, outW);
        float* pdx = dx.Ptr, pdy = dy.Ptr;
        Reductions.HostFor(planes, (long)outH * outW, p =>
        {
            float* d = pdx + (long)p * inH * inW, g = pdy + (long)p * outH * outW;
            new Span<float>(d, inH * inW).Clear();
            fixed (int* c0 = cx0, c1 = cx1)
            fixed (float* lx = clx)
                for (int oy = 0; oy < outH; oy++, g += outW)
                {
                    float* r0 = d + ry0[oy] * inW, r1 = d + ry1[oy] * inW;
                    float ly = rly[oy], oly = 1f - ly;
                    for (int ox = 0; ox < outW; ox++)
                    {
                        float top = oly * g[ox], bot = ly * g[ox];
                        r0[c0[ox]] += (1f - lx[ox]) * top;
                        r0[c1[ox]] += lx[ox] * top;
                        r1[c0[ox]] += (1f - lx[ox]) * bot;
                        r1[c1[ox]] += lx[ox] * bot;
                    }
                }
        });
    }
}
