using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The conv forward on AVX-512 with B read in place from the zero-padded images, never packed (issue 20).
/// y (Cout, N OHW) = w (Cout, CKK) cols (CKK, N OHW) with the images side by side along N. A 32-column strip of B is
/// two runs of 16 output pixels (one row of 32, or two rows of 16), and its row p = (ci, kh, kw) is those runs shifted
/// by a fixed offset in the padded images (stride 1: ci plane + kh D wp + kw D; strided convs read phase planes,
/// <see cref="PhaseImages"/>): 16 contiguous floats each, so the micro-tile loads them where they lie, through a table
/// of the K offsets. The packed path copied those floats into strips first (a fifth of the
/// 256 -> 128 @24x32 forward). The image also holds a strip's B about three times denser than a packed strip (the
/// K x K taps of a row overlap), so one output row's B over a K block (some 50 channels x 3 rows, 20 KB) stays in L1
/// while every A panel of the block streams past it from L2.
/// Same packed A, K blocks and per-element arithmetic as the packed path (<see cref="HostConvForward"/>), so every
/// output is bitwise the same; threads split the strips, each output is one task's, so no sum depends on them.
/// </summary>
internal static partial class Gemm
{
    /// <summary>Conv forwards read B in place from the padded images where they can (default on; off: packed strips,
    /// kept reachable for the bitwise tests and for conv-passes' before / after).</summary>
    internal static bool DirectImageB { get; set; } = true;

    /// <summary>Whether <see cref="HostConvForward"/> reads this geometry's B in place: AVX-512 (the 12 x 32 tile), not
    /// a plain 1x1 GEMM, and output rows that split into whole runs of 16 pixels.</summary>
    internal static bool ReadsImageDirect(ConvGeom g) =>
        DirectImageB && Packed && Wide && !g.IsPointwise && g.OW % 16 == 0;

    [ThreadStatic] static int[]? offsetBuffer;

    /// <summary>The zero-padded images as the in-place paths read them: each (image, channel) plane padded by P is split
    /// into S x S phase planes (phase (r mod S, c mod S) holds padded rows r and columns c of that phase at (r / S, c / S)),
    /// so that tap (kh, kw) of output pixels ow .. ow + 15 is 16 contiguous floats at any stride: phase
    /// ((kh D) mod S, (kw D) mod S), row oh + kh D / S, columns ow + kw D / S on. Stride 1: one phase, the padded plane.</summary>
    readonly struct PhaseImages(ConvGeom g)
    {
        public readonly int Hpp = (g.H + 2 * g.P + g.S - 1) / g.S, Wpp = (g.W + 2 * g.P + g.S - 1) / g.S;
        public long Phase => (long)Hpp * Wpp;
        public long Plane => g.S * g.S * Phase;
        public long Image => g.Cin * Plane;
        // where output pixel (z, oh, ow)'s tap (0, 0) lies; off[p] adds tap p's
        public long Corner(int z, int oh, int ow) => z * Image + (long)oh * Wpp + ow;
    }

    // the images of x in the PhaseImages layout, in paddedBuffer (x itself where that layout is x: stride 1, no padding)
    static unsafe float* PadPhases(float* x, ConvGeom g, PhaseImages l, int threads)
    {
        if (g.S == 1 && g.P == 0) return x;
        float* xp = Buffer(ref paddedBuffer, g.N * l.Image);
        ForTasks(g.N * g.Cin, threads, (lo, hi) =>
        {
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odd = even + Vector512<int>.One;
            for (long t = lo; t < hi; t++)
            {
                float* dst = xp + t * l.Plane, src = x + t * g.HW;
                new Span<float>(dst, checked((int)l.Plane)).Clear();
                for (int h = 0; h < g.H; h++)
                {
                    int r = h + g.P;
                    float* row = src + (long)h * g.W, phases = dst + r % g.S * g.S * l.Phase + (long)(r / g.S) * l.Wpp;
                    if (g.S == 1) { new ReadOnlySpan<float>(row, g.W).CopyTo(new Span<float>(phases + g.P, g.W)); continue; }
                    int w = 0;
                    if (g.S == 2)
                        for (; w + 32 <= g.W; w += 32)
                        {
                            // 32 input columns: the 16 even ones to one column phase, the 16 odd ones to the other
                            var v0 = Vector512.Load(row + w); var v1 = Vector512.Load(row + w + 16);
                            int c0 = w + g.P, c1 = c0 + 1;
                            Vector512.Store(Avx512F.PermuteVar16x32x2(v0, even, v1), phases + (c0 & 1) * l.Phase + (c0 >> 1));
                            Vector512.Store(Avx512F.PermuteVar16x32x2(v0, odd, v1), phases + (c1 & 1) * l.Phase + (c1 >> 1));
                        }
                    for (; w < g.W; w++)
                    {
                        int c = w + g.P;
                        phases[c % g.S * l.Phase + c / g.S] = row[w];
                    }
                }
            }
        });
        return xp;
    }

