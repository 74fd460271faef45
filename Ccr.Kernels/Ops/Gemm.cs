using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>
/// Single-precision GEMM on row-major matrices: C (M, N) = alpha * op(A) op(B) + beta * C, where
/// op(A) is (M, K) and op(B) is (K, N); op transposes when asked (A stored (K, M), B stored (N, K)).
/// beta = 0 ignores C's old contents (NaN too). Batched entry: the same product for each of
/// <c>batch</c> matrices at element strides strideA / strideB / strideC (stride 0 shares a matrix).
/// CUDA variant: <see cref="ImplicitGemm"/> (padded, double-buffered shared tiles; fp32 with 4x4 outputs per
/// thread or TF32 on the tensor cores, per each call's <see cref="MathPrecision"/> argument; tile and K split from
/// <see cref="GemmTiles.Choose"/>). CPU variant: host SIMD with packed B panels, cache blocking, Parallel.For.
/// </summary>
internal static partial class Gemm
{
    // ---------------------------------------------------------------- CUDA variant: the implicit-GEMM kernels

    /// <summary>Sizes and element strides of one (batched) product. A(i, p) = a[offA + i*SAi + p*SAp],
    /// B(p, j) = b[offB + p*SBp + j*SBj]: one kernel serves all four transpose combinations.</summary>
    public struct Args
    {
        public int M, N, K;
        public int SAi, SAp, SBp, SBj;
        public long StrideA, StrideB, StrideC;
        public float Alpha, Beta;
    }

    /// <summary>A dense matrix operand at element strides: element (mn, k) of product z is
    /// src[z Stride + mn SMN + k SK] (A: SMN = SAi, SK = SAp; B read transposed: SMN = SBj, SK = SBp); k
    /// adjacent in memory (SK = 1). Offsets are 32-bit: the launcher checks that every element fits.</summary>
    public struct StridedK : IGemmOperand
    {
        public int Stride, SMN, SK;
        public readonly bool KFast => true;
        public readonly Gather Row(int z, int mn) => new() { Off = z * Stride + mn * SMN };
        public readonly Gather Col(int k) => new() { Off = k * SK };
        public readonly float Load(ArrayView<float> src, Gather row, Gather col) => row.H + col.H >= 0 ? src[row.Off + col.Off] : 0f;
        public readonly float LoadAny(ArrayView<float> src, Gather row, Gather col) => src[row.Off + col.Off];
    }

    /// <summary><see cref="StridedK"/> with mn adjacent in memory (SMN = 1): consecutive threads take consecutive mn.</summary>
    public struct StridedMN : IGemmOperand
    {
        public int Stride, SMN, SK;
        public readonly bool KFast => false;
        public readonly Gather Row(int z, int mn) => new() { Off = z * Stride + mn * SMN };
        public readonly Gather Col(int k) => new() { Off = k * SK };
        public readonly float Load(ArrayView<float> src, Gather row, Gather col) => row.H + col.H >= 0 ? src[row.Off + col.Off] : 0f;
        public readonly float LoadAny(ArrayView<float> src, Gather row, Gather col) => src[row.Off + col.Off];
    }

    /// <summary>C (M, N) of product z, row-major at element stride Stride: alpha v + beta C (beta = 0 ignores C).</summary>
    public struct ScaledOutput : IGemmOutput
    {
        public int N;
        public long Stride;
        public float Alpha, Beta;
        public readonly void Store(ArrayView<float> dst, ArrayView<float> bias, int z, int i, int j, float v)
        {
            long at = z * Stride + (long)i * N + j;
            dst[at] = Beta == 0f ? Alpha * v : Alpha * v + Beta * dst[at];
        }
    }

    internal static bool Host(Device d) => d.Variant == KernelVariant.Cpu && d.IsHostMemory;

    // ---------------------------------------------------------------- entry points

    /// <summary>C (M, N) = alpha * op(A) op(B) + beta * C. A is (M, K), or (K, M) with transA;
    /// B is (K, N), or (N, K) with transB.</summary>
    public static void Run(Device d, Buf<float> c, Buf<float> a, Buf<float> b, int m, int n, int k,
                           bool transA = false, bool transB = false, float alpha = 1f, float beta = 0f, GemmTile? tile = null,
                           MathPrecision precision = MathPrecision.Fp32) =>
        Batched(d, c, a, b, 1, m, n, k, 0, 0, 0, transA, transB, alpha, beta, tile, precision);

