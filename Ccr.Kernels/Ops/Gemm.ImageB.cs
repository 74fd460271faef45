using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ccr.Kernels.Ops;

/// <summary>The B operand of a conv product read straight from input images (implicit im2col). Forward:
/// B(p, j) = x[ci, oh S - P + kh D, ow S - P + kw D] (0 outside the image) for p = (ci, kh, kw), j = (oh, ow) of
/// one image. Weight gradient (<see cref="Transposed"/>): B(p, j) = cols^T, p = (n, oh, ow) over a chunk's images
/// side by side, j = (ci, kh, kw), read from the chunk zero-padded by P on every side (so no bounds tests).
/// Default (null image): B is an ordinary strided matrix.</summary>
internal readonly unsafe struct ImageB(float* image, ConvGeom g, bool transposed = false, bool padded = false)
{
    public readonly float* Image = image;
    public readonly ConvGeom G = g;
    public readonly bool Transposed = transposed;
    /// <summary>Forward: Image holds the images zero-padded by P on every side (N, Cin, H + 2P, W + 2P).</summary>
    public readonly bool Padded = padded;
    public bool On => Image != null;
}

/// <summary>
/// The conv forward on the packed GEMM without the column matrix (issue 20): y_n (Cout, OHW) = w (Cout, CKK)
/// cols_n (CKK, OHW), where each B strip is packed from the image itself. The im2col path wrote the whole
/// chunk's cols (8 x 2304 x 768 floats, 56 MB at 256 -> 128 @24x32) to memory and the GEMM then read it back
/// to pack it; here one image (256 x 24 x 32, 768 KB) stays in L2 while its strips are packed. The packed
/// values, blocks and micro-kernels are the im2col path's, so every output is bitwise the same.
/// </summary>
internal static partial class Gemm
{
    /// <summary>Whether the conv forward on this geometry packs B from the image (else im2col + GEMM): the
    /// packed path, no swap of the operands (the swap would pack the image as A), and a real im2col.</summary>
    internal static bool PacksImage(ConvGeom g) => Packed && !g.IsPointwise && (Concatenates(g) || !Swaps(g.Cout, g.OHW, g.CKK));

    /// <summary>Convs whose output per image (Cout x OHW) is at most this many floats run the batch as one product,
    /// images side by side along N (<see cref="HostConvForwardConcat"/>): there a product per image is small enough
    /// that its packing and tile edges cost as much as its FMAs (N = 48 at 6x8: a 32 + 16 tile pair; N = 12 at 3x4: a
    /// C^T scattered one float at a time). 16,384 (64 KB): 36 -> 36 @12x16 (all passes 0.54 -> 0.30 ms), 144 @3x4
    /// (forward 1.2 -> 0.4 ms) and the 6x8 planes concatenate; 128 -> 128 @12x16, slower so (2.1 -> 2.6 ms), does not.</summary>
    internal static int ConcatMaxOutputs { get; set; } = 16384;

    static bool Concatenates(ConvGeom g) => g.N > 1 && (long)g.Cout * g.OHW <= ConcatMaxOutputs;

    // per calling thread: the (Cout, N OHW) output of a concatenated product before it is laid out as (N, Cout, OHW)
    [ThreadStatic] static float[]? concatBuffer, paddedBuffer;

    /// <summary>y (N, Cout, OHW) = w (Cout, CKK) im2col(x_n) for every image, written (=). The weights are packed
    /// once for the batch; the images split over the threads as <see cref="HostPackedBatched"/> splits a batch
    /// (whole products per thread, so no sum depends on the thread count).</summary>
    internal static unsafe void HostConvForward(float* y, float* w, float* x, ConvGeom g)
    {
        if (ReadsImageDirect(g)) { HostConvForwardDirect(y, w, x, g); return; }
        if (Concatenates(g)) { HostConvForwardConcat(y, w, x, g); return; }
        int m = g.Cout, n = g.OHW, k = g.CKK, batch = g.N, threads = Math.Max(1, PackedThreads);
        Observe?.Invoke(new HostCall(batch, m, n, k, false, false, true, false));
        var o = Orient(y, w, null, m, n, k, false, false, swap: false);
        float* aPre = batch > 1 ? PackAllA(o, k) : null;
        void One(int z, int inner)
        {
            float* yz = y + (long)z * m * n;
            if (!Prepare(yz, m, n, k, 1f, 0f, out bool store0)) return;
            var img = new ImageB(x + (long)z * g.Cin * g.HW, g);
            HostPacked(Orient(yz, w, null, m, n, k, false, false, swap: false), k, 1f, store0, inner, aPre, null, img);
        }
        if (batch == 1 || threads == 1 || batch % threads != 0 && batch < 4 * threads)
        {
            for (int z = 0; z < batch; z++) One(z, threads);
            return;
        }
        ForTasks(batch, threads, (lo, hi) => { for (int z = lo; z < hi; z++) One(z, 1); });
    }

