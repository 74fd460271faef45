using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels.Ops;

/// <summary>Everything a launch of the implicit-GEMM kernels needs besides the operands and the tile shape.</summary>
internal struct GemmLaunch
{
    public int M, N, K, Batch, Splits, KChunk;
    public FastDiv BySplits;
}

/// <summary>
/// C = A B for the CUDA variant as an implicit GEMM. Each block owns a BM x BN tile of C (the shape is a
/// compile-time type, <see cref="IGemmTileShape"/>) and walks K in BK = 16 deep stages, two shared stages
/// deep: the next stage's global loads go to registers before the current stage is multiplied (their latency
/// hides behind the math) and to the other shared stage after it, so one barrier per stage suffices.
/// The main loop does math, not address arithmetic: each thread's operand rows (the pixel or channel it
/// loads, a pure function of the block and thread) are resolved once (<see cref="IGemmOperand.Row"/>),
/// each stage resolves the few k it loads (<see cref="IGemmOperand.Col"/>), and every element is then an add,
/// one bounds test and a load (layout: ImplicitGemm.Stage.cs).
/// Both operand tiles are stored [k][mn] with rows padded by 4 floats (fp32) or 8 (TF32): fp32 threads read
/// their 4-wide groups of A rows and B columns as 128-bit loads (one LDS.128 feeds 16 FFMA); TF32 warps read
/// mma fragments (lane 4g + t reads k row t, column g: the pad of 8 puts the 32 lanes on 32 banks).
/// K may be split over grid z (<see cref="GemmTile"/>); partials are then summed in slice order: no atomics
/// anywhere, so results are bit-identical run to run. Operands, outputs and epilogues are generic struct
/// parameters (ILGPU specialises each combination), so conv forward, both conv gradients and the plain GEMM
/// share this code.
/// </summary>
internal static partial class ImplicitGemm
{
    /// <summary>Floats of emulation scratch per warp (TF32 off a GPU): two 16x8 A and four 8x8 B fragments.</summary>
    const int WarpScratch = 2 * Mma.StageAFloats + 4 * Mma.StageBFloats;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Pad(int mi) => mi == 0 ? 8 : 4;