    /// <summary>For z in [0, batch): C_z = alpha * op(A_z) op(B_z) + beta * C_z, with A_z starting at
    /// element z * strideA of <paramref name="a"/> (likewise B, C). A stride of 0 shares one matrix.</summary>
    public static void Batched(Device d, Buf<float> c, Buf<float> a, Buf<float> b, int batch, int m, int n, int k,
                               long strideC, long strideA, long strideB,
                               bool transA = false, bool transB = false, float alpha = 1f, float beta = 0f,
                               GemmTile? tile = null, MathPrecision precision = MathPrecision.Fp32)
    {
        if (m < 0 || n < 0 || k < 0 || batch < 0)
            throw new ArgumentException($"gemm: negative size (batch {batch}, M {m}, N {n}, K {k})");
        if (m == 0 || n == 0 || batch == 0) return;
        if (batch > 1 && strideC < (long)m * n)
            throw new ArgumentException($"gemm: C stride {strideC} smaller than one (M {m}, N {n}) matrix: batches would overlap");
        Need("C", c.Length, strideC, batch, (long)m * n, m, n);
        if (k > 0)
        {
            Need(transA ? "A^T" : "A", a.Length, strideA, batch, (long)m * k, transA ? k : m, transA ? m : k);
            Need(transB ? "B^T" : "B", b.Length, strideB, batch, (long)k * n, transB ? n : k, transB ? k : n);
        }
        var g = new Args
        {
            M = m, N = n, K = k,
            SAi = transA ? 1 : k, SAp = transA ? m : 1,
            SBp = transB ? 1 : n, SBj = transB ? k : 1,
            StrideA = strideA, StrideB = strideB, StrideC = strideC, Alpha = alpha, Beta = beta,
        };
        if (Host(d)) { HostBatched(c, a, b, batch, g, transA, transB); return; }
        if ((long)Math.Max(0, batch - 1) * Math.Max(strideA, strideB) + (long)Math.Max(m, n) * Math.Max(k, 1) > int.MaxValue)
            throw new ArgumentException($"gemm: operands of batch {batch} at strides {strideA} / {strideB} are too large for the CUDA variant's 32-bit offsets");
        var sc = new ScaledOutput { N = n, Stride = strideC, Alpha = alpha, Beta = beta };
        // the operand types say which way each is contiguous (the load layout is compile-time): four combinations
        int sa = (int)strideA, sb = (int)strideB;
        bool aK = g.SAp == 1, bK = g.SBp == 1;
        if (aK && bK) ImplicitGemm.Run(d, c, a, b, null, new StridedK { Stride = sa, SMN = g.SAi, SK = g.SAp }, new StridedK { Stride = sb, SMN = g.SBj, SK = g.SBp }, sc, batch, m, n, k, tile, precision);
        else if (aK) ImplicitGemm.Run(d, c, a, b, null, new StridedK { Stride = sa, SMN = g.SAi, SK = g.SAp }, new StridedMN { Stride = sb, SMN = g.SBj, SK = g.SBp }, sc, batch, m, n, k, tile, precision);
        else if (bK) ImplicitGemm.Run(d, c, a, b, null, new StridedMN { Stride = sa, SMN = g.SAi, SK = g.SAp }, new StridedK { Stride = sb, SMN = g.SBj, SK = g.SBp }, sc, batch, m, n, k, tile, precision);
        else ImplicitGemm.Run(d, c, a, b, null, new StridedMN { Stride = sa, SMN = g.SAi, SK = g.SAp }, new StridedMN { Stride = sb, SMN = g.SBj, SK = g.SBp }, sc, batch, m, n, k, tile, precision);
    }

    static void Need(string what, long have, long stride, int batch, long one, int rows, int cols)
    {
        long need = (batch - 1) * stride + one;
        if (have < need)
            throw new ArgumentException($"gemm: {what} ({rows}, {cols}) x batch {batch} at stride {stride} needs {need} elements, buffer has {have}");
    }

    // ---------------------------------------------------------------- CPU variant (host SIMD)

    static unsafe void HostBatched(Buf<float> c, Buf<float> a, Buf<float> b, int batch, Args g, bool transA, bool transB)
    {
        float* pc = c.Ptr, pa = a.Ptr, pb = b.Ptr;
        Observe?.Invoke(new HostCall(batch, g.M, g.N, g.K, transA, transB, g.StrideA == 0, g.StrideB == 0));
        if (Packed) { HostPackedBatched(pc, pa, pb, batch, g, transA, transB); return; }
        for (int z = 0; z < batch; z++)
            Host(pc + z * g.StrideC, pa + z * g.StrideA, pb + z * g.StrideB, g.M, g.N, g.K, transA, transB, g.Alpha, g.Beta);
    }