    /// <summary>y (N, Cout, OHW) for small planes: one product c (Cout, N OHW) = w (Cout, CKK) cols_cat (CKK, N OHW), the
    /// images side by side along N (B strips packed from the images, a strip may span several), split over the threads
    /// inside; then c is laid out as y. Each output sums the same products in the same K blocks as a product per image.</summary>
    static unsafe void HostConvForwardConcat(float* y, float* w, float* x, ConvGeom g)
    {
        int m = g.Cout, n = g.N * g.OHW, k = g.CKK;
        Observe?.Invoke(new HostCall(1, m, n, k, false, false, false, false));
        float* c = Buffer(ref concatBuffer, (long)m * n);
        // the images zero-padded first (small: 8 x 256 x 8 x 10 floats at 6x8), so a strip row's output-row segments
        // (several per row of 32 columns at OW 8 or 4) are plain copies without bounds or clamps
        int hp = g.H + 2 * g.P, wp = g.W + 2 * g.P;
        float* xp = Buffer(ref paddedBuffer, (long)g.N * g.Cin * hp * wp);
        for (long t = 0; t < (long)g.N * g.Cin; t++)
        {
            float* dst = xp + t * hp * wp, src = x + t * g.HW;
            if (g.P > 0) new Span<float>(dst, hp * wp).Clear();
            for (int h = 0; h < g.H; h++)
                new ReadOnlySpan<float>(src + (long)h * g.W, g.W).CopyTo(new Span<float>(dst + (long)(h + g.P) * wp + g.P, g.W));
        }
        if (Prepare(c, m, n, k, 1f, 0f, out bool store0))
            HostPacked(Orient(c, w, null, m, n, k, false, false, swap: false), k, 1f, store0, Math.Max(1, PackedThreads), null, null,
                new ImageB(xp, g, padded: true));
        for (int z = 0; z < g.N; z++)
            for (int co = 0; co < m; co++)
                new ReadOnlySpan<float>(c + (long)co * n + (long)z * g.OHW, g.OHW).CopyTo(new Span<float>(y + ((long)z * m + co) * g.OHW, g.OHW));
    }

    /// <summary>Whether the conv weight gradient over chunks of <paramref name="chunk"/> images packs B from the padded
    /// images (<see cref="HostConvWeightGrad"/>): the packed path, AVX2 gathers, no swap of the operands.</summary>
    internal static bool PacksImageTransposed(ConvGeom g, int chunk) =>
        Packed && Avx2.IsSupported && !Swaps(g.Cout, g.CKK, chunk * g.OHW);

    /// <summary>dw (Cout, CKK) (=, or += when <paramref name="accumulate"/>) dy_cat (Cout, nb OHW) cols_cat^T, on
    /// <paramref name="threads"/> threads (0: <see cref="PackedThreads"/>), for the nb
    /// images of one chunk: dyCat holds their dy side by side along K, xPad their inputs (nb, Cin, H + 2P, W + 2P)
    /// zero-padded. The same packed values, K blocks and micro-kernels as the GEMM on an im2col'd cols_cat (whose
    /// B is packed by gathers from a 56 MB matrix at 256 -> 128 @24x32), so the sums are bitwise that path's.</summary>
    internal static unsafe void HostConvWeightGrad(float* dw, float* dyCat, float* xPad, ConvGeom g, int nb, bool accumulate, int threads = 0)
    {
        int m = g.Cout, n = g.CKK, k = nb * g.OHW;
        Observe?.Invoke(new HostCall(1, m, n, k, false, true, false, false));
        if (!Prepare(dw, m, n, k, 1f, accumulate ? 1f : 0f, out bool store0)) return;
        HostPacked(Orient(dw, dyCat, null, m, n, k, false, true, swap: false), k, 1f, store0, threads > 0 ? threads : Math.Max(1, PackedThreads),
            null, null, new ImageB(xPad, g, transposed: true));
    }

