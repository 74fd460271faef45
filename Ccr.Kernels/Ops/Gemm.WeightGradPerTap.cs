using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The wide conv weight gradient on AVX-512 as one product per kernel tap, B read in place from a channels-last copy
/// of the padded input (issue 20): for tap t = (kh, kw), dw_t (Cout, Cin) = dy (Cout, N OHW) x_t (N OHW, Cin), where
/// row p = (n, oh, ow) of x_t is the Cin channels of padded pixel (oh S + kh D, ow S + kw D) of image n: contiguous in a
/// (N, H + 2P, W + 2P, Cin) copy, so a 32-channel strip row is two vectors at a per-pixel offset (the forward's in-place
/// micro-tile, <see cref="Tile12x32Image"/>, with the offset table over pixels instead of taps). The im2col-shaped GEMM
/// gathered cols^T 8 floats at a time from NCHW images instead, 2304 x 6144 of them at 256 -> 128 @24x32. dy is
/// packed once into A panels and serves all K x K taps. Sums: each dw element over the pixels in K blocks in order,
/// p in order inside, by one task (threads split whole tiles), so the same on any thread count.
/// </summary>
internal static partial class Gemm
{
    /// <summary>Wide weight gradients run per tap from the channels-last copy (default on; off: the GEMM on gathered
    /// cols^T, kept reachable for its bitwise tests and for conv-passes' before / after).</summary>
    internal static bool WeightGradientPerTap { get; set; } = true;

    /// <summary>AVX-512, input channels in whole 16-channel runs, output planes of at most <see cref="PerTapMaxPlane"/>
    /// pixels, and a dw not taken by the dot products (<see cref="ReadsWeightGradInPlace"/>).</summary>
    internal static bool ReadsWeightGradPerTap(ConvGeom g) =>
        WeightGradientPerTap && Packed && Wide && g.Cin % 16 == 0 && g.OHW <= PerTapMaxPlane && !ReadsWeightGradInPlace(g);

    /// <summary>256: small planes gain (conv-passes, three alternated runs, dw ms gathered / per tap: 144 @3x4
    /// 0.41-0.43 / 0.22-0.25, 256 -> 128 @6x8 1.18-1.37 / 0.83-0.98, 128 @12x16 1.79-2.06 / 1.46-1.80, 256 -> 128 @12x16
    /// 3.4-3.9 / 3.1-3.6); at 24x32 neither wins (256 -> 128 12.7-15.4 / 14.1-16.0; 64 -> 64 s2 @48x64 2.7-2.9 /
    /// 2.8-3.4), both A and B then streaming from L2 through twelve K blocks.</summary>
    internal const int PerTapMaxPlane = 256;

    [ThreadStatic] static float[]? tapBuffer;