    // off[p] for p = (ci, kh, kw): where tap p of an output pixel lies in the PhaseImages layout, from the pixel's corner
    static unsafe int* TapOffsets(ConvGeom g, PhaseImages l)
    {
        int k = g.CKK, kk = g.K * g.K;
        if (offsetBuffer == null || offsetBuffer.Length < k) offsetBuffer = GC.AllocateUninitializedArray<int>(k, pinned: true);
        int* off = (int*)Unsafe.AsPointer(ref offsetBuffer[0]);
        for (int p = 0; p < k; p++)
        {
            int rh = p % kk / g.K * g.D, rw = p % g.K * g.D;
            off[p] = checked((int)(p / kk * l.Plane + (rh % g.S * g.S + rw % g.S) * l.Phase + (long)(rh / g.S) * l.Wpp + rw / g.S));
        }
        return off;
    }

    // strips of 32 output pixels grouped so that a group's C (Cout x 32 x group floats) stays near 256 KB in L2 across
    // the K blocks, beside the A block and the group's input rows
    const int GroupFloats = 1 << 16;

    static unsafe void HostConvForwardDirect(float* y, float* w, float* x, ConvGeom g)
    {
        int m = g.Cout, k = g.CKK, threads = Math.Max(1, PackedThreads);
        Observe?.Invoke(new HostCall(g.N, m, g.OHW, k, false, false, true, false));
        float* a = PackAllA(Orient(y, w, null, m, g.OHW, k, false, false, swap: false), k);
        int kcMax = EvenKc(k, Blocking(MRWide, NRWide).KC), panels = (m + MRWide - 1) / MRWide;
        var l = new PhaseImages(g);
        float* xp = PadPhases(x, g, l, threads);
        int* off = TapOffsets(g, l);

        long halves = (long)g.N * g.OHW / 16; // runs of 16 output pixels, two to a strip
        int strips = checked((int)((halves + 1) / 2)), group = Math.Max(1, GroupFloats / (m * NRWide));
        ForTasks(strips, strips < 2 * threads ? 1 : threads, (lo, hi) =>
        {
            for (int s0 = lo; s0 < hi; s0 += group)
            {
                int s1 = Math.Min(hi, s0 + group);
                for (int p0 = 0; p0 < k; p0 += kcMax)
                {
                    int kc = Math.Min(kcMax, k - p0);
                    float* aBlk = a + (long)panels * MRWide * p0;
                    for (int s = s0; s < s1; s++)
                    {
                        Run(xp, y, g, l, 2L * s, out float* b0, out float* c0);
                        float* b1 = b0, c1 = null; // a lone last run: its second half reads the first's and is not stored
                        if (2L * s + 1 < halves) Run(xp, y, g, l, 2L * s + 1, out b1, out c1);
                        for (int q = 0; q < panels; q++)
                            Tile12x32Image(kc, aBlk + (long)q * MRWide * kc, off + p0, b0, b1, c0 + (long)q * MRWide * g.OHW,
                                c1 == null ? null : c1 + (long)q * MRWide * g.OHW, g.OHW, p0 == 0, Math.Min(MRWide, m - q * MRWide));
                    }
                }
            }
        });
    }

    // run h of 16 output pixels: its corner in the padded images (tap (0, 0) of its first pixel) and its first output
    static unsafe void Run(float* xp, float* y, ConvGeom g, PhaseImages l, long h, out float* b, out float* c)
    {
        long j = h * 16;
        int z = (int)(j / g.OHW), r = (int)(j - (long)z * g.OHW), oh = r / g.OW, ow = r - oh * g.OW;
        b = xp + l.Corner(z, oh, ow);
        c = y + ((long)z * g.Cout * g.OH + oh) * g.OW + ow;
    }

