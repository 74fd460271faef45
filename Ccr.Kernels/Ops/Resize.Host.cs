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

    // input rows some output row reads (a downscale skips rows)
    static bool[] UsedRows(int[] ry0, int[] ry1, int inH)
    {
        var used = new bool[inH];
        for (int o = 0; o < ry0.Length; o++) used[ry0[o]] = used[ry1[o]] = true;
        return used;
    }

    static void HostBilinear(Buf<float> y, Buf<float> x, int planes, int inH, int inW, int outH, int outW)
    {
        var (ry0, ry1, rly) = BilinearTable(inH, outH);
        var (cx0, cx1, clx) = BilinearTable(inW, outW);
        var used = UsedRows(ry0, ry1, inH);
        Reductions.HostFor(planes, (long)outH * outW, p =>
        {
            var rows = Rows(inH * outW).AsSpan(0, inH * outW);
            var xs = x.Span.Slice(p * inH * inW, inH * inW);
            for (int iy = 0; iy < inH; iy++)
            {
                if (!used[iy]) continue;
                var r = xs.Slice(iy * inW, inW);
                var h = rows.Slice(iy * outW, outW);
                for (int ox = 0; ox < outW; ox++)
                {
                    float lx = clx[ox];
                    h[ox] = (1f - lx) * r[cx0[ox]] + lx * r[cx1[ox]];
                }
            }
            var ys = y.Span.Slice(p * outH * outW, outH * outW);
            for (int oy = 0; oy < outH; oy++)
            {
                // (1 - ly) top + ly bot as two products and a sum, as the formula rounds it (no fused multiply-add)
                var o = ys.Slice(oy * outW, outW);
                TensorPrimitives.Multiply(rows.Slice(ry0[oy] * outW, outW), 1f - rly[oy], o);
                TensorPrimitives.MultiplyAdd(rows.Slice(ry1[oy] * outW, outW), rly[oy], o, o);
            }
        });
    }

    // dx (=): each dy pixel adds its four shares in (oy, ox) order, the order the CUDA variant's gather adds them in
    // (so the two variants give the same bits; ResizeTests pins it), through pointers and per-call weight tables
    static unsafe void HostBilinearBackward(Buf<float> dx, Buf<float> dy, int planes, int inH, int inW, int outH, int outW)
    {
        var (ry0, ry1, rly) = BilinearTable(inH, outH);
        var (cx0, cx1, clx) = BilinearTable(inW, outW);
        var olx = new float[outW];
        for (int ox = 0; ox < outW; ox++) olx[ox] = 1f - clx[ox];
        float* pdx = dx.Ptr, pdy = dy.Ptr;
        Reductions.HostFor(planes, (long)outH * outW, p =>
        {
            float* d = pdx + (long)p * inH * inW, g = pdy + (long)p * outH * outW;
            new Span<float>(d, inH * inW).Clear();
            fixed (int* c0 = cx0, c1 = cx1)
            fixed (float* lx = clx, ox1 = olx)
                for (int oy = 0; oy < outH; oy++, g += outW)
                {
                    float* r0 = d + ry0[oy] * inW, r1 = d + ry1[oy] * inW;
                    float ly = rly[oy], oly = 1f - ly;
                    for (int ox = 0; ox < outW; ox++)
                    {
                        float top = oly * g[ox], bot = ly * g[ox];
                        r0[c0[ox]] += ox1[ox] * top;
                        r0[c1[ox]] += lx[ox] * top;
                        r1[c0[ox]] += ox1[ox] * bot;
                        r1[c1[ox]] += lx[ox] * bot;
                    }
                }
        });
    }
}
