using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels;

/// <summary>One GEMM operand as the kernels see it: element (mn, k) of A (M x K) or of B transposed
/// (N x K), for product <paramref name="z"/> of a batch. Implementations gather straight from the
/// tensors (a conv's input patches, a transposed matrix, ...), so no operand is ever materialised.
/// Called only for mn and k in range.</summary>
public interface IGemmOperand
{
    float Load(ArrayView<float> src, int z, int mn, int k);
}

/// <summary>Where C (i, j) of product <paramref name="z"/> goes, with whatever epilogue (bias, alpha /
/// beta) the op needs. Called once per element of C, in range.</summary>
public interface IGemmOutput
{
    void Store(ArrayView<float> dst, ArrayView<float> bias, int z, int i, int j, float v);
}

/// <summary>floor(n / d) for 0 &lt;= n &lt; 2^31 by a multiply and a shift (integer division is ~20
/// instructions on a GPU; the gathers divide flat pixel and patch indices several times per element).
/// With l = ceil(log2 d), k = 31 + l and m = ceil(2^k / d), the error e = m d - 2^k &lt; d makes
/// e n &lt; 2^k, hence floor(n m / 2^k) = floor(n / d); n m &lt; 2^63 fits a ulong.</summary>
public struct FastDiv
{
    public ulong Mul;
    public int Shift;

    public FastDiv(int d)
    {
        if (d < 1) throw new ArgumentOutOfRangeException(nameof(d), $"divisor {d} must be positive");
        int l = 0;
        while ((1L << l) < d) l++;
        Shift = 31 + l;
        Mul = ((1UL << Shift) + (ulong)d - 1) / (ulong)d;
    }

    public readonly int Div(int n) => (int)(((ulong)(uint)n * Mul) >> Shift);
}

/// <summary>Everything a launch of the implicit-GEMM kernels needs besides the operands (sizes, the
/// tile, the shared-memory layout of the two operand tiles).</summary>
public struct GemmLaunch
{
    public int M, N, K, Batch, Splits, KChunk;
    public int BM, BN, LogBM, LogBN;
    /// <summary>fp32: threads along N (BN / 4); TF32: warps along N (BN / 32).</summary>
    public int ThreadsN;
    /// <summary>1 when the operand is contiguous along k in memory: its tile is stored [mn][k] so that
    /// consecutive threads load consecutive addresses; 0: stored [k][mn].</summary>
    public int KFastA, KFastB;
    /// <summary>Shared-memory strides (floats) of the A and B tiles along mn and along k.</summary>
    public int AStrideMN, AStrideK, BStrideMN, BStrideK;
    /// <summary>Offset of the B tile in a stage, floats per stage (A then B), offset of the TF32 emulation scratch.</summary>
    public int BOffset, StageFloats, ScratchOffset;
}

/// <summary>
/// C = A B for the CUDA variant as an implicit GEMM: each block stages BK-deep slices of its A (BM x BK) and
/// B (BK x BN) tiles from the operands' gathers into shared memory, two stages deep (the next slice's global
/// loads are issued into registers before the current slice is multiplied and stored to the other stage
/// after it: their latency hides behind the FMAs, and one barrier per slice suffices), and multiplies them in registers:
/// fp32 with 4x4 outputs per thread (8x8 in the 128x128 tile), or TF32 through <see cref="Mma"/> with 32x32
/// outputs per warp.
/// Shared tiles are padded so neither the loads nor the multiply's reads pile onto one bank (a [mn][k]
/// tile with a stride of 16 floats would put 16 consecutive-k stores, and 16 consecutive-mn reads, in 1-2
/// banks): fp32 strides BK + 1 ([mn][k]) / BMN ([k][mn]); TF32 strides BK + 4 / BMN + 8, which make the
/// fragment reads (lane 4g + t reads row g, column t) hit 32 distinct banks. K may be split over grid z
/// (see <see cref="GemmTile"/>); partials are then summed in slice order: no atomics anywhere, so results are
/// bit-identical run to run. Operands, outputs and epilogues are generic struct parameters (ILGPU
/// specialises each combination), so conv forward, both conv gradients and the plain GEMM share this code.
/// </summary>
public static class ImplicitGemm
{
    const int BK = GemmTiles.BK, LogBK = 4;
    /// <summary>Floats of emulation scratch per warp: two 16x8 A and four 8x8 B fragments.</summary>
    const int WarpScratch = 2 * Mma.StageAFloats + 4 * Mma.StageBFloats;

