using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ccr.Kernels.Ops;

/// <summary>
/// The CPU variant's packed GEMM (BLIS-style, issue 20). For each K block (KC deep at most, the blocks of one product
/// of even depth): A (M, KC) is packed into
/// panels of MR rows (panel[p][r] = A(i0 + r, p0 + p), zero rows past M), then for each N block of NC,
/// B (KC, NC) into strips of NR columns (strip[p][q] = B(p0 + p, j0 + q), zero columns past N). The
/// micro-kernel multiplies one MR-row panel by one NR-column strip into MR x NR accumulators held in
/// registers, reading both operands contiguously whatever the transposes were. Loop order inside a block
/// (the BLIS one, seen from row-major C): an A panel (MR x KC, 24 KB at 12 x 512) stays in L1 while the
/// B strips of the block stream from L2 (KC x NC sized to half of it).
/// Threads: where there are strips enough and the A block fits half of L2, each thread packs its own range of a
/// block's strips and runs every A panel against each (the fused N split: no packing round, no B read across the
/// cores); else the strips are packed in one round and the tiles split M first.
/// Determinism: every output sums its K blocks in order and, inside a block, p in order; threads only
/// split the (M block, strip range) tiles of a block, or whole products of a batch, so the result does not
/// depend on the thread count.
/// </summary>
internal static partial class Gemm
{
    /// <summary>Packed path on (default) or the previous unpacked strips (kept reachable for the
    /// before/after benchmark, `Ccr.Bench cpu-peak --shapes`).</summary>
    internal static bool Packed { get; set; } = true;

    /// <summary>Sees every CPU-variant <see cref="Batched"/> / <see cref="Run"/> call before it runs: `Ccr.Bench cpu-peak
    /// --shapes` collects the paper network's GEMMs with it. Null (no cost) otherwise.</summary>
    internal static Action<HostCall>? Observe { get; set; }

    /// <summary>Threads the packed path splits a block (or a batch) over; tests pin 1, 2 and 3 to check determinism.</summary>
    internal static int PackedThreads { get; set; } = Environment.ProcessorCount;

    // micro-tile: 12 x 32 in 512-bit registers (24 accumulators + 2 B vectors + 1 broadcast of the 32 zmm),
    // 6 x 2 vectors of Vector<T> otherwise (12 accumulators: fits the 16 ymm of an AVX2 machine)
    const int MRWide = 12, NRWide = 32, MRNarrow = 6;
    static int NRNarrow => 2 * Vector<float>.Count;

    /// <summary>One host call as <see cref="Observe"/> sees it: a batch of products of one shape (A or B shared
    /// by the batch when its stride is 0).</summary>
    internal readonly record struct HostCall(int Batch, int M, int N, int K, bool TransA, bool TransB, bool SharedA, bool SharedB);

    /// <summary>One product as the packed loops see it: C(i, j) = c[i RsC + j CsC], A(i, p) = a[i SAi + p SAp],
    /// B(p, j) = b[p SBp + j SBj], M x N x K.</summary>
    unsafe readonly struct Operands(float* c, long rsC, long csC, float* a, long sAi, long sAp, float* b, long sBp, long sBj, int m, int n)
    {
        public readonly float* C = c, A = a, B = b;
        public readonly long RsC = rsC, CsC = csC, SAi = sAi, SAp = sAp, SBp = sBp, SBj = sBj;
        public readonly int M = m, N = n;
    }

    // a short N pads the NR-wide strips (N = 12 in a 32-wide tile: 63% of the FMAs wasted): then C^T =
    // op(B)^T op(A)^T is computed instead, whose rows are C's columns, when that saves at least 10% of the time,
    // counting the FMAs padded tiles run (one k of an output: 1/32 cycle at 2 FMAs of 16 lanes) and, for C^T,
    // an output scattered one float at a time per K block (~1.5 cycles, i.e. 48 k's worth)
    static bool Swaps(int m, int n, int k)
    {
        int mr = Wide ? MRWide : MRNarrow, nr = Wide ? NRWide : NRNarrow;
        long kBlocks = (k + Blocking(mr, nr).KC - 1) / Blocking(mr, nr).KC;
        double normal = (double)PaddedN(m, mr) * PaddedN(n, nr) * k, swapped = (double)PaddedN(n, mr) * PaddedN(m, nr) * k + 48.0 * m * n * kBlocks;
        return swapped < 0.9 * normal;
    }