    /// <summary>dw (Cout, CKK) = the sum over the batch described above, written (=).</summary>
    internal static unsafe void HostConvWeightGradPerTap(float* dw, float* dy, float* x, ConvGeom g)
    {
        int threads = Math.Max(1, PackedThreads), m = g.Cout, ci = g.Cin, kk = g.K * g.K;
        int hp = g.H + 2 * g.P, wp = g.W + 2 * g.P, k = checked(g.N * g.OHW);
        long image = (long)hp * wp * ci;
        Observe?.Invoke(new HostCall(kk, m, ci, k, false, false, false, false));

        // x channels last and zero-padded: xt[n, r, c, :] = x[n, :, r - P, c - P]; only the border is cleared
        float* xt = Buffer(ref paddedBuffer, g.N * image);
        ForTasks(g.N * hp, threads, (lo, hi) =>
        {
            var idx = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * g.HW;
            for (int t = lo; t < hi; t++)
            {
                int n = t / hp, r = t % hp, h = r - g.P;
                float* row = xt + n * image + (long)r * wp * ci;
                if (h < 0 || h >= g.H) { new Span<float>(row, wp * ci).Clear(); continue; }
                new Span<float>(row, g.P * ci).Clear();
                new Span<float>(row + (long)(g.P + g.W) * ci, g.P * ci).Clear();
                float* src = x + (long)n * ci * g.HW + (long)h * g.W;
                for (int w = 0; w < g.W; w++)
                {
                    float* o = row + (long)(w + g.P) * ci;
                    for (int c = 0; c < ci; c += 8) Vector256.Store(Avx2.GatherVector256(src + (long)c * g.HW + w, idx, 4), o + c);
                }
            }
        });

        // A: dy as (Cout, N OHW) in 12-row panels, K block by K block (PackAllA's layout), gathered 4 rows at a time
        int kcMax = EvenKc(k, Blocking(MRWide, NRWide).KC), panels = (m + MRWide - 1) / MRWide;
        float* a = Buffer(ref sharedBuffer, (long)panels * MRWide * k);
        ForTasks(panels, threads, (lo, hi) =>
        {
            var idx = Vector128.Create(0, 1, 2, 3) * g.OHW;
            for (int q = lo; q < hi; q++)
            {
                int rows = Math.Min(MRWide, m - q * MRWide);
                for (int p0 = 0; p0 < k; p0 += kcMax)
                {
                    int kc = Math.Min(kcMax, k - p0);
                    float* panel = a + (long)panels * MRWide * p0 + (long)q * MRWide * kc;
                    for (int p = 0; p < kc; p++)
                    {
                        int n = (p0 + p) / g.OHW, pix = (p0 + p) - n * g.OHW;
                        float* src = dy + ((long)n * m + q * MRWide) * g.OHW + pix, o = panel + p * MRWide;
                        if (rows == MRWide)
                            for (int r = 0; r < MRWide; r += 4) Vector128.Store(Avx2.GatherVector128(src + (long)r * g.OHW, idx, 4), o + r);
                        else
                            for (int r = 0; r < MRWide; r++) o[r] = r < rows ? src[(long)r * g.OHW] : 0f;
                    }
                }
            }
        });

        // where pixel p's channels start in xt (tap (0, 0)); tap t adds ((kh D) wp + kw D) Cin
        if (offsetBuffer == null || offsetBuffer.Length < k) offsetBuffer = GC.AllocateUninitializedArray<int>(k, pinned: true);
        int* off = (int*)Unsafe.AsPointer(ref offsetBuffer[0]);
        for (int p = 0; p < k; p++)
        {
            int n = p / g.OHW, oh = p % g.OHW / g.OW, ow = p % g.OW;
            off[p] = checked((int)(n * image + ((long)oh * g.S * wp + (long)ow * g.S) * ci));
        }

        // C per tap (K K, Cout, Cin), then laid out as dw (Cout, Cin, K, K)
        float* c = Buffer(ref tapBuffer, (long)kk * m * ci);
        int strips = (ci + NRWide - 1) / NRWide;
        for (int p0 = 0; p0 < k; p0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - p0);
            float* aBlk = a + (long)panels * MRWide * p0;
            ForTasks(kk * strips, threads, (lo, hi) =>
            {
                for (int task = lo; task < hi; task++)
                {
                    int t = task / strips, j0 = task % strips * NRWide;
                    float* b0 = xt + ((long)(t / g.K) * g.D * wp + t % g.K * g.D) * ci + j0;
                    bool two = j0 + 16 < ci; // a last strip of 16 channels: one run, its second half not stored
                    float* b1 = two ? b0 + 16 : b0, ct = c + (long)t * m * ci + j0;
                    for (int q = 0; q < panels; q++)
                        Tile12x32Image(kc, aBlk + (long)q * MRWide * kc, off + p0, b0, b1, ct + (long)q * MRWide * ci,
                            two ? ct + (long)q * MRWide * ci + 16 : null, ci, p0 == 0, Math.Min(MRWide, m - q * MRWide));
                }
            });
        }
        ForTasks(m, threads, (lo, hi) =>
        {
            for (int co = lo; co < hi; co++)
                for (int i = 0; i < ci; i++)
                {
                    float* o = dw + ((long)co * ci + i) * kk;
                    for (int t = 0; t < kk; t++) o[t] = c[((long)t * m + co) * ci + i];
                }
        });
    }
}