    // ---------------------------------------------------------------- shared pieces

    // Element e of an operand tile (BMN x BK) of slice k0: consecutive e walk the operand's contiguous direction
    // (coalesced loads) and land at (mn, k) = (i, p) of the shared tile. Elements past the tile read as 0.
    static float FetchOne<TOp>(ArrayView<float> src, TOp op, int z, int mn0, int mnLen, int tile, int logTile,
                               int k0, int kEnd, int kFast, bool tf32, int e) where TOp : struct, IGemmOperand
    {
        if (e >= tile << LogBK) return 0f;
        int i = kFast != 0 ? e >> LogBK : e & (tile - 1), p = kFast != 0 ? e & (BK - 1) : e >> logTile;
        int gi = mn0 + i, gk = k0 + p;
        float v = gi < mnLen && gk < kEnd ? op.Load(src, z, gi, gk) : 0f;
        return tf32 ? Mma.RoundTf32(v) : v;
    }

    static void PutOne(ArrayView<float> sm, int at, int tile, int logTile, int kFast, int sMN, int sK, int e, float v)
    {
        if (e >= tile << LogBK) return;
        int i = kFast != 0 ? e >> LogBK : e & (tile - 1), p = kFast != 0 ? e & (BK - 1) : e >> logTile;
        sm[at + i * sMN + p * sK] = v;
    }