    // columns a 32-wide strip set computes: a last strip of <= 16 runs the 16-wide tile
    static long PaddedN(int x, int nr) => nr == NRWide && x % nr is > 0 and <= 16 ? x / nr * nr + 16 : Up(x, nr);

    static unsafe Operands Orient(float* c, float* a, float* b, int m, int n, int k, bool transA, bool transB, bool swap)
    {
        long sAi = transA ? 1 : k, sAp = transA ? m : 1, sBp = transB ? 1 : n, sBj = transB ? k : 1;
        return swap ? new Operands(c, 1, n, b, sBj, sBp, a, sAp, sAi, n, m) : new Operands(c, n, 1, a, sAi, sAp, b, sBp, sBj, m, n);
    }

    static long Up(int x, int to) => (long)(x + to - 1) / to * to;

    // K blocks of even depth (a multiple of 8, at most kcMax): K = 1,152 as 576 + 576, not 512 + 512 + 128, whose
    // last block reads and writes C and packs B for a quarter of the FMAs. Every pass over K uses the same blocks.
    // conv-passes, min of 6: 64 -> 64 @24x32 (K 576: 512 + 64 before) forward 2.33 -> 2.02 ms; 6x8 and 3x4 unchanged.
    static int EvenKc(int k, int kcMax)
    {
        if (k <= kcMax) return kcMax;
        int blocks = (k + kcMax - 1) / kcMax;
        return Math.Min(kcMax, ((k + blocks - 1) / blocks + 7) / 8 * 8);
    }

    // Batched products: the images of a conv chunk are small GEMMs (e.g. 72 x 48 x 648 at the network's lowest
    // resolution) that share the weights. The shared operand is packed once for the whole batch (repacking it
    // per image cost about as much as the image's FMAs), and the batch is split over the threads, one whole
    // product each (each owns its C: the thread count changes no sum); a batch that does not split evenly runs
    // its products one after the other, each split inside.
    static unsafe void HostPackedBatched(float* c, float* a, float* b, int batch, Args g, bool transA, bool transB)
    {
        int threads = Math.Max(1, PackedThreads);
        bool swap = Swaps(g.M, g.N, g.K), work = g.K > 0 && g.Alpha != 0f;
        float* aPre = null, bPre = null;
        if (batch > 1 && work)
        {
            var o = Orient(c, a, b, g.M, g.N, g.K, transA, transB, swap);
            long strideA = swap ? g.StrideB : g.StrideA, strideB = swap ? g.StrideA : g.StrideB;
            if (strideA == 0) aPre = PackAllA(o, g.K);
            else if (strideB == 0) bPre = PackAllB(o, g.K);
        }
        void One(int z, int inner)
        {
            float* cz = c + z * g.StrideC;
            if (!Prepare(cz, g.M, g.N, g.K, g.Alpha, g.Beta, out bool store0)) return;
            HostPacked(Orient(cz, a + z * g.StrideA, b + z * g.StrideB, g.M, g.N, g.K, transA, transB, swap), g.K, g.Alpha, store0, inner, aPre, bPre);
        }
        if (batch == 1 || threads == 1 || batch % threads != 0 && batch < 4 * threads)
        {
            for (int z = 0; z < batch; z++) One(z, threads);
            return;
        }
        ForTasks(batch, threads, (lo, hi) => { for (int z = lo; z < hi; z++) One(z, 1); });
    }

    static unsafe void HostPackedOne(float* c, float* a, float* b, int m, int n, int k, bool transA, bool transB,
                                     float alpha, float beta, int threads)
    {
        if (!Prepare(c, m, n, k, alpha, beta, out bool store0)) return;
        HostPacked(Orient(c, a, b, m, n, k, transA, transB, Swaps(m, n, k)), k, alpha, store0, threads, null, null);
    }