    static readonly int VW = Vector<float>.Count;
    const int MR = 4, KC = 256, NC = 512;
    /// <summary>AVX-512: strips of 32 columns multiplied 8 rows at a time in 512-bit registers (16 accumulators).
    /// .NET keeps <see cref="Vector{T}"/> at 256 bits on such machines, which leaves half of each FMA unit idle
    /// (`Ccr.Bench cpu-peak`). Every output still sums its products in the same order as on the 256-bit
    /// path; only the columns of a partial last strip (32 wide here, 16 there) may scale by alpha with a
    /// different rounding (the partial strip adds alpha v unfused). Results stay deterministic.</summary>
    internal static bool Wide { get; set; } = Wide512Supported;
    internal static bool Wide512Supported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
    const int MRW = 8;

    /// <summary>Host GEMM on raw pointers (row-major, dense): C = alpha op(A) op(B) + beta C. The packed path
    /// (Gemm.Packed.cs) unless <see cref="Packed"/> is off; then the previous one: blocks of KC x NC of B are
    /// packed into strips of NR = 2 vectors (zero-padded) and shared out to the cores.</summary>
    public static unsafe void Host(float* c, float* a, float* b, int m, int n, int k,
                                   bool transA, bool transB, float alpha, float beta)
    {
        if (Packed) { HostPackedOne(c, a, b, m, n, k, transA, transB, alpha, beta, PackedThreads); return; }
        // beta first, so the blocked loop only ever adds
        // beta = 0 with work to do: the first K block stores instead of adding (no clearing pass over C)
        bool store0 = beta == 0f && k > 0 && alpha != 0f;
        if (beta == 0f && !store0) new Span<float>(c, checked(m * n)).Clear();
        else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(new Span<float>(c, m * n), beta, new Span<float>(c, m * n));
        if (k == 0 || alpha == 0f) return;
        int nr = Wide ? 32 : 2 * VW;
        int sAi = transA ? 1 : k, sAp = transA ? m : 1;
        // small M: A's block is small, so a deeper K block costs no cache and saves Parallel.For rounds
        int nc = Math.Min(NC, (n + nr - 1) / nr * nr), kc = Math.Min(m <= 64 ? 4 * KC : KC, k);
        float[] packArr = System.Buffers.ArrayPool<float>.Shared.Rent(kc * nc);
        try
        {
            fixed (float* pack = packArr)
            {
                float* pk = pack;
                for (int j0 = 0; j0 < n; j0 += nc)
                {
                    int jn = Math.Min(nc, n - j0);
                    int strips = (jn + nr - 1) / nr;
                    for (int p0 = 0; p0 < k; p0 += kc)
                    {
                        int pn = Math.Min(kc, k - p0);
                        PackB(pk, b, n, k, transB, p0, pn, j0, jn, nr);
                        float* aBlk = a + (long)p0 * sAp;
                        float* bBlk = transB ? null : b + (long)p0 * n;
                        long work = (long)m * jn * pn;
                        bool st = store0 && p0 == 0;
                        if (work < 1 << 18 || strips == 1)
                        {
                            for (int s = 0; s < strips; s++)
                                Strip(c, aBlk, pk, bBlk, m, n, pn, sAi, sAp, j0, jn, s, nr, alpha, st);
                        }
                        else
                        {
                            Parallel.For(0, strips, s => Strip(c, aBlk, pk, bBlk, m, n, pn, sAi, sAp, j0, jn, s, nr, alpha, st));
                        }
                    }
                }
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(packArr); }
    }

    // pack[s][p][0..nr) = B(p0 + p, j0 + s*nr + 0..nr), zero beyond N. Full strips of an untransposed
    // B are not packed: the micro-kernel reads them in place (kc rows of 64 B stay in L1), which
    // saves a pass over B when M is small (convs with few output channels).
    static unsafe void PackB(float* pack, float* b, int n, int k, bool transB, int p0, int pn, int j0, int jn, int nr)
    {
        int strips = (jn + nr - 1) / nr;
        for (int s = 0; s < strips; s++)
        {
            float* dst = pack + (long)s * pn * nr;
            int js = j0 + s * nr, w = Math.Min(nr, j0 + jn - js);
            if (!transB && w == nr) continue;
            if (!transB)
            {
                for (int p = 0; p < pn; p++)
                {
                    float* src = b + (long)(p0 + p) * n + js;
                    float* o = dst + p * nr;
                    if (w == nr) { for (int q = 0; q < nr; q += VW) *(Vector<float>*)(o + q) = *(Vector<float>*)(src + q); }
                    else { for (int q = 0; q < w; q++) o[q] = src[q]; for (int q = w; q < nr; q++) o[q] = 0f; }
                }
            }
            else
            {
                // B stored (N, K): row js+q of the storage is column js+q of B
                for (int q = 0; q < nr; q++)
                {
                    if (q < w)
                    {
                        float* src = b + (long)(js + q) * k + p0;
                        for (int p = 0; p < pn; p++) dst[p * nr + q] = src[p];
                    }
                    else for (int p = 0; p < pn; p++) dst[p * nr + q] = 0f;
                }
            }
        }
    }

    // C rows [0, m) x columns of strip s += alpha * A(:, p0..) * packed strip
    static unsafe void Strip(float* c, float* a, float* pack, float* bRows, int m, int n, int pn, int sAi, int sAp,
                             int j0, int jn, int s, int nr, float alpha, bool store)
    {
        if (Wide) StripWide(c, a, pack, bRows, m, n, pn, sAi, sAp, j0, jn, s, alpha, store);
        else Strip256(c, a, pack, bRows, m, n, pn, sAi, sAp, j0, jn, s, nr, alpha, store);
    }

    static unsafe void Strip256(float* c, float* a, float* pack, float* bRows, int m, int n, int pn, int sAi, int sAp,
                                int j0, int jn, int s, int nr, float alpha, bool store)
    {
        int js = j0 + s * nr, w = Math.Min(nr, j0 + jn - js);
        bool inPlace = bRows != null && w == nr;
        float* bs = inPlace ? bRows + js : pack + (long)s * pn * nr;
        int ldb = inPlace ? n : nr;
        var va = new Vector<float>(alpha);
        float* tmp = stackalloc float[MR * 2 * 16]; // MR x nr, nr <= 32 (AVX-512: VW = 16)
        for (int i0 = 0; i0 < m; i0 += MR)
        {
            int rows = Math.Min(MR, m - i0);
            // rows past M repeat the last valid row: computed, never stored
            float* a0 = a + (long)i0 * sAi;
            float* a1 = a + (long)Math.Min(i0 + 1, m - 1) * sAi;
            float* a2 = a + (long)Math.Min(i0 + 2, m - 1) * sAi;
            float* a3 = a + (long)Math.Min(i0 + 3, m - 1) * sAi;
            Vector<float> c00 = default, c01 = default, c10 = default, c11 = default;
            Vector<float> c20 = default, c21 = default, c30 = default, c31 = default;
            float* bp = bs;
            for (int p = 0; p < pn; p++, bp += ldb)
            {
                var b0 = *(Vector<float>*)bp;
                var b1 = *(Vector<float>*)(bp + VW);
                long off = (long)p * sAp;
                var x0 = new Vector<float>(a0[off]);
                var x1 = new Vector<float>(a1[off]);
                var x2 = new Vector<float>(a2[off]);
                var x3 = new Vector<float>(a3[off]);
                c00 = Vector.FusedMultiplyAdd(x0, b0, c00); c01 = Vector.FusedMultiplyAdd(x0, b1, c01);
                c10 = Vector.FusedMultiplyAdd(x1, b0, c10); c11 = Vector.FusedMultiplyAdd(x1, b1, c11);
                c20 = Vector.FusedMultiplyAdd(x2, b0, c20); c21 = Vector.FusedMultiplyAdd(x2, b1, c21);
                c30 = Vector.FusedMultiplyAdd(x3, b0, c30); c31 = Vector.FusedMultiplyAdd(x3, b1, c31);
            }
            if (w == nr)
            {
                float* r = c + (long)i0 * n + js;
                if (store)
                {
                    Put(r, c00, c01, va); if (rows > 1) Put(r + n, c10, c11, va);
                    if (rows > 2) Put(r + 2 * n, c20, c21, va); if (rows > 3) Put(r + 3 * n, c30, c31, va);
                }
                else
                {
                    Acc(r, c00, c01, va); if (rows > 1) Acc(r + n, c10, c11, va);
                    if (rows > 2) Acc(r + 2 * n, c20, c21, va); if (rows > 3) Acc(r + 3 * n, c30, c31, va);
                }
            }
            else
            {
                *(Vector<float>*)tmp = c00; *(Vector<float>*)(tmp + VW) = c01;
                *(Vector<float>*)(tmp + nr) = c10; *(Vector<float>*)(tmp + nr + VW) = c11;
                *(Vector<float>*)(tmp + 2 * nr) = c20; *(Vector<float>*)(tmp + 2 * nr + VW) = c21;
                *(Vector<float>*)(tmp + 3 * nr) = c30; *(Vector<float>*)(tmp + 3 * nr + VW) = c31;
                for (int i = 0; i < rows; i++)
                {
                    float* r = c + (long)(i0 + i) * n + js;
                    if (store) for (int q = 0; q < w; q++) r[q] = alpha * tmp[i * nr + q];
                    else for (int q = 0; q < w; q++) r[q] += alpha * tmp[i * nr + q];
                }
            }
        }
    }

    // Strip on AVX-512: 8 rows x 32 columns a micro-tile (16 zmm accumulators), each output's products summed
    // in the same order as Strip256
    static unsafe void StripWide(float* c, float* a, float* pack, float* bRows, int m, int n, int pn, int sAi, int sAp,
                                 int j0, int jn, int s, float alpha, bool store)
    {
        const int nr = 32;
        int js = j0 + s * nr, w = Math.Min(nr, j0 + jn - js);
        bool inPlace = bRows != null && w == nr;
        float* bs = inPlace ? bRows + js : pack + (long)s * pn * nr;
        int ldb = inPlace ? n : nr;
        var va = Vector512.Create(alpha);
        float* tmp = stackalloc float[MRW * nr];
        for (int i0 = 0; i0 < m; i0 += MRW)
        {
            int rows = Math.Min(MRW, m - i0);
            // rows past M repeat the last valid row: computed, never stored
            float* a0 = a + (long)i0 * sAi;
            float* a1 = a + (long)Math.Min(i0 + 1, m - 1) * sAi, a2 = a + (long)Math.Min(i0 + 2, m - 1) * sAi;
            float* a3 = a + (long)Math.Min(i0 + 3, m - 1) * sAi, a4 = a + (long)Math.Min(i0 + 4, m - 1) * sAi;
            float* a5 = a + (long)Math.Min(i0 + 5, m - 1) * sAi, a6 = a + (long)Math.Min(i0 + 6, m - 1) * sAi;
            float* a7 = a + (long)Math.Min(i0 + 7, m - 1) * sAi;
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
            float* bp = bs;
            for (int p = 0; p < pn; p++, bp += ldb)
            {
                var b0 = Vector512.Load(bp);
                var b1 = Vector512.Load(bp + 16);
                long off = (long)p * sAp;
                var x = Vector512.Create(a0[off]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(a1[off]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(a2[off]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(a3[off]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(a4[off]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(a5[off]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
                x = Vector512.Create(a6[off]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
                x = Vector512.Create(a7[off]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            }
            Vector512.Store(c00, tmp); Vector512.Store(c01, tmp + 16); Vector512.Store(c10, tmp + 32); Vector512.Store(c11, tmp + 48);
            Vector512.Store(c20, tmp + 64); Vector512.Store(c21, tmp + 80); Vector512.Store(c30, tmp + 96); Vector512.Store(c31, tmp + 112);
            Vector512.Store(c40, tmp + 128); Vector512.Store(c41, tmp + 144); Vector512.Store(c50, tmp + 160); Vector512.Store(c51, tmp + 176);
            Vector512.Store(c60, tmp + 192); Vector512.Store(c61, tmp + 208); Vector512.Store(c70, tmp + 224); Vector512.Store(c71, tmp + 240);
            for (int i = 0; i < rows; i++)
            {
                float* r = c + (long)(i0 + i) * n + js;
                float* t = tmp + i * nr;
                if (w == nr)
                {
                    // alpha v, or C + alpha v as one fused multiply-add: what the 256-bit path computes
                    var v0 = Vector512.Load(t); var v1 = Vector512.Load(t + 16);
                    if (store) { Vector512.Store(va * v0, r); Vector512.Store(va * v1, r + 16); }
                    else
                    {
                        Vector512.Store(Avx512F.FusedMultiplyAdd(va, v0, Vector512.Load(r)), r);
                        Vector512.Store(Avx512F.FusedMultiplyAdd(va, v1, Vector512.Load(r + 16)), r + 16);
                    }
                }
                else if (store) for (int q = 0; q < w; q++) r[q] = alpha * t[q];
                else for (int q = 0; q < w; q++) r[q] += alpha * t[q];
            }
        }
    }

    static unsafe void Put(float* r, Vector<float> v0, Vector<float> v1, Vector<float> alpha)
    {
        *(Vector<float>*)r = alpha * v0;
        *(Vector<float>*)(r + Vector<float>.Count) = alpha * v1;
    }

    static unsafe void Acc(float* r, Vector<float> v0, Vector<float> v1, Vector<float> alpha)
    {
        *(Vector<float>*)r = Vector.FusedMultiplyAdd(alpha, v0, *(Vector<float>*)r);
        *(Vector<float>*)(r + Vector<float>.Count) = Vector.FusedMultiplyAdd(alpha, v1, *(Vector<float>*)(r + Vector<float>.Count));
    }
}