    // elements e, e + step, ..., e + 7 step of one operand tile into eight registers, and back out to shared memory
    static Row8 Fetch8<TOp>(ArrayView<float> src, TOp op, int z, int mn0, int mnLen, int tile, int logTile,
                            int k0, int kEnd, int kFast, bool tf32, int e, int step) where TOp : struct, IGemmOperand => new()
    {
        V0 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e),
        V1 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + step),
        V2 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 2 * step),
        V3 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 3 * step),
        V4 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 4 * step),
        V5 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 5 * step),
        V6 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 6 * step),
        V7 = FetchOne(src, op, z, mn0, mnLen, tile, logTile, k0, kEnd, kFast, tf32, e + 7 * step),
    };

    static void Put8(ArrayView<float> sm, int at, int tile, int logTile, int kFast, int sMN, int sK, int e, int step, Row8 r)
    {
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e, r.V0);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + step, r.V1);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 2 * step, r.V2);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 3 * step, r.V3);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 4 * step, r.V4);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 5 * step, r.V5);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 6 * step, r.V6);
        PutOne(sm, at, tile, logTile, kFast, sMN, sK, e + 7 * step, r.V7);
    }

    /// <summary>One thread's share of a stage (the A and B tiles of one BK slice) in registers: element
    /// thread + l x threads of each tile in slot l, up to 16 per tile (the launcher checks).</summary>
    public struct StageRegs { public Row8 A0, A1, B0, B1; }

    // The double buffering: the next slice's global loads go to registers before the current slice is
    // multiplied (their latency hides behind the FMAs), and to the other shared stage after it.
    static StageRegs Fetch<TA, TB>(ArrayView<float> a, ArrayView<float> b, TA la, TB lb, GemmLaunch t,
                                   int z, int m0, int n0, int k0, int kEnd, bool tf32)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand
    {
        int tid = Group.IdxX, n = Group.DimX;
        var r = new StageRegs
        {
            A0 = Fetch8(a, la, z, m0, t.M, t.BM, t.LogBM, k0, kEnd, t.KFastA, tf32, tid, n),
            B0 = Fetch8(b, lb, z, n0, t.N, t.BN, t.LogBN, k0, kEnd, t.KFastB, tf32, tid, n),
        };
        if (t.BM << LogBK > 8 * n) r.A1 = Fetch8(a, la, z, m0, t.M, t.BM, t.LogBM, k0, kEnd, t.KFastA, tf32, tid + 8 * n, n);
        if (t.BN << LogBK > 8 * n) r.B1 = Fetch8(b, lb, z, n0, t.N, t.BN, t.LogBN, k0, kEnd, t.KFastB, tf32, tid + 8 * n, n);
        return r;
    }

    static void Deposit(ArrayView<float> sm, int stage, GemmLaunch t, StageRegs r)
    {
        int tid = Group.IdxX, n = Group.DimX, at = stage * t.StageFloats, bt = at + t.BOffset;
        Put8(sm, at, t.BM, t.LogBM, t.KFastA, t.AStrideMN, t.AStrideK, tid, n, r.A0);
        Put8(sm, bt, t.BN, t.LogBN, t.KFastB, t.BStrideMN, t.BStrideK, tid, n, r.B0);
        if (t.BM << LogBK > 8 * n) Put8(sm, at, t.BM, t.LogBM, t.KFastA, t.AStrideMN, t.AStrideK, tid + 8 * n, n, r.A1);
        if (t.BN << LogBK > 8 * n) Put8(sm, bt, t.BN, t.LogBN, t.KFastB, t.BStrideMN, t.BStrideK, tid + 8 * n, n, r.B1);
    }

    // C (i, j) of grid z: straight to the output, or (split K) to slice z's partial tile in the workspace
    static void Put<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j, float v)
        where TC : struct, IGemmOutput
    {
        if (i >= t.M || j >= t.N) return;
        if (t.Splits == 1) sc.Store(c, bias, z, i, j, v);
        else c[((long)ILGPU.Grid.IdxZ * t.M + i) * t.N + j] = v;
    }

    // ---------------------------------------------------------------- fp32: 256 threads, 4x4 outputs each

    static void Fp32Kernel<TA, TB, TC>(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
                                       TA la, TB lb, TC sc, GemmLaunch t)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        var sm = SharedMemory.GetDynamic<float>();
        int tid = Group.IdxX, tnx = t.ThreadsN, tny = Group.DimX / tnx;
        int tx = tid % tnx, ty = tid / tnx;
        int m0 = ILGPU.Grid.IdxY * t.BM, n0 = ILGPU.Grid.IdxX * t.BN;
        int z = ILGPU.Grid.IdxZ / t.Splits, kBegin = ILGPU.Grid.IdxZ % t.Splits * t.KChunk;
        int kEnd = Math.Min(t.K, kBegin + t.KChunk), steps = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
        // this thread's rows ty + i tny and columns tx + j tnx: a warp reads 1-4 A rows (broadcast) and
        // consecutive B columns
        int ra0 = ty * t.AStrideMN, ra1 = (ty + tny) * t.AStrideMN, ra2 = (ty + 2 * tny) * t.AStrideMN, ra3 = (ty + 3 * tny) * t.AStrideMN;
        int rb0 = tx * t.BStrideMN, rb1 = (tx + tnx) * t.BStrideMN, rb2 = (tx + 2 * tnx) * t.BStrideMN, rb3 = (tx + 3 * tnx) * t.BStrideMN;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        if (steps > 0) Deposit(sm, 0, t, Fetch(a, b, la, lb, t, z, m0, n0, kBegin, kEnd, false));
        Group.Barrier();
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1;
            bool more = s + 1 < steps;
            StageRegs next = default;
            if (more) next = Fetch(a, b, la, lb, t, z, m0, n0, kBegin + (s + 1) * BK, kEnd, false);
            int pa = cur * t.StageFloats, pb = pa + t.BOffset;
            for (int p = 0; p < BK; p++, pa += t.AStrideK, pb += t.BStrideK)
            {
                float a0 = sm[pa + ra0], a1 = sm[pa + ra1], a2 = sm[pa + ra2], a3 = sm[pa + ra3];
                float b0 = sm[pb + rb0], b1 = sm[pb + rb1], b2 = sm[pb + rb2], b3 = sm[pb + rb3];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            if (more) Deposit(sm, cur ^ 1, t, next);
            Group.Barrier();
        }
        int i0 = m0 + ty, j0 = n0 + tx;
        PutRow(c, bias, sc, t, z, i0, j0, tnx, c00, c01, c02, c03);
        PutRow(c, bias, sc, t, z, i0 + tny, j0, tnx, c10, c11, c12, c13);
        PutRow(c, bias, sc, t, z, i0 + 2 * tny, j0, tnx, c20, c21, c22, c23);
        PutRow(c, bias, sc, t, z, i0 + 3 * tny, j0, tnx, c30, c31, c32, c33);
    }

    static void PutRow<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j, int dj,
                           float v0, float v1, float v2, float v3) where TC : struct, IGemmOutput
    {
        Put(c, bias, sc, t, z, i, j, v0);
        Put(c, bias, sc, t, z, i, j + dj, v1);
        Put(c, bias, sc, t, z, i, j + 2 * dj, v2);
        Put(c, bias, sc, t, z, i, j + 3 * dj, v3);
    }

    // ---------------------------------------------------------------- fp32, 128x128: 256 threads, 8x8 outputs each

    /// <summary>Eight accumulators (or operands) of one thread: registers, not memory.</summary>
    public struct Row8 { public float V0, V1, V2, V3, V4, V5, V6, V7; }

    static Row8 Fma(Row8 r, float a, Row8 b) => new()
    {
        V0 = r.V0 + a * b.V0, V1 = r.V1 + a * b.V1, V2 = r.V2 + a * b.V2, V3 = r.V3 + a * b.V3,
        V4 = r.V4 + a * b.V4, V5 = r.V5 + a * b.V5, V6 = r.V6 + a * b.V6, V7 = r.V7 + a * b.V7,
    };

    // The big tile for big GEMMs (decoder convs: 256 x 76,800 x 2,304): twice the outputs per thread of the 4x4
    // kernel, so each shared-memory load feeds 8 FMAs instead of 4. Thread (tx, ty) of 16 x 16 owns rows
    // ty + 16 i and columns tx + 16 j (i, j < 8): a warp reads 2 A rows (broadcast) and 16 consecutive B columns.
    static void Fp32WideKernel<TA, TB, TC>(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
                                           TA la, TB lb, TC sc, GemmLaunch t)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        var sm = SharedMemory.GetDynamic<float>();
        int tid = Group.IdxX, tx = tid & 15, ty = tid >> 4;
        int m0 = ILGPU.Grid.IdxY * t.BM, n0 = ILGPU.Grid.IdxX * t.BN;
        int z = ILGPU.Grid.IdxZ / t.Splits, kBegin = ILGPU.Grid.IdxZ % t.Splits * t.KChunk;
        int kEnd = Math.Min(t.K, kBegin + t.KChunk), steps = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
        int ra = ty * t.AStrideMN, da = 16 * t.AStrideMN, rb = tx * t.BStrideMN, db = 16 * t.BStrideMN;
        Row8 r0 = default, r1 = default, r2 = default, r3 = default, r4 = default, r5 = default, r6 = default, r7 = default;
        if (steps > 0) Deposit(sm, 0, t, Fetch(a, b, la, lb, t, z, m0, n0, kBegin, kEnd, false));
        Group.Barrier();
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1;
            bool more = s + 1 < steps;
            StageRegs next = default;
            if (more) next = Fetch(a, b, la, lb, t, z, m0, n0, kBegin + (s + 1) * BK, kEnd, false);
            int pa = cur * t.StageFloats + ra, pb = cur * t.StageFloats + t.BOffset + rb;
            for (int p = 0; p < BK; p++, pa += t.AStrideK, pb += t.BStrideK)
            {
                var bv = new Row8
                {
                    V0 = sm[pb], V1 = sm[pb + db], V2 = sm[pb + 2 * db], V3 = sm[pb + 3 * db],
                    V4 = sm[pb + 4 * db], V5 = sm[pb + 5 * db], V6 = sm[pb + 6 * db], V7 = sm[pb + 7 * db],
                };
                r0 = Fma(r0, sm[pa], bv); r1 = Fma(r1, sm[pa + da], bv);
                r2 = Fma(r2, sm[pa + 2 * da], bv); r3 = Fma(r3, sm[pa + 3 * da], bv);
                r4 = Fma(r4, sm[pa + 4 * da], bv); r5 = Fma(r5, sm[pa + 5 * da], bv);
                r6 = Fma(r6, sm[pa + 6 * da], bv); r7 = Fma(r7, sm[pa + 7 * da], bv);
            }
            if (more) Deposit(sm, cur ^ 1, t, next);
            Group.Barrier();
        }
        int i0 = m0 + ty, j0 = n0 + tx;
        PutRow8(c, bias, sc, t, z, i0, j0, r0); PutRow8(c, bias, sc, t, z, i0 + 16, j0, r1);
        PutRow8(c, bias, sc, t, z, i0 + 32, j0, r2); PutRow8(c, bias, sc, t, z, i0 + 48, j0, r3);
        PutRow8(c, bias, sc, t, z, i0 + 64, j0, r4); PutRow8(c, bias, sc, t, z, i0 + 80, j0, r5);
        PutRow8(c, bias, sc, t, z, i0 + 96, j0, r6); PutRow8(c, bias, sc, t, z, i0 + 112, j0, r7);
    }

    static void PutRow8<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j, Row8 r)
        where TC : struct, IGemmOutput
    {
        PutRow(c, bias, sc, t, z, i, j, 16, r.V0, r.V1, r.V2, r.V3);
        PutRow(c, bias, sc, t, z, i, j + 64, 16, r.V4, r.V5, r.V6, r.V7);
    }

    // ---------------------------------------------------------------- TF32: warps of 32x32 outputs

    static void Tf32Kernel<TA, TB, TC>(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
                                       TA la, TB lb, TC sc, GemmLaunch t)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        var sm = SharedMemory.GetDynamic<float>();
        int tid = Group.IdxX, warp = tid >> 5, lane = tid & 31;
        int wm = warp / t.ThreadsN * 32, wn = warp % t.ThreadsN * 32;
        int m0 = ILGPU.Grid.IdxY * t.BM, n0 = ILGPU.Grid.IdxX * t.BN;
        int z = ILGPU.Grid.IdxZ / t.Splits, kBegin = ILGPU.Grid.IdxZ % t.Splits * t.KChunk;
        int kEnd = Math.Min(t.K, kBegin + t.KChunk), steps = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
        int scratch = t.ScratchOffset + warp * WarpScratch;
        // accumulators: [mi][ni], mi over two 16-row and ni over four 8-column mma tiles of the warp tile
        Acc c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        if (steps > 0) Deposit(sm, 0, t, Fetch(a, b, la, lb, t, z, m0, n0, kBegin, kEnd, true));
        Group.Barrier();
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1;
            bool more = s + 1 < steps;
            StageRegs next = default;
            if (more) next = Fetch(a, b, la, lb, t, z, m0, n0, kBegin + (s + 1) * BK, kEnd, true);
            int pa = cur * t.StageFloats, pb = pa + t.BOffset;
            for (int kk = 0; kk < BK; kk += 8)
            {
                var a0 = FragmentA(sm, pa, t.AStrideMN, t.AStrideK, wm, kk, lane);
                var a1 = FragmentA(sm, pa, t.AStrideMN, t.AStrideK, wm + 16, kk, lane);
                var b0 = FragmentB(sm, pb, t.BStrideMN, t.BStrideK, wn, kk, lane);
                var b1 = FragmentB(sm, pb, t.BStrideMN, t.BStrideK, wn + 8, kk, lane);
                var b2 = FragmentB(sm, pb, t.BStrideMN, t.BStrideK, wn + 16, kk, lane);
                var b3 = FragmentB(sm, pb, t.BStrideMN, t.BStrideK, wn + 24, kk, lane);
                if (CudaAsm.IsSupported)
                {
                    c00 = Mma.Sync(c00, a0, b0); c01 = Mma.Sync(c01, a0, b1); c02 = Mma.Sync(c02, a0, b2); c03 = Mma.Sync(c03, a0, b3);
                    c10 = Mma.Sync(c10, a1, b0); c11 = Mma.Sync(c11, a1, b1); c12 = Mma.Sync(c12, a1, b2); c13 = Mma.Sync(c13, a1, b3);
                }
                else
                {
                    // the same fragments, multiplied by the warp through shared memory (Mma's emulation)
                    int sa = scratch, sb = scratch + 2 * Mma.StageAFloats;
                    Mma.StageA(sm, sa, lane, a0); Mma.StageA(sm, sa + Mma.StageAFloats, lane, a1);
                    Mma.StageB(sm, sb, lane, b0); Mma.StageB(sm, sb + Mma.StageBFloats, lane, b1);
                    Mma.StageB(sm, sb + 2 * Mma.StageBFloats, lane, b2); Mma.StageB(sm, sb + 3 * Mma.StageBFloats, lane, b3);
                    Warp.Barrier();
                    int sa1 = sa + Mma.StageAFloats;
                    c00 = Mma.FromStaged(c00, sm, sa, sb, lane); c01 = Mma.FromStaged(c01, sm, sa, sb + Mma.StageBFloats, lane);
                    c02 = Mma.FromStaged(c02, sm, sa, sb + 2 * Mma.StageBFloats, lane); c03 = Mma.FromStaged(c03, sm, sa, sb + 3 * Mma.StageBFloats, lane);
                    c10 = Mma.FromStaged(c10, sm, sa1, sb, lane); c11 = Mma.FromStaged(c11, sm, sa1, sb + Mma.StageBFloats, lane);
                    c12 = Mma.FromStaged(c12, sm, sa1, sb + 2 * Mma.StageBFloats, lane); c13 = Mma.FromStaged(c13, sm, sa1, sb + 3 * Mma.StageBFloats, lane);
                    Warp.Barrier();
                }
            }
            if (more) Deposit(sm, cur ^ 1, t, next);
            Group.Barrier();
        }
        int i0 = m0 + wm, j0 = n0 + wn;
        PutAcc(c, bias, sc, t, z, i0, j0, lane, c00); PutAcc(c, bias, sc, t, z, i0, j0 + 8, lane, c01);
        PutAcc(c, bias, sc, t, z, i0, j0 + 16, lane, c02); PutAcc(c, bias, sc, t, z, i0, j0 + 24, lane, c03);
        PutAcc(c, bias, sc, t, z, i0 + 16, j0, lane, c10); PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 8, lane, c11);
        PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 16, lane, c12); PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 24, lane, c13);
    }

    // this lane's A registers of the 16x8 tile at rows r0.., k columns k0.. of the shared A tile
    static FragA FragmentA(ArrayView<float> sm, int at, int sMN, int sK, int r0, int k0, int lane) => new()
    {
        A0 = Interop.FloatAsInt(sm[at + (r0 + Mma.ARow(lane, 0)) * sMN + (k0 + Mma.ACol(lane, 0)) * sK]),
        A1 = Interop.FloatAsInt(sm[at + (r0 + Mma.ARow(lane, 1)) * sMN + (k0 + Mma.ACol(lane, 1)) * sK]),
        A2 = Interop.FloatAsInt(sm[at + (r0 + Mma.ARow(lane, 2)) * sMN + (k0 + Mma.ACol(lane, 2)) * sK]),
        A3 = Interop.FloatAsInt(sm[at + (r0 + Mma.ARow(lane, 3)) * sMN + (k0 + Mma.ACol(lane, 3)) * sK]),
    };

    // this lane's B registers of the 8x8 tile at k rows k0.., columns c0.. (the B tile is stored by column: mn = column)
    static FragB FragmentB(ArrayView<float> sm, int at, int sMN, int sK, int c0, int k0, int lane) => new()
    {
        B0 = Interop.FloatAsInt(sm[at + (c0 + Mma.BCol(lane)) * sMN + (k0 + Mma.BRow(lane, 0)) * sK]),
        B1 = Interop.FloatAsInt(sm[at + (c0 + Mma.BCol(lane)) * sMN + (k0 + Mma.BRow(lane, 1)) * sK]),
    };

    static void PutAcc<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i0, int j0, int lane, Acc v)
        where TC : struct, IGemmOutput
    {
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 0), j0 + Mma.CCol(lane, 0), v.C0);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 1), j0 + Mma.CCol(lane, 1), v.C1);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 2), j0 + Mma.CCol(lane, 2), v.C2);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 3), j0 + Mma.CCol(lane, 3), v.C3);
    }

    // ---------------------------------------------------------------- split K: ordered sum of the partials

    // C (z, i, j) = sum over slices s = 0, 1, ... of ws[z * Splits + s][i][j], always in that order (grid-stride)
    static void SplitSumKernel<TC>(ArrayView<float> c, ArrayView<float> ws, ArrayView<float> bias, TC sc, GemmLaunch t)
        where TC : struct, IGemmOutput
    {
        long mn = (long)t.M * t.N, total = t.Batch * mn;
        for (long idx = ILGPU.Grid.GlobalIndex.X; idx < total; idx += Launch.Stride)
        {
            int z = (int)(idx / mn);
            long r = idx - z * mn;
            int i = (int)(r / t.N), j = (int)(r - (long)i * t.N);
            long at = (long)z * t.Splits * mn + r;
            float s = 0f;
            for (int k = 0; k < t.Splits; k++, at += mn) s += ws[at];
            sc.Store(c, bias, z, i, j, s);
        }
    }

    // ---------------------------------------------------------------- launcher

    sealed class Loaded<TA, TB, TC>(Device d)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        // compiled on first use: each specialisation costs a JIT (tens of ms on a GPU, more on the CPU accelerator)
        public readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>>
            Fp32 = new(() => d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>(Fp32Kernel)),
            Fp32Wide = new(() => d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>(Fp32WideKernel)),
            Tf32 = new(() => d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TA, TB, TC, GemmLaunch>(Tf32Kernel));
    }

    // the ordered sum depends only on the output: one per output type, shared by its operand combinations
    sealed class LoadedSum<TC>(Device d) where TC : struct, IGemmOutput
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TC, GemmLaunch> SplitSum =
            d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, TC, GemmLaunch>(SplitSumKernel);
    }

    /// <summary>
    /// C (batch x M x N) = A B through <paramref name="sc"/>, A element (i, k) = <paramref name="la"/>.Load(a, z, i, k),
    /// B element (k, j) = <paramref name="lb"/>.Load(b, z, j, k). <paramref name="kFastA"/> / <paramref name="kFastB"/>
    /// say which way each operand is contiguous in memory (it only picks the shared layout: results do not
    /// depend on it). <paramref name="tile"/> null: <see cref="GemmTiles.Choose"/>. Sizes must fit int32.
    /// </summary>
    public static void Run<TA, TB, TC>(Device d, Buf<float> c, Buf<float> a, Buf<float> b, Buf<float>? bias,
                                       TA la, TB lb, TC sc, int batch, int m, int n, int k, bool kFastA, bool kFastB,
                                       GemmTile? tile = null)
        where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        if (m == 0 || n == 0 || batch == 0) return;
        var precision = d.Precision;
        var tl = tile ?? GemmTiles.Choose(m, n, k, batch, precision, d.Accelerator.NumMultiprocessors);
        GemmTiles.Validate(tl, precision);
        bool tf32 = precision == MathPrecision.Tf32;
        bool wide = !tf32 && tl.BM == 128 && tl.BN == 128; // the 8x8-per-thread fp32 kernel
        int warp = d.Accelerator.WarpSize;
        int threads = tf32 ? tl.BM / 32 * (tl.BN / 32) * 32 : 256;
        if (tf32 && warp != 32)
            throw new NotSupportedException($"tf32 GEMM needs 32-lane warps; {d.Accelerator.Name} has {warp}");
        if (tf32 && d.Accelerator is CudaAccelerator cu && cu.Architecture.Major < 8)
            throw new NotSupportedException($"tf32 needs a compute capability 8.0 GPU (mma.sync tf32); {cu.Name} is {cu.Architecture}");
        if (Math.Max(tl.BM, tl.BN) * BK > 16 * threads)
            throw new NotSupportedException($"gemm tile {tl}: more than 16 elements per thread per stage ({threads} threads)");
        if (d.Accelerator.MaxNumThreadsPerGroup < threads)
            throw new NotSupportedException($"gemm tile {tl}: needs {threads} threads per group, {d.Accelerator.Name} allows {d.Accelerator.MaxNumThreadsPerGroup}");

        // K slices of whole stages; drop slices that would be empty
        int stepsK = (k + BK - 1) / BK;
        int splits = Math.Clamp(tl.Splits, 1, Math.Max(1, stepsK));
        int chunk = (stepsK + splits - 1) / splits * BK;
        splits = k == 0 ? 1 : (k + chunk - 1) / chunk;
        if (k == 0) chunk = BK;

        var t = new GemmLaunch
        {
            M = m, N = n, K = k, Batch = batch, Splits = splits, KChunk = chunk,
            BM = tl.BM, BN = tl.BN, LogBM = Log2(tl.BM), LogBN = Log2(tl.BN),
            ThreadsN = tf32 ? tl.BN / 32 : wide ? 16 : tl.BN / 4,
            KFastA = kFastA ? 1 : 0, KFastB = kFastB ? 1 : 0,
        };
        // paddings: see the class comment
        int padK = tf32 ? 4 : 1, padMN = tf32 ? 8 : 0;
        (t.AStrideMN, t.AStrideK) = kFastA ? (BK + padK, 1) : (1, tl.BM + padMN);
        (t.BStrideMN, t.BStrideK) = kFastB ? (BK + padK, 1) : (1, tl.BN + padMN);
        int tileA = kFastA ? tl.BM * (BK + padK) : BK * (tl.BM + padMN);
        int tileB = kFastB ? tl.BN * (BK + padK) : BK * (tl.BN + padMN);
        t.BOffset = tileA;
        t.StageFloats = tileA + tileB;
        t.ScratchOffset = 2 * t.StageFloats;
        int emulation = tf32 && !d.IsCuda ? threads / 32 * WarpScratch : 0;
        long sharedBytes = (t.ScratchOffset + emulation) * 4L;
        if (sharedBytes > d.Accelerator.MaxSharedMemoryPerGroup)
            throw new NotSupportedException($"gemm tile {tl}: needs {sharedBytes} bytes of shared memory, {d.Accelerator.Name} allows {d.Accelerator.MaxSharedMemoryPerGroup}");
        var shared = SharedMemoryConfig.RequestDynamic<float>(t.ScratchOffset + emulation);
        var grid = new Index3D((n + tl.BN - 1) / tl.BN, (m + tl.BM - 1) / tl.BM, batch * splits);
        var config = new KernelConfig(grid, new Index3D(threads, 1, 1), shared);

        var ks = d.Kernels(static d => new Loaded<TA, TB, TC>(d));
        var main = tf32 ? ks.Tf32.Value : wide ? ks.Fp32Wide.Value : ks.Fp32.Value;
        var biasView = bias is { } bb ? bb.View : c.View; // read only by outputs that have a bias
        if (splits == 1)
        {
            main(config, c.View, a.View, b.View, biasView, la, lb, sc, t);
            return;
        }
        using var ws = d.Pool.Rent((long)batch * splits * m * n * 4);
        var wsv = new Buf<float>(ws, 0, (long)batch * splits * m * n);
        main(config, wsv.View, a.View, b.View, biasView, la, lb, sc, t);
        d.Kernels(static d => new LoadedSum<TC>(d)).SplitSum(d.Grid((long)batch * m * n), c.View, wsv.View, biasView, sc, t);
    }

    static int Log2(int v) { int l = 0; while ((1 << l) < v) l++; return l; }
}