    // beta first, so the blocked loop only ever adds; beta = 0 with work to do: the first K block stores instead
    // of adding (no clearing pass over C, and NaN in the old C is ignored). False when nothing is left to add.
    static unsafe bool Prepare(float* c, int m, int n, int k, float alpha, float beta, out bool store0)
    {
        store0 = beta == 0f && k > 0 && alpha != 0f;
        if (beta == 0f && !store0) new Span<float>(c, checked(m * n)).Clear();
        else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(new Span<float>(c, m * n), beta, new Span<float>(c, m * n));
        return k > 0 && alpha != 0f;
    }

    // A packed for every K block, block p0 at panels * MR * p0 (the layout HostPacked packs one block in)
    static unsafe float* PackAllA(Operands o, int k)
    {
        int mr = Wide ? MRWide : MRNarrow, nr = Wide ? NRWide : NRNarrow, kcMax = EvenKc(k, Blocking(mr, nr).KC);
        int panels = (o.M + mr - 1) / mr;
        float* dst = Buffer(ref sharedBuffer, (long)panels * mr * k);
        for (int p0 = 0; p0 < k; p0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - p0);
            for (int q = 0; q < panels; q++)
                PackA(dst + (long)panels * mr * p0 + (long)q * mr * kc, o.A + p0 * o.SAp, q * mr, Math.Min(mr, o.M - q * mr), mr, kc, o.SAi, o.SAp);
        }
        return dst;
    }

    // B packed for every (K block, N block), block (p0, j0) at p0 * Up(N, NR) + j0 * kc
    static unsafe float* PackAllB(Operands o, int k)
    {
        int mr = Wide ? MRWide : MRNarrow, nr = Wide ? NRWide : NRNarrow;
        var (kcBlock, ncMax) = Blocking(mr, nr);
        int kcMax = EvenKc(k, kcBlock);
        long np = Up(o.N, nr);
        float* dst = Buffer(ref sharedBuffer, np * k);
        for (int p0 = 0; p0 < k; p0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - p0);
            for (int j0 = 0; j0 < o.N; j0 += ncMax)
            {
                int jn = Math.Min(ncMax, o.N - j0);
                for (int s = 0; s * nr < jn; s++)
                    PackB(dst + p0 * np + (long)j0 * kc + (long)s * nr * kc, o.B + p0 * o.SBp + (j0 + s * nr) * o.SBj, Math.Min(nr, jn - s * nr), nr, kc, o.SBp, o.SBj);
            }
        }
        return dst;
    }

    // C (=, or += on later K blocks) alpha op(A) op(B) for one oriented product; aPre / bPre: that operand
    // already packed for all of K (PackAllA / PackAllB), else it is packed here block by block
    static unsafe void HostPacked(Operands o, int k, float alpha, bool store0, int threads, float* aPre, float* bPre, ImageB img = default)
    {
        bool wide = Wide;
        int mr = wide ? MRWide : MRNarrow, nr = wide ? NRWide : NRNarrow, m = o.M, n = o.N;
        var (kcBlock, ncMax) = Blocking(mr, nr);
        int kcMax = EvenKc(k, kcBlock);
        long sAi = o.SAi, sAp = o.SAp, sBp = o.SBp, sBj = o.SBj, rsC = o.RsC, csC = o.CsC;
        int panels = (m + mr - 1) / mr;
        int kc0 = Math.Min(kcMax, k), nc0 = Math.Min(ncMax, (n + nr - 1) / nr * nr);
        long aFloats = aPre == null ? (long)panels * mr * kc0 : 0, bFloats = bPre == null ? (long)kc0 * nc0 : 0;
        float* buf = Buffer(ref packBuffer, aFloats + bFloats);
        float* aPack = aPre == null ? buf : null, bPack = bPre == null ? buf + aFloats : null;
        float* a = o.A, b = o.B, c = o.C;
        // a short M (<= 2 panels, e.g. 18 x 768 x 2304) uses each B float for only a few FMAs: packing B would
        // double its memory traffic, so full strips of a row-major B are read in place (kc rows of 128 B)
        bool inPlaceB = bPre == null && !img.On && sBj == 1 && panels <= 2;
        for (int p0 = 0; p0 < k; p0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - p0);
            bool store = store0 && p0 == 0;
            float* aBlk = a + p0 * sAp, bBlk = b + p0 * sBp;
            if (aPre != null) aPack = aPre + (long)panels * mr * p0;
            // A once per K block: (M, kc) is at most a few MB and every N block reuses it
            else ForTasks(panels, (long)m * kc < 1 << 16 ? 1 : threads, (lo, hi) =>
            {
                for (int q = lo; q < hi; q++) PackA(aPack + (long)q * mr * kc, aBlk, q * mr, Math.Min(mr, m - q * mr), mr, kc, sAi, sAp);
            });
            for (int j0 = 0; j0 < n; j0 += ncMax)
            {
                int jn = Math.Min(ncMax, n - j0), strips = (jn + nr - 1) / nr;
                float* bJ = bBlk + j0 * sBj;
                if (FusesPacking(threads, strips, panels, mr, kc, bPre != null || inPlaceB))
                {
                    // N split with the packing inside: each thread packs a strip and runs every A panel against it
                    // while it is in its own L1 / L2 (no round of packing before the products, no B block read
                    // across the cores). Each output tile is still one task's, over the same k order.
                    float* aF = aPack, bF = bPack, cF = c + j0 * csC;
                    ForTasks(strips, threads, (lo, hi) =>
                    {
                        for (int s = lo; s < hi; s++)
                        {
                            int cols = Math.Min(nr, jn - s * nr);
                            float* bp = bF + (long)s * nr * kc;
                            if (img.Transposed) PackImageBT(bp, img, p0, kc, j0 + s * nr, cols, nr);
                            else if (img.Padded) PackPaddedB(bp, img, p0, kc, j0 + s * nr, cols, nr);
                            else if (img.On) PackImageB(bp, img, p0, kc, j0 + s * nr, cols, nr);
                            else PackB(bp, bJ + s * nr * sBj, cols, nr, kc, sBp, sBj);
                            for (int q = 0; q < panels; q++)
                                Tile(wide, kc, aF + (long)q * mr * kc, bp, nr, cF + q * mr * rsC + s * nr * csC, rsC, csC, alpha, store,
                                     Math.Min(mr, m - q * mr), cols);
                        }
                    });
                    continue;
                }
                if (bPre != null) bPack = bPre + p0 * Up(n, nr) + (long)j0 * kc;
                else ForTasks(strips, (long)jn * kc < 1 << 16 ? 1 : threads, (lo, hi) =>
                {
                    for (int s = lo; s < hi; s++)
                    {
                        int cols = Math.Min(nr, jn - s * nr);
                        if (img.Transposed) PackImageBT(bPack + (long)s * nr * kc, img, p0, kc, j0 + s * nr, cols, nr);
                        else if (img.Padded) PackPaddedB(bPack + (long)s * nr * kc, img, p0, kc, j0 + s * nr, cols, nr);
                        else if (img.On) PackImageB(bPack + (long)s * nr * kc, img, p0, kc, j0 + s * nr, cols, nr);
                        else if (!inPlaceB || cols < nr) PackB(bPack + (long)s * nr * kc, bJ + s * nr * sBj, cols, nr, kc, sBp, sBj);
                    }
                });
                float* aP = aPack, bP = bPack;
                // tasks: M blocks x strip ranges, 2 per thread when the work pays for them; M first (each task
                // then streams the whole B block, shared in L3, against its own A panels), N when M is short
                long work = (long)m * jn * kc;
                int tasksWanted = work < 1 << 18 ? 1 : 2 * threads;
                int mBlocks = Math.Min(panels, tasksWanted);
                int sChunks = Math.Clamp((tasksWanted + mBlocks - 1) / mBlocks, 1, strips);
                int tasks = mBlocks * sChunks;
                float* cJ = c + j0 * csC;
                ForTasks(tasks, tasksWanted == 1 ? 1 : threads, (lo, hi) =>
                {
                    for (int t = lo; t < hi; t++)
                    {
                        int mb = t / sChunks, sc = t % sChunks;
                        int q0 = (int)((long)panels * mb / mBlocks), q1 = (int)((long)panels * (mb + 1) / mBlocks);
                        int s0 = (int)((long)strips * sc / sChunks), s1 = (int)((long)strips * (sc + 1) / sChunks);
                        for (int q = q0; q < q1; q++)
                        {
                            int rows = Math.Min(mr, m - q * mr);
                            float* ap = aP + (long)q * mr * kc;
                            for (int s = s0; s < s1; s++)
                            {
                                int cols = Math.Min(nr, jn - s * nr);
                                float* ct = cJ + q * mr * rsC + s * nr * csC;
                                bool inPlace = inPlaceB && cols == nr;
                                float* bp = inPlace ? bJ + s * nr : bP + (long)s * nr * kc;
                                long ldb = inPlace ? sBp : nr;
                                Tile(wide, kc, ap, bp, ldb, ct, rsC, csC, alpha, store, rows, cols);
                            }
                        }
                    }
                });
            }
        }
    }

    /// <summary>Split a block's strips over the threads and pack each inside its task (default on; off: pack the
    /// block's strips in one parallel round, then split the products M first). Kept reachable for before / after.</summary>
    internal static bool FusedPacking { get; set; } = true;

    // the fused N split pays when B is packed here, there are strips enough for every thread, and the whole A
    // block (every panel, read for each strip) sits in half of L2 beside the thread's strip
    static bool FusesPacking(int threads, int strips, int panels, int mr, int kc, bool bReady) =>
        FusedPacking && threads > 1 && !bReady && strips >= 2 * threads && (long)panels * mr * kc * 4 <= Caches.L2 / 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Tile(bool wide, int kc, float* ap, float* bp, long ldb, float* c, long rsC, long csC, float alpha, bool store, int rows, int cols)
    {
        if (wide && cols <= 16) Tile12x16(kc, ap, bp, ldb, c, rsC, csC, alpha, store, rows, cols);
        else if (wide) Tile12x32(kc, ap, bp, ldb, c, rsC, csC, alpha, store, rows, cols);
        else Tile6xV2(kc, ap, bp, ldb, c, rsC, csC, alpha, store, rows, cols);
    }

    /// <summary>The widest micro-tile on its own (C = A panel x B strip, stored), for `Ccr.Bench cpu-peak --threads`:
    /// ap is an MR x kc packed panel, bp a kc x NR strip, c an MR x NR row-major tile. Returns the tile's (MR, NR).</summary>
    internal static unsafe (int Mr, int Nr) MicroTile(int kc, float* ap, float* bp, float* c)
    {
        if (Wide) { Tile12x32(kc, ap, bp, NRWide, c, NRWide, 1, 1f, true, MRWide, NRWide); return (MRWide, NRWide); }
        Tile6xV2(kc, ap, bp, NRNarrow, c, NRNarrow, 1, 1f, true, MRNarrow, NRNarrow);
        return (MRNarrow, NRNarrow);
    }

    // body(lo, hi) over [0, count) cut into `parts` contiguous ranges; which thread runs a range does not
    // change any output (ranges own disjoint outputs or pack disjoint panels)
    static void ForTasks(int count, int parts, Action<int, int> body)
    {
        parts = Math.Min(parts, count);
        if (parts <= 1) { body(0, count); return; }
        Parallel.For(0, parts, t => body((int)((long)count * t / parts), (int)((long)count * (t + 1) / parts)));
    }

    // panel[p][r] = A(i0 + r, p), r < rows; zero for rows..mr (computed, never stored)
    static unsafe void PackA(float* dst, float* a, int i0, int rows, int mr, int kc, long sAi, long sAp)
    {
        if (sAi == 1)
        {
            // A stored (K, M): each p's MR values are adjacent
            for (int p = 0; p < kc; p++)
            {
                float* src = a + p * sAp + i0, o = dst + p * mr; // i0 * sAi with sAi = 1
                int r = 0;
                for (; r < rows; r++) o[r] = src[r];
                for (; r < mr; r++) o[r] = 0f;
            }
            return;
        }
        if (sAp == 1 && rows == mr && mr % 4 == 0 && GatherPack(mr, sAi))
        {
            // a panel row gathers one float from each of the mr rows of A (4 per gather: mr = 12)
            var idx = Vector128.Create(0, 1, 2, 3) * (int)sAi;
            float* src0 = a + i0 * sAi;
            for (int p = 0; p < kc; p++)
            {
                float* o = dst + p * mr, src = src0 + p;
                for (int r = 0; r < mr; r += 4) Vector128.Store(Avx2.GatherVector128(src + r * sAi, idx, 4), o + r);
            }
            return;
        }
        for (int r = 0; r < mr; r++)
        {
            float* o = dst + r;
            if (r >= rows) { for (int p = 0; p < kc; p++) o[p * mr] = 0f; continue; }
            float* src = a + (i0 + r) * sAi; // a row of A along p (contiguous unless the operand was swapped in)
            if (sAp == 1) for (int p = 0; p < kc; p++) o[p * mr] = src[p];
            else for (int p = 0; p < kc; p++) o[p * mr] = src[p * sAp];
        }
    }

    // gathers serve the transposing packs when the index of the farthest of `width` rows fits an int32
    static bool GatherPack(int width, long stride) => Avx2.IsSupported && width % 4 == 0 && stride * width < int.MaxValue;

    // strip[p][q] = B(p, q), q < cols; zero for cols..nr
    static unsafe void PackB(float* dst, float* b, int cols, int nr, int kc, long sBp, long sBj)
    {
        if (sBj == 1)
        {
            int vw = Vector<float>.Count;
            for (int p = 0; p < kc; p++)
            {
                float* src = b + p * sBp, o = dst + p * nr;
                if (cols == nr) { for (int q = 0; q < nr; q += vw) *(Vector<float>*)(o + q) = *(Vector<float>*)(src + q); }
                else { int q = 0; for (; q < cols; q++) o[q] = src[q]; for (; q < nr; q++) o[q] = 0f; }
            }
            return;
        }
        // B stored (N, K): column q of B is a contiguous row of the storage
        if (sBp == 1 && cols == nr && GatherPack(nr, sBj))
        {
            // a strip row gathers one float from each of nr storage rows (8 per AVX2 gather): the nr source rows
            // stream through L1 and each strip row is written whole, where the scalar loop below writes kc
            // strip rows (kc x 128 B, past L1) for every column. Conv weight gradients: B = cols^T, 2304 x 6144.
            var idx = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)sBj;
            for (int p = 0; p < kc; p++)
            {
                float* o = dst + p * nr, src = b + p;
                for (int q = 0; q < nr; q += 8) Vector256.Store(Avx2.GatherVector256(src + q * sBj, idx, 4), o + q);
            }
            return;
        }
        for (int q = 0; q < nr; q++)
        {
            float* o = dst + q;
            if (q >= cols) { for (int p = 0; p < kc; p++) o[p * nr] = 0f; continue; }
            float* src = b + q * sBj;
            if (sBp == 1) for (int p = 0; p < kc; p++) o[p * nr] = src[p];
            else for (int p = 0; p < kc; p++) o[p * nr] = src[p * sBp];
        }
    }

    // C tile (rows x cols at strides rsC, csC) = alpha acc (store) or C + alpha acc as one fused multiply-add.
    // A partial or transposed (csC != 1) tile goes through a stack copy of the accumulators, with the same
    // arithmetic per element as the full tile's vector stores.
    static unsafe void Finish(float* acc, int nr, float* c, long rsC, long csC, float alpha, bool store, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            float* r = c + i * rsC, t = acc + i * nr;
            if (store) for (int q = 0; q < cols; q++) r[q * csC] = alpha * t[q];
            else for (int q = 0; q < cols; q++) r[q * csC] = MathF.FusedMultiplyAdd(alpha, t[q], r[q * csC]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Out512(float* r, Vector512<float> v0, Vector512<float> v1, Vector512<float> alpha, bool store)
    {
        if (store) { Vector512.Store(alpha * v0, r); Vector512.Store(alpha * v1, r + 16); }
        else
        {
            Vector512.Store(Avx512F.FusedMultiplyAdd(alpha, v0, Vector512.Load(r)), r);
            Vector512.Store(Avx512F.FusedMultiplyAdd(alpha, v1, Vector512.Load(r + 16)), r + 16);
        }
    }

    // 12 x 32 micro-tile on AVX-512: per p, 2 loads of B, 12 broadcasts of A, 24 FMAs into 24 zmm accumulators
    // (2 FMA units x 4 cycles latency need >= 8 independent chains)
    [SkipLocalsInit]
    static unsafe void Tile12x32(int kc, float* ap, float* bp, long ldb, float* c, long rsC, long csC, float alpha, bool store, int rows, int cols)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int p = 0; p < kc; p++, ap += MRWide, bp += ldb)
        {
            var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
            var x = Vector512.Create(ap[0]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(ap[1]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(ap[2]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(ap[3]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(ap[4]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(ap[5]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(ap[6]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(ap[7]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            x = Vector512.Create(ap[8]); c80 = Avx512F.FusedMultiplyAdd(x, b0, c80); c81 = Avx512F.FusedMultiplyAdd(x, b1, c81);
            x = Vector512.Create(ap[9]); c90 = Avx512F.FusedMultiplyAdd(x, b0, c90); c91 = Avx512F.FusedMultiplyAdd(x, b1, c91);
            x = Vector512.Create(ap[10]); ca0 = Avx512F.FusedMultiplyAdd(x, b0, ca0); ca1 = Avx512F.FusedMultiplyAdd(x, b1, ca1);
            x = Vector512.Create(ap[11]); cb0 = Avx512F.FusedMultiplyAdd(x, b0, cb0); cb1 = Avx512F.FusedMultiplyAdd(x, b1, cb1);
        }
        var va = Vector512.Create(alpha);
        bool full = rows == MRWide && cols == NRWide && csC == 1;
        float* tmp = stackalloc float[MRWide * NRWide];
        float* o = full ? c : tmp;
        long ld = full ? rsC : NRWide;
        bool st = store || !full; // the stack copy takes the raw sums (alpha 1, stored exactly)
        var one = full ? va : Vector512<float>.One;
        Out512(o, c00, c01, one, st); Out512(o + ld, c10, c11, one, st); Out512(o + 2 * ld, c20, c21, one, st);
        Out512(o + 3 * ld, c30, c31, one, st); Out512(o + 4 * ld, c40, c41, one, st); Out512(o + 5 * ld, c50, c51, one, st);
        Out512(o + 6 * ld, c60, c61, one, st); Out512(o + 7 * ld, c70, c71, one, st); Out512(o + 8 * ld, c80, c81, one, st);
        Out512(o + 9 * ld, c90, c91, one, st); Out512(o + 10 * ld, ca0, ca1, one, st); Out512(o + 11 * ld, cb0, cb1, one, st);
        if (!full) Finish(tmp, NRWide, c, rsC, csC, alpha, store, rows, cols);
    }

    // a last strip of <= 16 columns (N = 48 = 32 + 16 at the lowest resolution): 12 x 16 from the same 32-wide
    // packed strip, half the FMAs of the 12 x 32 tile; 12 accumulators still cover the FMA latency
    [SkipLocalsInit]
    static unsafe void Tile12x16(int kc, float* ap, float* bp, long ldb, float* c, long rsC, long csC, float alpha, bool store, int rows, int cols)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, ca = default, cb = default;
        for (int p = 0; p < kc; p++, ap += MRWide, bp += ldb)
        {
            var b0 = Vector512.Load(bp);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[0]), b0, c0); c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[1]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[2]), b0, c2); c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[4]), b0, c4); c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[5]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[6]), b0, c6); c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[7]), b0, c7);
            c8 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[8]), b0, c8); c9 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[9]), b0, c9);
            ca = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[10]), b0, ca); cb = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[11]), b0, cb);
        }
        // always through the stack copy: a strip this narrow is a partial one
        float* tmp = stackalloc float[MRWide * 16];
        Vector512.Store(c0, tmp); Vector512.Store(c1, tmp + 16); Vector512.Store(c2, tmp + 32); Vector512.Store(c3, tmp + 48);
        Vector512.Store(c4, tmp + 64); Vector512.Store(c5, tmp + 80); Vector512.Store(c6, tmp + 96); Vector512.Store(c7, tmp + 112);
        Vector512.Store(c8, tmp + 128); Vector512.Store(c9, tmp + 144); Vector512.Store(ca, tmp + 160); Vector512.Store(cb, tmp + 176);
        Finish(tmp, 16, c, rsC, csC, alpha, store, rows, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void OutV(float* r, Vector<float> v0, Vector<float> v1, Vector<float> alpha, bool store)
    {
        int vw = Vector<float>.Count;
        if (store) { *(Vector<float>*)r = alpha * v0; *(Vector<float>*)(r + vw) = alpha * v1; }
        else
        {
            *(Vector<float>*)r = Vector.FusedMultiplyAdd(alpha, v0, *(Vector<float>*)r);
            *(Vector<float>*)(r + vw) = Vector.FusedMultiplyAdd(alpha, v1, *(Vector<float>*)(r + vw));
        }
    }

    // 6 x (2 Vector<T>) micro-tile: 12 accumulators, the classic AVX2 shape (6 x 16)
    [SkipLocalsInit]
    static unsafe void Tile6xV2(int kc, float* ap, float* bp, long ldb, float* c, long rsC, long csC, float alpha, bool store, int rows, int cols)
    {
        int vw = Vector<float>.Count, nr = 2 * vw;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++, ap += MRNarrow, bp += ldb)
        {
            var b0 = *(Vector<float>*)bp; var b1 = *(Vector<float>*)(bp + vw);
            var x = new Vector<float>(ap[0]); c00 = Vector.FusedMultiplyAdd(x, b0, c00); c01 = Vector.FusedMultiplyAdd(x, b1, c01);
            x = new Vector<float>(ap[1]); c10 = Vector.FusedMultiplyAdd(x, b0, c10); c11 = Vector.FusedMultiplyAdd(x, b1, c11);
            x = new Vector<float>(ap[2]); c20 = Vector.FusedMultiplyAdd(x, b0, c20); c21 = Vector.FusedMultiplyAdd(x, b1, c21);
            x = new Vector<float>(ap[3]); c30 = Vector.FusedMultiplyAdd(x, b0, c30); c31 = Vector.FusedMultiplyAdd(x, b1, c31);
            x = new Vector<float>(ap[4]); c40 = Vector.FusedMultiplyAdd(x, b0, c40); c41 = Vector.FusedMultiplyAdd(x, b1, c41);
            x = new Vector<float>(ap[5]); c50 = Vector.FusedMultiplyAdd(x, b0, c50); c51 = Vector.FusedMultiplyAdd(x, b1, c51);
        }
        var va = new Vector<float>(alpha);
        bool full = rows == MRNarrow && cols == nr && csC == 1;
        float* tmp = stackalloc float[MRNarrow * 32]; // nr <= 32 (Vector<T> up to 512 bits)
        float* o = full ? c : tmp;
        long ld = full ? rsC : nr;
        bool st = store || !full;
        var one = full ? va : Vector<float>.One;
        OutV(o, c00, c01, one, st); OutV(o + ld, c10, c11, one, st); OutV(o + 2 * ld, c20, c21, one, st);
        OutV(o + 3 * ld, c30, c31, one, st); OutV(o + 4 * ld, c40, c41, one, st); OutV(o + 5 * ld, c50, c51, one, st);
        if (!full) Finish(tmp, nr, c, rsC, csC, alpha, store, rows, cols);
    }
}
