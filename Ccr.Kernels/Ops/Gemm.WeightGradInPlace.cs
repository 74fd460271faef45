using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The conv weight gradient on AVX-512 with both operands read in place (issue 20):
/// dw[co, (ci, kh, kw)] = sum over pixels of dy[n, co, oh, ow] x_pad[n, ci, oh S + kh D, ow S + kw D]. Along a run of 16
/// output pixels of a row, dy's row and each tap's shifted row of the zero-padded input (in phase planes when strided,
/// <see cref="PhaseImages"/>) are 16 contiguous floats, so the
/// sum runs as dot products vectorised along the pixels: a tile of 4 output channels x 6 taps keeps 24 vectors of
/// partial sums (16 pixels' products apiece), loading 4 dy vectors and 6 input vectors per 24 FMAs. Nothing is packed
/// or gathered: the GEMM path copied dy into a K-concatenated A, packed it per K block and gathered cols^T from the
/// images 8 floats at a time (18 -> 18 @24x32: 13% of the FMA peak).
/// Order of the sums: the batch in chunks of whole images (<see cref="ChunkPixels"/>), and per chunk each tile's
/// vectors are summed across their 16 lanes and added to dw (stored for the first chunk). The chunks, the tiles and
/// so every sum are the same on any thread count: threads take disjoint ranges of tap groups (columns of dw).
/// </summary>
internal static partial class Gemm
{
    /// <summary>Conv weight gradients take their operands in place where they can (default on; off: the packed
    /// GEMM on cols^T gathered from the images, kept reachable for the bitwise tests of that path and for conv-passes).</summary>
    internal static bool WeightGradientInPlace { get; set; } = true;

    /// <summary>Whether <see cref="HostConvWeightGradInPlace"/> takes this geometry: AVX-512, output rows of whole
    /// 16-pixel runs (1x1 convs included), and dw short on one side (at most <see cref="InPlaceMaxSide"/> output
    /// channels or taps), where the GEMM's per-K-block packing and gathers outweigh its FMAs.</summary>
    internal static bool ReadsWeightGradInPlace(ConvGeom g) =>
        WeightGradientInPlace && Packed && Wide && g.OW % 16 == 0 && Math.Min(g.Cout, g.CKK) <= InPlaceMaxSide
        && (g.S == 1 || (long)g.Cout * g.CKK <= InPlaceMaxStrided);

    /// <summary>Strided convs: only dw of at most this many weights (18 -> 36 s2 @24x32: 0.18 -> 0.15 ms, 18 -> 18 s2
    /// 0.15 -> 0.10, the stem's 64 x 27 about even). Larger ones lost to the GEMM (256 -> 36 s2 @24x32 1.5-1.7 ->
    /// 1.9-2.2 ms, 64 -> 64 s2 @48x64 2.3-2.5 -> 2.7-2.8): a tap group spans two column phases, so more lines per step.</summary>
    internal const long InPlaceMaxStrided = 16384;

    /// <summary>64: the dot products reuse each loaded vector 4 or 6 times where the GEMM's outer products reuse a B row
    /// 12 times, so on wide dw (both sides in the hundreds) they stream about twice the bytes from L2 and lose
    /// (conv-passes, one sitting, dw ms packed / in place: 256 -> 128 @24x32 14.4 / 19-21, 128 -> 128 @12x16 1.9-2.0 /
    /// 2.4-2.7, 64 -> 256 1x1 @24x32 1.5 / 1.6-1.7); short ones win (18 -> 18 @24x32 0.65 / 0.25, 64 -> 64 2.6 / 2.3-2.5,
    /// 18 -> 256 1x1 1.05-1.08 / 0.76-0.81, 128 -> 40 1x1 0.64-0.70 / 0.42-0.46).</summary>
    internal const int InPlaceMaxSide = 64;

    const int WgCo = 4, WgTaps = 6;

    /// <summary>Pixels per chunk of images (at least one image): enough vector steps per tile that the 24 lane sums per
    /// chunk stay a small share, few enough that a chunk's dy and padded input stay in L2.</summary>
    internal const int ChunkPixels = 1536;

    /// <summary>dw (Cout, CKK) = the sum over the batch described above, written (=).</summary>
    internal static unsafe void HostConvWeightGradInPlace(float* dw, float* dy, float* x, ConvGeom g)
    {
        int threads = Math.Max(1, PackedThreads), k = g.CKK;
        var l = new PhaseImages(g);
        float* xp = PadPhases(x, g, l, threads);
        int* off = TapOffsets(g, l);

        int chunk = Math.Clamp(ChunkPixels / g.OHW, 1, g.N), tapGroups = (k + WgTaps - 1) / WgTaps;
        float* pxp = xp;
        ForTasks(tapGroups, tapGroups < 2 * threads ? 1 : threads, (lo, hi) =>
        {
            int* t = stackalloc int[WgTaps];
            for (int n0 = 0; n0 < g.N; n0 += chunk)
            {
                int nb = Math.Min(chunk, g.N - n0);
                for (int tg = lo; tg < hi; tg++)
                {
                    int j0 = tg * WgTaps, taps = Math.Min(WgTaps, k - j0);
                    for (int i = 0; i < WgTaps; i++) t[i] = off[j0 + Math.Min(i, taps - 1)]; // past the last tap: repeats it, not stored
                    for (int co0 = 0; co0 < g.Cout; co0 += WgCo)
                        WeightGradTile(dw, dy, pxp, g, l, n0, nb, co0, j0, taps, t, store: n0 == 0);
                }
            }
        });
    }