    // strip[p][q] = xPad[n, ci, oh S + kh D, ow S + kw D] for pixel p0 + p = (n, oh, ow) of the chunk and column
    // j0 + q = (ci, kh, kw), zero for q >= cols: one strip row is nr floats at fixed offsets (per strip) from the
    // pixel's corner, so 8 of them per AVX2 gather; the offsets of the padding columns repeat the last real one
    // and those columns are zeroed after.
    [SkipLocalsInit]
    static unsafe void PackImageBT(float* dst, ImageB src, int p0, int kc, int j0, int cols, int nr)
    {
        var g = src.G;
        int wp = g.W + 2 * g.P, kk = g.K * g.K;
        long plane = (long)(g.H + 2 * g.P) * wp, image = g.Cin * plane;
        int* off = stackalloc int[nr];
        for (int q = 0; q < nr; q++)
        {
            int j = j0 + Math.Min(q, cols - 1), ci = j / kk, kh = j % kk / g.K, kw = j % g.K;
            off[q] = (int)(ci * plane + (long)kh * g.D * wp + kw * g.D);
        }
        int n = p0 / g.OHW, r = p0 - n * g.OHW, oh = r / g.OW, ow = r - oh * g.OW;
        for (int p = 0; p < kc; p++)
        {
            float* corner = src.Image + n * image + (long)oh * g.S * wp + (long)ow * g.S, o = dst + (long)p * nr;
            for (int q = 0; q < nr; q += 8) Vector256.Store(Avx2.GatherVector256(corner, Vector256.Load(off + q), 4), o + q);
            if (++ow == g.OW) { ow = 0; if (++oh == g.OH) { oh = 0; n++; } }
        }
        if (cols < nr)
            for (int p = 0; p < kc; p++) new Span<float>(dst + (long)p * nr + cols, nr - cols).Clear();
    }

    // dst[t] = src[t stride] for t < count: 8 at a time by AVX2 gathers (a strided conv's rows), the rest one by one
    static unsafe void CopyStrided(float* src, int stride, float* dst, int count)
    {
        int t = 0;
        if (Avx2.IsSupported && count >= 8)
        {
            var idx = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * stride;
            for (; t + 8 <= count; t += 8) Vector256.Store(Avx2.GatherVector256(src + (long)t * stride, idx, 4), dst + t);
        }
        for (; t < count; t++) dst[t] = src[(long)t * stride];
    }

    // strip[p][q] = B(p0 + p, j0 + q) from zero-padded images, zero for q >= cols: each output-row segment of the strip
    // starts at a fixed offset from (ci, kh, kw)'s corner of the padded plane, found once per strip; per p and segment one
    // contiguous copy (stride 1) of len floats, as PackImageB's values (the padding reads the zeros it would have written)
    [SkipLocalsInit]
    static unsafe void PackPaddedB(float* dst, ImageB src, int p0, int kc, int j0, int cols, int nr)
    {
        var g = src.G;
        int hp = g.H + 2 * g.P, wp = g.W + 2 * g.P;
        long plane = (long)hp * wp;
        long* segOff = stackalloc long[nr];
        int* segLen = stackalloc int[nr];
        int segs = 0;
        for (int q = 0; q < cols; segs++)
        {
            int j = j0 + q, z = j / g.OHW, r = j - z * g.OHW, oh = r / g.OW, ow = r - oh * g.OW, len = Math.Min(g.OW - ow, cols - q);
            segOff[segs] = z * g.Cin * plane + (long)oh * g.S * wp + (long)ow * g.S;
            segLen[segs] = len;
            q += len;
        }
        int kk = g.K * g.K, ci = p0 / kk, kh = p0 % kk / g.K, kw = p0 % g.K;
        for (int p = 0; p < kc; p++)
        {
            float* o = dst + (long)p * nr, corner = src.Image + ci * plane + (long)kh * g.D * wp + kw * g.D;
            for (int sg = 0; sg < segs; sg++)
            {
                float* from = corner + segOff[sg];
                int len = segLen[sg], t = 0;
                if (g.S == 1)
                {
                    for (; t + 8 <= len; t += 8) Vector256.Store(Vector256.Load(from + t), o + t);
                    if (t + 4 <= len) { Vector128.Store(Vector128.Load(from + t), o + t); t += 4; }
                    for (; t < len; t++) o[t] = from[t];
                }
                else CopyStrided(from, g.S, o, len);
                o += len;
            }
            for (int q = cols; q < nr; q++) dst[(long)p * nr + q] = 0f;
            if (++kw == g.K) { kw = 0; if (++kh == g.K) { kh = 0; ci++; } }
        }
    }