    // C rows (12 at most) of output runs c0, c1 (c1 null: a lone last run) = (store) or += the panel times B, where B row p
    // is the 16 floats at b0 + off[p] then the 16 at b1 + off[p]; the FMA order of Tile12x32, so the same sums
    [SkipLocalsInit]
    static unsafe void Tile12x32Image(int kc, float* ap, int* off, float* b0, float* b1, float* c0, float* c1, long rsC, bool store, int rows)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int p = 0; p < kc; p++, ap += MRWide)
        {
            int t = off[p];
            var v0 = Vector512.Load(b0 + t); var v1 = Vector512.Load(b1 + t);
            var x = Vector512.Create(ap[0]); c00 = Avx512F.FusedMultiplyAdd(x, v0, c00); c01 = Avx512F.FusedMultiplyAdd(x, v1, c01);
            x = Vector512.Create(ap[1]); c10 = Avx512F.FusedMultiplyAdd(x, v0, c10); c11 = Avx512F.FusedMultiplyAdd(x, v1, c11);
            x = Vector512.Create(ap[2]); c20 = Avx512F.FusedMultiplyAdd(x, v0, c20); c21 = Avx512F.FusedMultiplyAdd(x, v1, c21);
            x = Vector512.Create(ap[3]); c30 = Avx512F.FusedMultiplyAdd(x, v0, c30); c31 = Avx512F.FusedMultiplyAdd(x, v1, c31);
            x = Vector512.Create(ap[4]); c40 = Avx512F.FusedMultiplyAdd(x, v0, c40); c41 = Avx512F.FusedMultiplyAdd(x, v1, c41);
            x = Vector512.Create(ap[5]); c50 = Avx512F.FusedMultiplyAdd(x, v0, c50); c51 = Avx512F.FusedMultiplyAdd(x, v1, c51);
            x = Vector512.Create(ap[6]); c60 = Avx512F.FusedMultiplyAdd(x, v0, c60); c61 = Avx512F.FusedMultiplyAdd(x, v1, c61);
            x = Vector512.Create(ap[7]); c70 = Avx512F.FusedMultiplyAdd(x, v0, c70); c71 = Avx512F.FusedMultiplyAdd(x, v1, c71);
            x = Vector512.Create(ap[8]); c80 = Avx512F.FusedMultiplyAdd(x, v0, c80); c81 = Avx512F.FusedMultiplyAdd(x, v1, c81);
            x = Vector512.Create(ap[9]); c90 = Avx512F.FusedMultiplyAdd(x, v0, c90); c91 = Avx512F.FusedMultiplyAdd(x, v1, c91);
            x = Vector512.Create(ap[10]); ca0 = Avx512F.FusedMultiplyAdd(x, v0, ca0); ca1 = Avx512F.FusedMultiplyAdd(x, v1, ca1);
            x = Vector512.Create(ap[11]); cb0 = Avx512F.FusedMultiplyAdd(x, v0, cb0); cb1 = Avx512F.FusedMultiplyAdd(x, v1, cb1);
        }
        if (rows == MRWide && c1 != null)
        {
            Out(c0, c1, c00, c01, store); Out(c0 + rsC, c1 + rsC, c10, c11, store); Out(c0 + 2 * rsC, c1 + 2 * rsC, c20, c21, store);
            Out(c0 + 3 * rsC, c1 + 3 * rsC, c30, c31, store); Out(c0 + 4 * rsC, c1 + 4 * rsC, c40, c41, store);
            Out(c0 + 5 * rsC, c1 + 5 * rsC, c50, c51, store); Out(c0 + 6 * rsC, c1 + 6 * rsC, c60, c61, store);
            Out(c0 + 7 * rsC, c1 + 7 * rsC, c70, c71, store); Out(c0 + 8 * rsC, c1 + 8 * rsC, c80, c81, store);
            Out(c0 + 9 * rsC, c1 + 9 * rsC, c90, c91, store); Out(c0 + 10 * rsC, c1 + 10 * rsC, ca0, ca1, store);
            Out(c0 + 11 * rsC, c1 + 11 * rsC, cb0, cb1, store);
            return;
        }
        // a last panel of fewer rows, or a lone last run: through a stack copy, row by row
        var tmp = stackalloc Vector512<float>[2 * MRWide];
        tmp[0] = c00; tmp[1] = c01; tmp[2] = c10; tmp[3] = c11; tmp[4] = c20; tmp[5] = c21; tmp[6] = c30; tmp[7] = c31;
        tmp[8] = c40; tmp[9] = c41; tmp[10] = c50; tmp[11] = c51; tmp[12] = c60; tmp[13] = c61; tmp[14] = c70; tmp[15] = c71;
        tmp[16] = c80; tmp[17] = c81; tmp[18] = c90; tmp[19] = c91; tmp[20] = ca0; tmp[21] = ca1; tmp[22] = cb0; tmp[23] = cb1;
        for (int i = 0; i < rows; i++) Out(c0 + i * rsC, c1 == null ? null : c1 + i * rsC, tmp[2 * i], tmp[2 * i + 1], store);
    }

    // one row of a tile: its two runs stored, or added to C (the packed tile's fma(1, acc, C) rounds as acc + C)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Out(float* r0, float* r1, Vector512<float> v0, Vector512<float> v1, bool store)
    {
        if (store) Vector512.Store(v0, r0); else Vector512.Store(v0 + Vector512.Load(r0), r0);
        if (r1 == null) return;
        if (store) Vector512.Store(v1, r1); else Vector512.Store(v1 + Vector512.Load(r1), r1);
    }
}