    // C (i, j) of grid z: straight to the output, or (split K) to slice z's partial tile in the workspace
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j, float v)
        where TC : struct, IGemmOutput
    {
        if (i >= t.M || j >= t.N) return;
        if (t.Splits == 1) sc.Store(c, bias, z, i, j, v);
        else c[((long)ILGPU.Grid.IdxZ * t.M + i) * t.N + j] = v;
    }

    // ---------------------------------------------------------------- fp32: 4x4 micro tiles on the CUDA cores

    /// <summary>One 4 x 4 block of accumulators: registers, not memory.</summary>
    public struct Acc16
    {
        public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Acc16 Fma(Acc16 c, F4 a, F4 b) => new()
    {
        C00 = c.C00 + a.X * b.X, C01 = c.C01 + a.X * b.Y, C02 = c.C02 + a.X * b.Z, C03 = c.C03 + a.X * b.W,
        C10 = c.C10 + a.Y * b.X, C11 = c.C11 + a.Y * b.Y, C12 = c.C12 + a.Y * b.Z, C13 = c.C13 + a.Y * b.W,
        C20 = c.C20 + a.Z * b.X, C21 = c.C21 + a.Z * b.Y, C22 = c.C22 + a.Z * b.Z, C23 = c.C23 + a.Z * b.W,
        C30 = c.C30 + a.W * b.X, C31 = c.C31 + a.W * b.Y, C32 = c.C32 + a.W * b.Z, C33 = c.C33 + a.W * b.W,
    };

    /// <summary>The accumulators of one thread: micro tile (i, j) in Cij; MI, MJ &lt;= 2.</summary>
    public struct Micro { public Acc16 C00, C01, C10, C11; }

    // k row p of the stage: the thread's A groups (rows ty 4 + i TY 4) times its B groups (columns tx 4 + j TX 4).
    // av / bv start at the thread's first groups; every offset here is a compile-time constant, which ptxas folds
    // into the LDS.128 immediates (an index computed per load would cost a register and an instruction each).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Micro Step(ArrayView<F4> av, ArrayView<F4> bv, Micro m, int p, int sA4, int sB4, int dA4, int dB4, int mi, int mj)
    {
        var a0 = av[p * sA4];
        var b0 = bv[p * sB4];
        m.C00 = Fma(m.C00, a0, b0);
        if (mj > 1) { var b1 = bv[p * sB4 + dB4]; m.C01 = Fma(m.C01, a0, b1); if (mi > 1) { var a1 = av[p * sA4 + dA4]; m.C10 = Fma(m.C10, a1, b0); m.C11 = Fma(m.C11, a1, b1); } }
        else if (mi > 1) { var a1 = av[p * sA4 + dA4]; m.C10 = Fma(m.C10, a1, b0); }
        return m;
    }

    // the 16 k rows of one stage, two per loop iteration (ILGPU does not unroll loops, and at O2 it places every
    // shared load of a block ahead of the block's arithmetic: with all 16 rows in one block their operands would
    // all be live at once and spill). The views step on by two rows; the launcher pads shared memory by two
    // rows so the step past the last row stays inside it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Micro Stage16(ArrayView<F4> av, ArrayView<F4> bv, Micro m, int sA4, int sB4, int dA4, int dB4, int mi, int mj)
    {
        for (int p = 0; p < BK; p += 2)
        {
            m = Step(av, bv, m, 0, sA4, sB4, dA4, dB4, mi, mj);
            m = Step(av, bv, m, 1, sA4, sB4, dA4, dB4, mi, mj);
            av = av.SubView(2 * sA4);
            bv = bv.SubView(2 * sB4);
        }
        return m;
    }

    static void Fp32Kernel<TT, TA, TB, TC>(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
                                           TA la, TB lb, TC sc, GemmLaunch t)
        where TT : struct, IGemmTileShape where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        TT shape = default;
        int bm = shape.BM, bn = shape.BN, threads = shape.Threads, mi = shape.MI, mj = shape.MJ;
        int sA = bm + 4, sB = bn + 4, stageFloats = BK * (sA + sB);
        var sm = SharedMemory.GetDynamic<float>();
        var sm4 = sm.Cast<F4>();
        int tid = Group.IdxX, tnx = bn / (4 * mj), tny = bm / (4 * mi);
        int tx = tid & (tnx - 1), ty = tid >> Log2(tnx);
        int m0 = ILGPU.Grid.IdxY * bm, n0 = ILGPU.Grid.IdxX * bn;
        int z = t.BySplits.Div(ILGPU.Grid.IdxZ), kBegin = (ILGPU.Grid.IdxZ - z * t.Splits) * t.KChunk;
        int kEnd = Math.Min(t.K, kBegin + t.KChunk), steps = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
        var pa = PlaceOf(tid, bm, threads, la.KFast);
        var pb = PlaceOf(tid, bn, threads, lb.KFast);
        var ra = RowsOf(la, z, pa, m0, t.M);
        var rb = RowsOf(lb, z, pb, n0, t.N);
        var acc = new Micro();
        if (steps > 0)
        {
            Deposit(sm, pa, la.KFast, 0, sA, Fetch(a, la, ra, pa, kBegin, kEnd, false, true));
            Deposit(sm, pb, lb.KFast, BK * sA, sB, Fetch(b, lb, rb, pb, kBegin, kEnd, false, false));
        }
        Group.Barrier();
        // 128-bit offsets of this thread's first A and B groups in stage 0, and the steps between groups and k rows
        int a4 = ty, b4 = (BK * sA >> 2) + tx, dA4 = tny, dB4 = tnx, sA4 = sA >> 2, sB4 = sB >> 2;
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1, at = cur * stageFloats;
            bool more = s + 1 < steps;
            Vals16 nextA = default, nextB = default;
            if (more)
            {
                nextA = Fetch(a, la, ra, pa, kBegin + (s + 1) * BK, kEnd, false, true);
                nextB = Fetch(b, lb, rb, pb, kBegin + (s + 1) * BK, kEnd, false, false);
            }
            acc = Stage16(sm4.SubView((at >> 2) + a4), sm4.SubView((at >> 2) + b4), acc, sA4, sB4, dA4, dB4, mi, mj);
            if (more)
            {
                int nxt = (cur ^ 1) * stageFloats;
                Deposit(sm, pa, la.KFast, nxt, sA, nextA);
                Deposit(sm, pb, lb.KFast, nxt + BK * sA, sB, nextB);
            }
            Group.Barrier();
        }
        int i0 = m0 + 4 * ty, j0 = n0 + 4 * tx;
        PutMicro(c, bias, sc, t, z, i0, j0, acc.C00);
        if (mj > 1) PutMicro(c, bias, sc, t, z, i0, j0 + 4 * tnx, acc.C01);
        if (mi > 1) PutMicro(c, bias, sc, t, z, i0 + 4 * tny, j0, acc.C10);
        if (mi > 1 && mj > 1) PutMicro(c, bias, sc, t, z, i0 + 4 * tny, j0 + 4 * tnx, acc.C11);
    }

    static void PutMicro<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j, Acc16 v)
        where TC : struct, IGemmOutput
    {
        PutRow(c, bias, sc, t, z, i, j, v.C00, v.C01, v.C02, v.C03);
        PutRow(c, bias, sc, t, z, i + 1, j, v.C10, v.C11, v.C12, v.C13);
        PutRow(c, bias, sc, t, z, i + 2, j, v.C20, v.C21, v.C22, v.C23);
        PutRow(c, bias, sc, t, z, i + 3, j, v.C30, v.C31, v.C32, v.C33);
    }

    static void PutRow<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i, int j,
                           float v0, float v1, float v2, float v3) where TC : struct, IGemmOutput
    {
        Put(c, bias, sc, t, z, i, j, v0);
        Put(c, bias, sc, t, z, i, j + 1, v1);
        Put(c, bias, sc, t, z, i, j + 2, v2);
        Put(c, bias, sc, t, z, i, j + 3, v3);
    }
}
