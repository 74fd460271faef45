using System.Numerics;
using System.Numerics.Tensors;
using ILGPU.Runtime;

namespace Ccr.Kernels.Ops;

/// <summary>Shape of one 2-D convolution (PyTorch's conv2d): x (N, Cin, H, W), w (Cout, Cin, K, K),
/// y (N, Cout, OH, OW) with OH = (H + 2P - D(K-1) - 1) / S + 1.</summary>
internal struct ConvGeom
{
    public int N, Cin, H, W, Cout, K, S, P, D, OH, OW;

    public readonly int HW => H * W;
    public readonly int OHW => OH * OW;
    /// <summary>Rows of the im2col matrix: Cin * K * K.</summary>
    public readonly int CKK => Cin * K * K;
    /// <summary>A 1x1, stride-1, unpadded conv is a plain GEMM on x: no im2col.</summary>
    public readonly bool IsPointwise => K == 1 && S == 1 && P == 0;

    /// <summary>Host code: the output columns [Lo, Hi) whose input column ow S - P + kw D lies in 0 .. W-1,
    /// for kernel column <paramref name="kw"/> (Hi >= Lo; an empty range has Hi == Lo). The im2col, col2im
    /// and image-packing loops copy that span and zero or skip the rest.</summary>
    public readonly (int Lo, int Hi) ValidOw(int kw)
    {
        int off = kw * D - P; // input column of ow = 0
        int lo = off >= 0 ? 0 : (-off + S - 1) / S;
        int hi = Math.Min(OW, W - off <= 0 ? 0 : (W - off - 1) / S + 1);
        return (lo, Math.Max(lo, hi));
    }

    /// <summary>Validates the shapes of x, w and the bias length (null: no bias); errors name both shapes.</summary>
    public static ConvGeom From(int[] x, int[] w, int? biasLength, int stride, int padding, int dilation)
    {
        string xs = "[" + string.Join(", ", x) + "]", ws = "[" + string.Join(", ", w) + "]";
        if (x.Length != 4) throw new ArgumentException($"conv2d: x must be (N, Cin, H, W), got {xs} (w {ws})");
        if (w.Length != 4) throw new ArgumentException($"conv2d: w must be (Cout, Cin, k, k), got {ws} (x {xs})");
        if (w[2] != w[3]) throw new ArgumentException($"conv2d: only square kernels, w is {ws}");
        if (x[1] != w[1]) throw new ArgumentException($"conv2d: x {xs} has {x[1]} channels but w {ws} expects {w[1]}");
        if (stride < 1 || padding < 0 || dilation < 1)
            throw new ArgumentException($"conv2d: stride {stride}, padding {padding}, dilation {dilation} (x {xs}, w {ws})");
        if (w[0] < 1 || w[2] < 1 || x[0] < 1 || x[1] < 1)
            throw new ArgumentException($"conv2d: empty x {xs} or w {ws}");
        var g = new ConvGeom
        {
            N = x[0], Cin = x[1], H = x[2], W = x[3], Cout = w[0], K = w[2], S = stride, P = padding, D = dilation,
        };
        int eff = dilation * (g.K - 1) + 1;
        g.OH = g.H + 2 * padding >= eff ? (g.H + 2 * padding - eff) / stride + 1 : 0;
        g.OW = g.W + 2 * padding >= eff ? (g.W + 2 * padding - eff) / stride + 1 : 0;
        if (g.OH < 1 || g.OW < 1)
            throw new ArgumentException($"conv2d: x {xs} with w {ws}, stride {stride}, padding {padding}, dilation {dilation} gives an empty output ({g.OH}x{g.OW})");
        if (biasLength is int bl && bl != g.Cout)
            throw new ArgumentException($"conv2d: bias has {bl} elements, w {ws} has {g.Cout} output channels");
        return g;
    }

    public readonly int[] OutShape => [N, Cout, OH, OW];
    public readonly long Macs => (long)N * Cout * OHW * CKK;
    public override readonly string ToString() => $"x[{N},{Cin},{H},{W}] w[{Cout},{Cin},{K},{K}] s{S} p{P} d{D}";
}

/// <summary>
/// 2-D convolution forward and backward. CUDA variant: implicit GEMMs that gather from NCHW directly
/// (Convolution.Implicit.cs; fp32 or TF32 per each call's <see cref="MathPrecision"/>). CPU variant (host SIMD code):
/// direct correlation for stride-1 convs with few channels where the GEMM below cannot read its B in place, else the
/// host GEMM: the forward takes its B straight from the input images (no column matrix: read in place from the padded
/// images, in phase planes when strided, for output rows of whole 16-pixel runs on AVX-512, Gemm.ImageDirect.cs; else packed from them,
/// Gemm.ImageB.cs), and so does a stride-1 input gradient, run as the forward conv of dy with the flipped weights; the
/// weight gradient packs cols^T from the padded images, or on AVX-512 reads them in place (dot products where dw is
/// short on one side, Gemm.WeightGradInPlace.cs; a product per tap on small planes, Gemm.WeightGradPerTap.cs);
/// strided input gradients go through im2col / col2im; 1x1
/// stride-1 convs skip im2col, and the batch is processed in chunks so the column buffer stays under
/// <see cref="ColsLimit"/> floats. Every function writes its output (=), activation and parameter
/// gradients alike; Ccr.Nn's Autograd.Accumulate does the adding. The optional <c>tile</c> of the CUDA
/// variant's entry points overrides <see cref="GemmTiles.Choose"/> (tests, verify, benchmarks); the CPU
/// variant ignores it.
/// </summary>
internal static partial class Convolution
{
    /// <summary>Largest im2col scratch buffer, in floats (64 MiB); at least one image is always done.</summary>
    public const long ColsLimit = 1L << 24;