    // dw[co0 .. co0 + 4, j0 .. j0 + taps] (=, or +=) the sums over images n0 .. n0 + nb; t: the 6 taps' offsets in a
    // padded image (rows past Cout repeat the last channel and are not stored)
    [SkipLocalsInit]
    static unsafe void WeightGradTile(float* dw, float* dy, float* xp, ConvGeom g, PhaseImages l, int n0, int nb,
                                      int co0, int j0, int taps, int* t, bool store)
    {
        int rows = Math.Min(WgCo, g.Cout - co0), ohw = g.OHW;
        long d1 = Math.Min(1, rows - 1) * (long)ohw, d2 = Math.Min(2, rows - 1) * (long)ohw, d3 = Math.Min(3, rows - 1) * (long)ohw;
        long t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5];
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        for (int n = n0; n < n0 + nb; n++)
        {
            float* dyn = dy + ((long)n * g.Cout + co0) * ohw;
            for (int oh = 0; oh < g.OH; oh++)
            {
                float* drow = dyn + oh * g.OW, xrow = xp + l.Corner(n, oh, 0);
                for (int ow = 0; ow < g.OW; ow += 16)
                {
                    float* d = drow + ow, xb = xrow + ow;
                    var y0 = Vector512.Load(d); var y1 = Vector512.Load(d + d1); var y2 = Vector512.Load(d + d2); var y3 = Vector512.Load(d + d3);
                    var v = Vector512.Load(xb + t0);
                    a00 = Avx512F.FusedMultiplyAdd(y0, v, a00); a10 = Avx512F.FusedMultiplyAdd(y1, v, a10);
                    a20 = Avx512F.FusedMultiplyAdd(y2, v, a20); a30 = Avx512F.FusedMultiplyAdd(y3, v, a30);
                    v = Vector512.Load(xb + t1);
                    a01 = Avx512F.FusedMultiplyAdd(y0, v, a01); a11 = Avx512F.FusedMultiplyAdd(y1, v, a11);
                    a21 = Avx512F.FusedMultiplyAdd(y2, v, a21); a31 = Avx512F.FusedMultiplyAdd(y3, v, a31);
                    v = Vector512.Load(xb + t2);
                    a02 = Avx512F.FusedMultiplyAdd(y0, v, a02); a12 = Avx512F.FusedMultiplyAdd(y1, v, a12);
                    a22 = Avx512F.FusedMultiplyAdd(y2, v, a22); a32 = Avx512F.FusedMultiplyAdd(y3, v, a32);
                    v = Vector512.Load(xb + t3);
                    a03 = Avx512F.FusedMultiplyAdd(y0, v, a03); a13 = Avx512F.FusedMultiplyAdd(y1, v, a13);
                    a23 = Avx512F.FusedMultiplyAdd(y2, v, a23); a33 = Avx512F.FusedMultiplyAdd(y3, v, a33);
                    v = Vector512.Load(xb + t4);
                    a04 = Avx512F.FusedMultiplyAdd(y0, v, a04); a14 = Avx512F.FusedMultiplyAdd(y1, v, a14);
                    a24 = Avx512F.FusedMultiplyAdd(y2, v, a24); a34 = Avx512F.FusedMultiplyAdd(y3, v, a34);
                    v = Vector512.Load(xb + t5);
                    a05 = Avx512F.FusedMultiplyAdd(y0, v, a05); a15 = Avx512F.FusedMultiplyAdd(y1, v, a15);
                    a25 = Avx512F.FusedMultiplyAdd(y2, v, a25); a35 = Avx512F.FusedMultiplyAdd(y3, v, a35);
                }
            }
        }
        var s = stackalloc float[WgCo * WgTaps];
        s[0] = Vector512.Sum(a00); s[1] = Vector512.Sum(a01); s[2] = Vector512.Sum(a02); s[3] = Vector512.Sum(a03); s[4] = Vector512.Sum(a04); s[5] = Vector512.Sum(a05);
        s[6] = Vector512.Sum(a10); s[7] = Vector512.Sum(a11); s[8] = Vector512.Sum(a12); s[9] = Vector512.Sum(a13); s[10] = Vector512.Sum(a14); s[11] = Vector512.Sum(a15);
        s[12] = Vector512.Sum(a20); s[13] = Vector512.Sum(a21); s[14] = Vector512.Sum(a22); s[15] = Vector512.Sum(a23); s[16] = Vector512.Sum(a24); s[17] = Vector512.Sum(a25);
        s[18] = Vector512.Sum(a30); s[19] = Vector512.Sum(a31); s[20] = Vector512.Sum(a32); s[21] = Vector512.Sum(a33); s[22] = Vector512.Sum(a34); s[23] = Vector512.Sum(a35);
        for (int i = 0; i < rows; i++)
        {
            float* o = dw + (long)(co0 + i) * g.CKK + j0;
            for (int j = 0; j < taps; j++) o[j] = store ? s[i * WgTaps + j] : o[j] + s[i * WgTaps + j];
        }
    }
}