    // strip[p][q] = B(p0 + p, j0 + q) of the image's im2col matrix for q < cols, zero for cols..nr (j past OHW: the
    // next image's, for the images side by side). Columns j0 .. j0 + cols cover one or more output-row segments (one
    // at OW = 32, two at OW = 16, eight at OW = 4), found once
    // per strip; per p and segment the valid ow range is copied from the input row and the padding columns are
    // zeroed, as HostIm2col does per row. (ci, kh, kw) of p steps along instead of being divided out per row.
    [SkipLocalsInit]
    static unsafe void PackImageB(float* dst, ImageB src, int p0, int kc, int j0, int cols, int nr)
    {
        var g = src.G;
        int* segOh = stackalloc int[nr], segOw = stackalloc int[nr], segLen = stackalloc int[nr];
        long* segImage = stackalloc long[nr]; // offset of the segment's image (j past OHW: the next image, side by side)
        int segs = 0;
        for (int q = 0; q < cols; segs++)
        {
            int j = j0 + q, z = j / g.OHW, r = j - z * g.OHW, oh = r / g.OW, ow = r - oh * g.OW, len = Math.Min(g.OW - ow, cols - q);
            segOh[segs] = oh; segOw[segs] = ow; segLen[segs] = len; segImage[segs] = (long)z * g.Cin * g.HW;
            q += len;
        }
        // each kernel column's valid output columns, once per strip (ValidOw divides: per p it cost more than the copy)
        int* loK = stackalloc int[g.K], hiK = stackalloc int[g.K];
        for (int t = 0; t < g.K; t++) (loK[t], hiK[t]) = g.ValidOw(t);
        int kk = g.K * g.K, ci = p0 / kk, kh = p0 % kk / g.K, kw = p0 % g.K;
        for (int p = 0; p < kc; p++)
        {
            float* o = dst + (long)p * nr, plane = src.Image + (long)ci * g.HW;
            int off = kw * g.D - g.P, lo = loK[kw], hi = hiK[kw]; // off: input column of ow = 0
            for (int sg = 0; sg < segs; sg++)
            {
                int ow = segOw[sg], len = segLen[sg], h = segOh[sg] * g.S - g.P + kh * g.D;
                float* seg = o - ow; // seg[t] is ow = t of this segment's output row
                if (h < 0 || h >= g.H) { new Span<float>(seg + ow, len).Clear(); o += len; continue; }
                float* row = plane + segImage[sg] + (long)h * g.W + off;
                int a = Math.Clamp(lo, ow, ow + len), b = Math.Clamp(hi, a, ow + len);
                for (int t = ow; t < a; t++) seg[t] = 0f;
                if (g.S == 1 && b - a >= 8)
                {
                    // whole vectors, the last one overlapping the one before (31 valid columns: 4 copies, no scalar tail)
                    int t = a;
                    for (; t + 8 <= b; t += 8) Vector256.Store(Vector256.Load(row + t), seg + t);
                    if (t < b) Vector256.Store(Vector256.Load(row + b - 8), seg + b - 8);
                }
                else if (g.S == 1) for (int t = a; t < b; t++) seg[t] = row[t];
                else CopyStrided(row + (long)a * g.S, g.S, seg + a, b - a);
                for (int t = b; t < ow + len; t++) seg[t] = 0f;
                o += len;
            }
            for (int q = cols; q < nr; q++) dst[(long)p * nr + q] = 0f;
            if (++kw == g.K) { kw = 0; if (++kh == g.K) { kh = 0; ci++; } }
        }
    }
}