    /// <summary>CPU forward packs the GEMM's B straight from the input images (default) or goes through im2col
    /// (kept reachable for tests, which pin the two bitwise equal, and for conv-passes' before/after).</summary>
    internal static bool PackFromImage { get; set; } = true;

    // ---------------------------------------------------------------- launchers

    /// <summary>y (N, Cout, OH, OW) = conv(x (N, Cin, H, W), w (Cout, Cin, K, K)) + bias (Cout).</summary>
    public static unsafe void Forward(Device d, Buf<float> y, Buf<float> x, Buf<float> w, Buf<float>? bias, ConvGeom g,
                                      GemmTile? tile = null, MathPrecision precision = MathPrecision.Fp32)
    {
        Check(g, y, "y", (long)g.N * g.Cout * g.OHW, x, "x", (long)g.N * g.Cin * g.HW, w, "w", (long)g.Cout * g.CKK);
        if (bias is { } bb) Launch.SameLength("conv2d", bb.Length, g.Cout, "bias and output channels");
        if (!Gemm.Host(d)) { ImplicitForward(d, y, x, w, bias, g, tile, precision); return; }
        PooledBlock? scratch = null;
        if (DirectForward(g)) Correlate(d, y.Ptr, g.Cout, g.OH, g.OW, x.Ptr, g.Cin, g.H, g.W, g.P, w.Ptr, g.N, g.K);
        else if (PackFromImage && Gemm.PacksImage(g)) Gemm.HostConvForward(y.Ptr, w.Ptr, x.Ptr, g);
        else ForChunks(d, g, out scratch, (n0, nb, cols) =>
        {
            var b = g.IsPointwise ? x.Slice(n0 * (long)g.Cin * g.HW, nb * (long)g.Cin * g.HW) : Im2col(cols, x, g, n0, nb);
            Gemm.Batched(d, y.Slice(n0 * (long)g.Cout * g.OHW, nb * (long)g.Cout * g.OHW), w, b, nb,
                g.Cout, g.OHW, g.CKK, (long)g.Cout * g.OHW, 0, (long)g.CKK * g.OHW);
        });
        scratch?.Dispose();
        if (bias is not { } bias1) return;
        var ys = y.Span; var bs = bias1.Span;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                var plane = ys.Slice((n * g.Cout + co) * g.OHW, g.OHW);
                TensorPrimitives.Add(plane, bs[co], plane);
            }
    }

    /// <summary>dx (N, Cin, H, W) = gradient of the conv with respect to x, given dy (N, Cout, OH, OW). Written (=).</summary>
    public static void BackwardInput(Device d, Buf<float> dx, Buf<float> dy, Buf<float> w, ConvGeom g, GemmTile? tile = null,
                                     MathPrecision precision = MathPrecision.Fp32)
    {
        Check(g, dy, "dy", (long)g.N * g.Cout * g.OHW, dx, "dx", (long)g.N * g.Cin * g.HW, w, "w", (long)g.Cout * g.CKK);
        if (!Gemm.Host(d)) { ImplicitBackwardInput(d, dx, dy, w, g, tile, precision); return; }
        if (DirectBackwardInput(g)) { HostBackwardInputDirect(d, dx, dy, w, g); return; }
        if (BackwardInputAsForward(g)) { HostBackwardInputAsForward(d, dx, dy, w, g); return; }
        // per image: dcols (CKK, OHW) = w^T (CKK, Cout) dy_n (Cout, OHW), then col2im. Tried: one GEMM over the chunk's
        // images side by side (N = nb OHW, as the weight gradient does along K): no faster at 24x32, and the extra
        // gather and parallel rounds cost 2-3x at 6x8 and below (conv-passes, 2026-12-06)
        ForChunks(d, g, out var scratch, (n0, nb, dcols) =>
        {
            var dyc = dy.Slice(n0 * (long)g.Cout * g.OHW, nb * (long)g.Cout * g.OHW);
            var target = g.IsPointwise ? dx.Slice(n0 * (long)g.Cin * g.HW, nb * (long)g.Cin * g.HW) : dcols;
            Gemm.Batched(d, target, w, dyc, nb, g.CKK, g.OHW, g.Cout, (long)g.CKK * g.OHW, 0, (long)g.Cout * g.OHW, transA: true);
            if (!g.IsPointwise) HostCol2im(dx, dcols, g, n0, nb, imageStride: (long)g.CKK * g.OHW, rowStride: g.OHW);
        });
        scratch?.Dispose();
    }

    /// <summary>dw (Cout, Cin, K, K) = sum over the batch of dy (Cout, OHW) cols^T (OHW, CKK). Written (=).
    /// Deterministic on both variants: the CUDA variant's K split is summed in slice order (no atomics).</summary>
    public static unsafe void BackwardWeight(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g, GemmTile? tile = null,
                                      MathPrecision precision = MathPrecision.Fp32)
    {
        Check(g, dy, "dy", (long)g.N * g.Cout * g.OHW, x, "x", (long)g.N * g.Cin * g.HW, dw, "dw", (long)g.Cout * g.CKK);
        if (!Gemm.Host(d)) { ImplicitBackwardWeight(d, dw, dy, x, g, tile, precision); return; }
        if (Gemm.ReadsWeightGradInPlace(g)) { Gemm.HostConvWeightGradInPlace(dw.Ptr, dy.Ptr, x.Ptr, g); return; }
        if (Gemm.ReadsWeightGradPerTap(g)) { Gemm.HostConvWeightGradPerTap(dw.Ptr, dy.Ptr, x.Ptr, g); return; }
        if (DirectForward(g)) { HostWeightGradDirect(d, dw, dy, x, g); return; }
        if (WeightGradientFromImage && Gemm.PacksImageTransposed(g, WeightChunk(g))) { HostWeightGradFromImage(d, dw, dy, x, g); return; }
        // one packed GEMM per chunk over the chunk's images laid side by side along K (the "K-concatenated"
        // layout, K = nb * OHW): dw (Cout, CKK) (+)= dy_cat (Cout, nb OHW) cols_cat (CKK, nb OHW)^T. A per-image
        // GEMM would have K = OHW, 12 at 3x4: C read and written once per 12 products. Sums: chunk by chunk,
        // inside a chunk the GEMM's K blocks in order, so independent of the thread count.
        ForChunks(d, g, out var scratch, (n0, nb, cols, dyCat) =>
        {
            int kCat = nb * g.OHW;
            GatherChunk(dyCat, dy, g.Cout, g.OHW, n0, nb);
            if (g.IsPointwise) GatherChunk(cols, x, g.Cin, g.HW, n0, nb);
            else HostIm2col(cols, x, g, n0, nb, imageStride: g.OHW, rowStride: kCat);
            Gemm.Run(d, dw, dyCat, cols, g.Cout, g.CKK, kCat, transB: true, beta: n0 > 0 ? 1f : 0f);
        }, catLayout: true);
        scratch?.Dispose();
    }

    /// <summary>The CPU weight gradient packs its B (cols^T) from the zero-padded inputs (on by default; off: from an
    /// im2col'd column matrix, kept reachable for the tests that pin the two bitwise equal and for conv-passes).</summary>
    internal static bool WeightGradientFromImage { get; set; } = true;

    // images per weight-gradient chunk: those whose column matrix fits ColsLimit, for both ways of packing B, so
    // their sums (chunk after chunk, K blocks from each chunk's start) are the same
    static int WeightChunk(ConvGeom g) => (int)Math.Clamp(ColsLimit / Math.Max(1, (long)g.CKK * g.OHW), 1, g.N);

    // per chunk: dy gathered side by side along K (as the im2col path does), the chunk's images copied into zero-padded
    // planes (nb x Cin x (H + 2P) x (W + 2P): 7 MB at 8 x 256 x 26 x 34, where the column matrix was 56 MB), then one GEMM
    static unsafe void HostWeightGradFromImage(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g)
    {
        if (WeightGradientPerImage(g)) { HostWeightGradPerImage(d, dw, dy, x, g); return; }
        int chunk = WeightChunk(g), hp = g.H + 2 * g.P, wp = g.W + 2 * g.P;
        // unpadded (1x1 convs among them): the chunk's images are their own padded copy
        long plane = (long)hp * wp, perX = g.P > 0 ? g.Cin * plane : 0, perY = (long)g.Cout * g.OHW;
        using var scratch = d.Pool.Rent(chunk * (perX + perY) * 4);
        var xPad = new Buf<float>(scratch, 0, chunk * perX);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, g.N - n0);
            var dyCat = new Buf<float>(scratch, chunk * perX, nb * perY);
            GatherChunk(dyCat, dy, g.Cout, g.OHW, n0, nb);
            float* px = x.Ptr + (long)n0 * g.Cin * g.HW, pp = g.P > 0 ? xPad.Ptr : px;
            if (g.P > 0) Parallel.For(0, nb * g.Cin, t =>
            {
                float* dst = pp + t * plane, src = px + (long)t * g.HW;
                new Span<float>(dst, checked((int)plane)).Clear();
                for (int h = 0; h < g.H; h++)
                    new ReadOnlySpan<float>(src + (long)h * g.W, g.W).CopyTo(new Span<float>(dst + (long)(h + g.P) * wp + g.P, g.W));
            });
            Gemm.HostConvWeightGrad(dw.Ptr, dyCat.Ptr, pp, g, nb, accumulate: n0 > 0);
        }
    }

    // A small dw over a long K (the stem: 64 x 27 over 8 x 3,072 pixels) split inside one product runs 48 K blocks of
    // three parallel rounds each for a few FMAs per round: such a product runs per image instead, each on one thread
    // into its own partial (images split over the threads), and the partials are added in image order, so the sums
    // do not depend on the thread count.
    internal static bool WeightGradientPerImage(ConvGeom g) => g.N > 1 && (long)g.Cout * g.CKK <= 4096 && g.OHW >= 1024;

    static unsafe void HostWeightGradPerImage(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g)
    {
        int hp = g.H + 2 * g.P, wp = g.W + 2 * g.P;
        long plane = (long)hp * wp, perX = g.Cin * plane, perW = (long)g.Cout * g.CKK;
        using var scratch = d.Pool.Rent(g.N * (perX + perW) * 4);
        float* pad = new Buf<float>(scratch, 0, g.N * perX).Ptr, partial = new Buf<float>(scratch, g.N * perX, g.N * perW).Ptr;
        float* px = x.Ptr, pdy = dy.Ptr;
        Parallel.For(0, g.N, z =>
        {
            for (int ci = 0; ci < g.Cin; ci++)
            {
                float* dst = pad + z * perX + ci * plane, src = px + ((long)z * g.Cin + ci) * g.HW;
                if (g.P > 0) new Span<float>(dst, checked((int)plane)).Clear();
                for (int h = 0; h < g.H; h++)
                    new ReadOnlySpan<float>(src + (long)h * g.W, g.W).CopyTo(new Span<float>(dst + (long)(h + g.P) * wp + g.P, g.W));
            }
            // dy of image z is already (Cout, OHW): the product's A as it stands
            Gemm.HostConvWeightGrad(partial + z * perW, pdy + (long)z * g.Cout * g.OHW, pad + z * perX, g, 1, accumulate: false, threads: 1);
        });
        var sum = new Span<float>(dw.Ptr, (int)perW);
        new ReadOnlySpan<float>(partial, (int)perW).CopyTo(sum);
        for (int z = 1; z < g.N; z++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(partial + z * perW, (int)perW), sum);
    }

    /// <summary>db (Cout) = sum of dy (N, Cout, OH, OW) over N, OH, OW. Written (=). The shared
    /// per-channel reduction (ordered, many groups per channel on a GPU; Reductions.cs).</summary>
    public static void BackwardBias(Device d, Buf<float> db, Buf<float> dy, ConvGeom g)
    {
        Launch.SameLength("conv2d backward bias", db.Length, g.Cout, "db and output channels");
        Launch.SameLength("conv2d backward bias", dy.Length, (long)g.N * g.Cout * g.OHW, $"dy and output {g}");
        Reductions.SumPerChannel(d, db, dy, g.N, g.Cout, g.OHW);
    }

    // ---------------------------------------------------------------- helpers

    static void Check(ConvGeom g, Buf<float> a, string an, long na, Buf<float> b, string bn, long nb, Buf<float> c, string cn, long nc)
    {
        Launch.SameLength("conv2d", a.Length, na, $"{an} buffer and {g}");
        Launch.SameLength("conv2d", b.Length, nb, $"{bn} buffer and {g}");
        Launch.SameLength("conv2d", c.Length, nc, $"{cn} buffer and {g}");
    }

    /// <summary>Runs <paramref name="body"/>(n0, nb, cols) over batch chunks whose im2col matrix fits
    /// <see cref="ColsLimit"/>; cols is a scratch window of nb * CKK * OHW floats (unused when pointwise).</summary>
    static void ForChunks(Device d, ConvGeom g, out PooledBlock? scratch, Action<int, int, Buf<float>> body) =>
        ForChunks(d, g, out scratch, (n0, nb, cols, _) => body(n0, nb, cols), catLayout: false);

    /// <summary><see cref="ForChunks(Device, ConvGeom, out PooledBlock?, Action{int, int, Buf{float}})"/> for the
    /// K-concatenated layout: cols (CKK, nb OHW) is scratch even when pointwise (x is gathered into it), and a
    /// second window dyCat (Cout, nb OHW) follows it.</summary>
    static void ForChunks(Device d, ConvGeom g, out PooledBlock? scratch, Action<int, int, Buf<float>, Buf<float>> body, bool catLayout)
    {
        long per = (long)g.CKK * g.OHW, perY = catLayout ? (long)g.Cout * g.OHW : 0;
        int chunk = (int)Math.Clamp(ColsLimit / Math.Max(1, per), 1, g.N);
        scratch = g.IsPointwise && !catLayout ? null : d.Pool.Rent(chunk * (per + perY) * 4);
        for (int n0 = 0; n0 < g.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, g.N - n0);
            var cols = scratch == null ? default : new Buf<float>(scratch, 0, nb * per);
            var dyCat = catLayout ? new Buf<float>(scratch!, chunk * per, nb * perY) : default;
            body(n0, nb, cols, dyCat);
        }
    }

    // dst (c, nb * plane) = src images n0 .. n0 + nb of (N, c, plane) side by side: row ch holds channel ch of
    // each image in batch order (the K-concatenated layout)
    static unsafe void GatherChunk(Buf<float> dst, Buf<float> src, int c, int plane, int n0, int nb)
    {
        float* pd = dst.Ptr, ps = src.Ptr;
        long ld = (long)nb * plane;
        void Row(int ch)
        {
            for (int n = 0; n < nb; n++)
                new ReadOnlySpan<float>(ps + ((long)(n0 + n) * c + ch) * plane, plane).CopyTo(new Span<float>(pd + ch * ld + (long)n * plane, plane));
        }
        // a small copy (under 256 KB: 72 x 8 x 48 floats at 6x8) costs less than a parallel round
        if ((long)c * ld < 1 << 16) for (int ch = 0; ch < c; ch++) Row(ch);
        else Parallel.For(0, c, Row);
    }

    static Buf<float> Im2col(Buf<float> cols, Buf<float> x, ConvGeom g, int n0, int nb)
    {
        HostIm2col(cols, x, g, n0, nb);
        return cols;
    }

    // ---------------------------------------------------------------- CPU variant (host code)

    static void HostIm2col(Buf<float> cols, Buf<float> x, ConvGeom g, int n0, int nb) =>
        HostIm2col(cols, x, g, n0, nb, imageStride: (long)g.CKK * g.OHW, rowStride: g.OHW);

    // row (ci, kh, kw) of image n at cols + n imageStride + row rowStride: per image (CKK, OHW) blocks
    // (imageStride CKK OHW, rowStride OHW) or the K-concatenated (CKK, nb OHW) (imageStride OHW, rowStride nb OHW)
    static unsafe void HostIm2col(Buf<float> cols, Buf<float> x, ConvGeom g, int n0, int nb, long imageStride, long rowStride)
    {
        float* pc = cols.Ptr, px = x.Ptr;
        Parallel.For(0, nb * g.Cin, t =>
        {
            int n = t / g.Cin, ci = t % g.Cin;
            float* img = px + ((long)(n0 + n) * g.Cin + ci) * g.HW;
            for (int kh = 0; kh < g.K; kh++)
                for (int kw = 0; kw < g.K; kw++)
                {
                    float* row = pc + n * imageStride + ((ci * g.K + kh) * g.K + kw) * rowStride;
                    int off = kw * g.D - g.P; // input column of ow = 0
                    var (lo, hi) = g.ValidOw(kw);
                    for (int oh = 0; oh < g.OH; oh++)
                    {
                        float* o = row + oh * g.OW;
                        int h = oh * g.S - g.P + kh * g.D;
                        if (h < 0 || h >= g.H) { new Span<float>(o, g.OW).Clear(); continue; }
                        float* src = img + h * g.W + off;
                        for (int ow = 0; ow < lo; ow++) o[ow] = 0f;
                        if (g.S == 1) new ReadOnlySpan<float>(src + lo, hi - lo).CopyTo(new Span<float>(o + lo, hi - lo));
                        else for (int ow = lo; ow < hi; ow++) o[ow] = src[ow * g.S];
                        for (int ow = hi; ow < g.OW; ow++) o[ow] = 0f;
                    }
                }
        });
    }

    /// <summary>Stride 1, no dilation, padding below k: dx is the "full" correlation of dy with the flipped
    /// weights, computed directly (no column matrix, no col2im).</summary>
    static bool DirectBackwardInput(ConvGeom g) => g.S == 1 && g.D == 1 && g.K > 1 && g.P <= g.K - 1 && g.Cout <= DirectMaxChannels
        && !(BackwardInputAsForward(g) && Gemm.ReadsImageDirect(Transposed(g)));

    // dx[n, ci, h, w] = sum over co, kh, kw of w[co, ci, kh, kw] * dy[n, co, h + P - kh, w + P - kw]: a correlation
    // of dy padded by K - 1 - P with the flipped, channel-transposed weights.
    static unsafe void HostBackwardInputDirect(Device d, Buf<float> dx, Buf<float> dy, Buf<float> w, ConvGeom g)
    {
        using var wt = FlippedWeights(d, w, g);
        Correlate(d, dx.Ptr, g.Cin, g.H, g.W, dy.Ptr, g.Cout, g.OH, g.OW, g.K - 1 - g.P, new Buf<float>(wt, 0, w.Length).Ptr, g.N, g.K);
    }

    /// <summary>The CPU input gradient of a stride-1 conv by the forward's packed path (on by default; off: im2col's
    /// dcols + col2im, kept reachable for tests and conv-passes' before / after).</summary>
    internal static bool InputGradientAsForward { get; set; } = true;

    /// <summary>Stride 1, no dilation, padding below k: dx is the forward conv of dy (Cout channels, OH x OW, padded
    /// K - 1 - P) with the flipped weights (Cin, Cout, K, K), whose output is H x W; when that forward packs its B
    /// from the image, dx needs no column matrix and no col2im (which wrote and re-read 8 x 2304 x 768 floats, 56 MB,
    /// at 256 -> 128 @24x32).</summary>
    internal static bool BackwardInputAsForward(ConvGeom g) =>
        InputGradientAsForward && g.S == 1 && g.D == 1 && g.K > 1 && g.P <= g.K - 1 && Gemm.PacksImage(Transposed(g));

    // the geometry of dx = conv(dy, flipped w): Cout input channels at OH x OW, Cin output channels at H x W
    static ConvGeom Transposed(ConvGeom g) => new()
    {
        N = g.N, Cin = g.Cout, H = g.OH, W = g.OW, Cout = g.Cin, K = g.K, S = 1, P = g.K - 1 - g.P, D = 1, OH = g.H, OW = g.W,
    };

    static unsafe void HostBackwardInputAsForward(Device d, Buf<float> dx, Buf<float> dy, Buf<float> w, ConvGeom g)
    {
        using var wt = FlippedWeights(d, w, g);
        Gemm.HostConvForward(dx.Ptr, new Buf<float>(wt, 0, w.Length).Ptr, dy.Ptr, Transposed(g));
    }

    // wt (Cin, Cout, K, K)[ci, co, kh, kw] = w (Cout, Cin, K, K)[co, ci, K-1-kh, K-1-kw], in a pooled block
    static unsafe PooledBlock FlippedWeights(Device d, Buf<float> w, ConvGeom g)
    {
        int kk = g.K * g.K;
        var block = d.Pool.Rent(w.Length * 4);
        float* wt = new Buf<float>(block, 0, w.Length).Ptr, ws = w.Ptr;
        for (int co = 0; co < g.Cout; co++)
            for (int ci = 0; ci < g.Cin; ci++)
            {
                float* src = ws + ((long)co * g.Cin + ci) * kk, dst = wt + ((long)ci * g.Cout + co) * kk;
                for (int j = 0; j < kk; j++) dst[j] = src[kk - 1 - j];
            }
        return block;
    }

    /// <summary>Most channels (in and out) a stride-1 conv may have to take the direct correlations of the CPU variant.
    /// 32: 18-channel convs run faster direct, 36 and 64 on the packed GEMM that packs from the images (conv-passes,
    /// 2026-12-06: 64 -> 64 @24x32 forward 11 ms direct vs 5 packed; 36 -> 36 @12x16 all three passes 3.4 vs 1.9 ms).
    /// Where the GEMM reads B in place from the padded images (AVX-512, rows of whole 16-pixel runs:
    /// <see cref="Gemm.ReadsImageDirect"/>), the GEMM takes every channel count: 18 -> 18 @24x32 forward 0.16-0.18 ms
    /// there against 0.57-0.67 direct, dx 0.17-0.19 against 0.51-0.66, dw 0.64-0.71 against 0.77-0.93.</summary>
    internal static int DirectMaxChannels { get; set; } = 32;

    /// <summary>Forward by direct correlation (stride 1, no dilation, few channels): no column matrix.</summary>
    static bool DirectForward(ConvGeom g) => g.S == 1 && g.D == 1 && g.K > 1 && g.Cout <= DirectMaxChannels && g.Cin <= DirectMaxChannels
        && !(PackFromImage && Gemm.PacksImage(g) && Gemm.ReadsImageDirect(g));

    // out (N, co, ho, wo) = sum over i, kh, kw of wt[o, i, kh*K + kw] * in_padded[n, i, h + kh, w + kw], where
    // in (N, ci, hi, wi) is first copied into zero-padded planes at offset (pad, pad); the planes are wide enough
    // that a row tile never reads past its row, so the inner loop has no bounds tests. A register tile is 3
    // output channels x 2 vectors of one output row (6 accumulators), sharing each input load between them.
    static unsafe void Correlate(Device d, float* pout, int co, int ho, int wo, float* pin, int ci, int hi, int wi,
                                 int pad, float* pw, int batch, int k)
    {
        int vw = Vector<float>.Count, nr = 2 * vw;
        int wr = (wo + nr - 1) / nr * nr, hp = ho + k - 1, wp = wr + k - 1;
        long plane = (long)hp * wp;
        using var scratch = d.Pool.Rent(batch * ci * plane * 4);
        float* pp = new Buf<float>(scratch, 0, batch * ci * plane).Ptr;
        Parallel.For(0, batch * ci, t =>
        {
            float* dst = pp + t * plane, src = pin + (long)t * hi * wi;
            new Span<float>(dst, checked((int)plane)).Clear();
            for (int r = 0; r < hi; r++)
                new ReadOnlySpan<float>(src + (long)r * wi, wi).CopyTo(new Span<float>(dst + (long)(r + pad) * wp + pad, wi));
        });
        const int CB = 3, HB = 4;
        int cob = (co + CB - 1) / CB, hb = (ho + HB - 1) / HB, kk = k * k;
        Parallel.For(0, batch * cob * hb, t =>
        {
            int h0 = t % hb * HB, cb = t / hb % cob, n = t / hb / cob;
            int o0 = cb * CB, no = Math.Min(CB, co - o0), o1 = Math.Min(o0 + 1, co - 1), o2 = Math.Min(o0 + 2, co - 1);
            float* tmp = stackalloc float[CB * 32];
            for (int h = h0; h < Math.Min(ho, h0 + HB); h++)
                for (int w0 = 0; w0 < wo; w0 += nr)
                {
                    Vector<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default;
                    for (int i = 0; i < ci; i++)
                    {
                        float* pl = pp + (n * ci + i) * plane + (long)h * wp + w0;
                        float* k0 = pw + ((long)o0 * ci + i) * kk, k1 = pw + ((long)o1 * ci + i) * kk, k2 = pw + ((long)o2 * ci + i) * kk;
                        for (int kh = 0; kh < k; kh++)
                        {
                            float* row = pl + (long)kh * wp;
                            for (int kw = 0; kw < k; kw++)
                            {
                                var y0 = *(Vector<float>*)(row + kw);
                                var y1 = *(Vector<float>*)(row + kw + vw);
                                int j = kh * k + kw;
                                var x0 = new Vector<float>(k0[j]);
                                a00 = Vector.FusedMultiplyAdd(x0, y0, a00); a01 = Vector.FusedMultiplyAdd(x0, y1, a01);
                                var x1 = new Vector<float>(k1[j]);
                                a10 = Vector.FusedMultiplyAdd(x1, y0, a10); a11 = Vector.FusedMultiplyAdd(x1, y1, a11);
                                var x2 = new Vector<float>(k2[j]);
                                a20 = Vector.FusedMultiplyAdd(x2, y0, a20); a21 = Vector.FusedMultiplyAdd(x2, y1, a21);
                            }
                        }
                    }
                    *(Vector<float>*)tmp = a00; *(Vector<float>*)(tmp + vw) = a01;
                    *(Vector<float>*)(tmp + nr) = a10; *(Vector<float>*)(tmp + nr + vw) = a11;
                    *(Vector<float>*)(tmp + 2 * nr) = a20; *(Vector<float>*)(tmp + 2 * nr + vw) = a21;
                    int cnt = Math.Min(nr, wo - w0);
                    for (int c = 0; c < no; c++)
                        new ReadOnlySpan<float>(tmp + c * nr, cnt).CopyTo(
                            new Span<float>(pout + ((long)(n * co + o0 + c) * ho + h) * wo + w0, cnt));
                }
        });
    }

    // dw[co, ci, kh, kw] = sum over n, oh of dot(dy[n, co, oh, :], x_padded[n, ci, oh + kh, kw :]): dot products of
    // dy rows with shifted rows of the padded input, no column matrix. dy rows are copied with a zero tail to a
    // whole number of vectors, which also zeroes the products with the padded input's extra columns. A tile is
    // 3 output channels x 3 kernel columns (9 accumulators); the whole batch sums in registers.
    static unsafe void HostWeightGradDirect(Device d, Buf<float> dw, Buf<float> dy, Buf<float> x, ConvGeom g)
    {
        int vw = Vector<float>.Count, k = g.K;
        int wr = (g.OW + vw - 1) / vw * vw, hp = g.OH + k - 1, wp = wr + k - 1;
        long xplane = (long)hp * wp, yplane = (long)g.OH * wr, nx = g.N * g.Cin * xplane, ny = g.N * g.Cout * yplane;
        using var scratch = d.Pool.Rent((nx + ny) * 4);
        float* xp = new Buf<float>(scratch, 0, nx).Ptr, yp = new Buf<float>(scratch, nx, ny).Ptr;
        float* px = x.Ptr, py = dy.Ptr, pdw = dw.Ptr;
        Parallel.For(0, g.N * (g.Cin + g.Cout), t =>
        {
            if (t < g.N * g.Cin)
            {
                float* dst = xp + t * xplane, src = px + (long)t * g.HW;
                new Span<float>(dst, checked((int)xplane)).Clear();
                for (int r = 0; r < g.H; r++)
                    new ReadOnlySpan<float>(src + (long)r * g.W, g.W).CopyTo(new Span<float>(dst + (long)(r + g.P) * wp + g.P, g.W));
            }
            else
            {
                int u = t - g.N * g.Cin;
                float* dst = yp + u * yplane, src = py + (long)u * g.OHW;
                for (int r = 0; r < g.OH; r++)
                {
                    new ReadOnlySpan<float>(src + (long)r * g.OW, g.OW).CopyTo(new Span<float>(dst + (long)r * wr, g.OW));
                    new Span<float>(dst + (long)r * wr + g.OW, wr - g.OW).Clear();
                }
            }
        });
        const int TB = 3;
        int cob = (g.Cout + TB - 1) / TB, kwb = (k + TB - 1) / TB;
        Parallel.For(0, cob * g.Cin * k * kwb, q =>
        {
            // co block outermost: neighbouring tiles share dy's rows
            int kw0 = q % kwb * TB, kh = q / kwb % k, ci = q / kwb / k % g.Cin, co0 = q / kwb / k / g.Cin * TB;
            int nco = Math.Min(TB, g.Cout - co0), nkw = Math.Min(TB, k - kw0);
            int co1 = Math.Min(co0 + 1, g.Cout - 1), co2 = Math.Min(co0 + 2, g.Cout - 1);
            int kw1 = Math.Min(kw0 + 1, k - 1), kw2 = Math.Min(kw0 + 2, k - 1);
            Vector<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
            Vector<float> c20 = default, c21 = default, c22 = default;
            for (int n = 0; n < g.N; n++)
                for (int oh = 0; oh < g.OH; oh++)
                {
                    float* a0 = yp + ((long)(n * g.Cout + co0) * g.OH + oh) * wr;
                    float* a1 = yp + ((long)(n * g.Cout + co1) * g.OH + oh) * wr;
                    float* a2 = yp + ((long)(n * g.Cout + co2) * g.OH + oh) * wr;
                    float* b = xp + (n * g.Cin + ci) * xplane + (long)(oh + kh) * wp;
                    float* b0 = b + kw0, b1 = b + kw1, b2 = b + kw2;
                    for (int p = 0; p < wr; p += vw)
                    {
                        var x0 = *(Vector<float>*)(a0 + p); var x1 = *(Vector<float>*)(a1 + p); var x2 = *(Vector<float>*)(a2 + p);
                        var y0 = *(Vector<float>*)(b0 + p); var y1 = *(Vector<float>*)(b1 + p); var y2 = *(Vector<float>*)(b2 + p);
                        c00 = Vector.FusedMultiplyAdd(x0, y0, c00); c01 = Vector.FusedMultiplyAdd(x0, y1, c01); c02 = Vector.FusedMultiplyAdd(x0, y2, c02);
                        c10 = Vector.FusedMultiplyAdd(x1, y0, c10); c11 = Vector.FusedMultiplyAdd(x1, y1, c11); c12 = Vector.FusedMultiplyAdd(x1, y2, c12);
                        c20 = Vector.FusedMultiplyAdd(x2, y0, c20); c21 = Vector.FusedMultiplyAdd(x2, y1, c21); c22 = Vector.FusedMultiplyAdd(x2, y2, c22);
                    }
                }
            float* sum = stackalloc float[TB * TB];
            sum[0] = Vector.Sum(c00); sum[1] = Vector.Sum(c01); sum[2] = Vector.Sum(c02);
            sum[3] = Vector.Sum(c10); sum[4] = Vector.Sum(c11); sum[5] = Vector.Sum(c12);
            sum[6] = Vector.Sum(c20); sum[7] = Vector.Sum(c21); sum[8] = Vector.Sum(c22);
            for (int i = 0; i < nco; i++)
                for (int j = 0; j < nkw; j++)
                    pdw[(((long)(co0 + i) * g.Cin + ci) * k + kh) * k + kw0 + j] = sum[i * TB + j];
        });
    }

    // dx images n0 .. n0 + nb = the sum of their columns' entries; row (ci, kh, kw) of image n at dcols + n imageStride
    // + row rowStride (the layouts of HostIm2col). Each (image, channel) plane adds its K x K rows in order.
    static unsafe void HostCol2im(Buf<float> dx, Buf<float> dcols, ConvGeom g, int n0, int nb, long imageStride, long rowStride)
    {
        float* pd = dx.Ptr, pc = dcols.Ptr;
        Parallel.For(0, nb * g.Cin, t =>
        {
            int n = t / g.Cin, ci = t % g.Cin;
            float* img = pd + ((long)(n0 + n) * g.Cin + ci) * g.HW;
            new Span<float>(img, g.HW).Clear();
            for (int kh = 0; kh < g.K; kh++)
                for (int kw = 0; kw < g.K; kw++)
                {
                    float* row = pc + n * imageStride + ((ci * g.K + kh) * g.K + kw) * rowStride;
                    int off = kw * g.D - g.P; // input column of ow = 0
                    var (lo, hi) = g.ValidOw(kw);
                    if (hi == lo) continue;
                    for (int oh = 0; oh < g.OH; oh++)
                    {
                        int h = oh * g.S - g.P + kh * g.D;
                        if (h < 0 || h >= g.H) continue;
                        float* dst = img + h * g.W + off;
                        float* o = row + oh * g.OW;
                        if (g.S == 1)
                        {
                            var ds = new Span<float>(dst + lo, hi - lo);
                            TensorPrimitives.Add(ds, new ReadOnlySpan<float>(o + lo, hi - lo), ds);
                        }
                        else for (int ow = lo; ow < hi; ow++) dst[ow * g.S] += o[ow];
                    }
                }
        });
    }
}
