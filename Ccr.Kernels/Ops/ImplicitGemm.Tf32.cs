using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels.Ops;

internal static partial class ImplicitGemm
{
    // ---------------------------------------------------------------- TF32: warps of 32x32 outputs on the tensor cores

    static void Tf32Kernel<TT, TA, TB, TC>(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
                                           TA la, TB lb, TC sc, GemmLaunch t)
        where TT : struct, IGemmTileShape where TA : struct, IGemmOperand where TB : struct, IGemmOperand where TC : struct, IGemmOutput
    {
        TT shape = default;
        int bm = shape.BM, bn = shape.BN, threads = shape.Threads;
        int sA = bm + 8, sB = bn + 8, stageFloats = BK * (sA + sB);
        var sm = SharedMemory.GetDynamic<float>();
        int tid = Group.IdxX, warp = tid >> 5, lane = tid & 31, warpsN = bn >> 5;
        int wm = (warp >> Log2(warpsN)) * 32, wn = (warp & (warpsN - 1)) * 32;
        int m0 = ILGPU.Grid.IdxY * bm, n0 = ILGPU.Grid.IdxX * bn;
        int z = t.BySplits.Div(ILGPU.Grid.IdxZ), kBegin = (ILGPU.Grid.IdxZ - z * t.Splits) * t.KChunk;
        int kEnd = Math.Min(t.K, kBegin + t.KChunk), steps = kEnd > kBegin ? (kEnd - kBegin + BK - 1) / BK : 0;
        int scratch = 2 * stageFloats + warp * WarpScratch;
        var pa = PlaceOf(tid, bm, threads, la.KFast);
        var pb = PlaceOf(tid, bn, threads, lb.KFast);
        var ra = RowsOf(la, z, pa, m0, t.M);
        var rb = RowsOf(lb, z, pb, n0, t.N);
        // accumulators: [mi][ni], mi over two 16-row and ni over four 8-column mma tiles of the warp tile
        var w = new Warp8();
        if (steps > 0)
        {
            Deposit(sm, pa, la.KFast, 0, sA, Fetch(a, la, ra, pa, kBegin, kEnd, true, true));
            Deposit(sm, pb, lb.KFast, BK * sA, sB, Fetch(b, lb, rb, pb, kBegin, kEnd, true, false));
        }
        Group.Barrier();
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1;
            bool more = s + 1 < steps;
            Vals16 nextA = default, nextB = default;
            if (more)
            {
                nextA = Fetch(a, la, ra, pa, kBegin + (s + 1) * BK, kEnd, true, true);
                nextB = Fetch(b, lb, rb, pb, kBegin + (s + 1) * BK, kEnd, true, false);
            }
            int at = cur * stageFloats, bt = at + BK * sA;
            var av = sm.SubView(at + Mma.ACol(lane, 0) * sA + wm + Mma.ARow(lane, 0));
            var bv = sm.SubView(bt + Mma.BRow(lane, 0) * sB + wn + Mma.BCol(lane));
            w = KStep(sm, av, bv, w, sA, sB, 0, lane, scratch);
            w = KStep(sm, av, bv, w, sA, sB, 8, lane, scratch);
            if (more)
            {
                int nxt = (cur ^ 1) * stageFloats;
                Deposit(sm, pa, la.KFast, nxt, sA, nextA);
                Deposit(sm, pb, lb.KFast, nxt + BK * sA, sB, nextB);
            }
            Group.Barrier();
        }
        int i0 = m0 + wm, j0 = n0 + wn;
        PutAcc(c, bias, sc, t, z, i0, j0, lane, w.C00); PutAcc(c, bias, sc, t, z, i0, j0 + 8, lane, w.C01);
        PutAcc(c, bias, sc, t, z, i0, j0 + 16, lane, w.C02); PutAcc(c, bias, sc, t, z, i0, j0 + 24, lane, w.C03);
        PutAcc(c, bias, sc, t, z, i0 + 16, j0, lane, w.C10); PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 8, lane, w.C11);
        PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 16, lane, w.C12); PutAcc(c, bias, sc, t, z, i0 + 16, j0 + 24, lane, w.C13);
    }

    /// <summary>The eight 16x8 accumulator tiles of one warp's 32x32 outputs.</summary>
    public struct Warp8 { public Acc C00, C01, C02, C03, C10, C11, C12, C13; }

    // one k-step of 8 of the warp tile: 2 A and 4 B fragments, 8 mma (written out twice per stage: ILGPU does not unroll)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Warp8 KStep(ArrayView<float> sm, ArrayView<float> av, ArrayView<float> bv, Warp8 w, int sA, int sB, int kk, int lane, int scratch)
    {
        var a0 = FragmentA(av, sA, 0, kk);
        var a1 = FragmentA(av, sA, 16, kk);
        var b0 = FragmentB(bv, sB, 0, kk);
        var b1 = FragmentB(bv, sB, 8, kk);
        var b2 = FragmentB(bv, sB, 16, kk);
        var b3 = FragmentB(bv, sB, 24, kk);
        if (CudaAsm.IsSupported)
        {
            w.C00 = Mma.Sync(w.C00, a0, b0); w.C01 = Mma.Sync(w.C01, a0, b1); w.C02 = Mma.Sync(w.C02, a0, b2); w.C03 = Mma.Sync(w.C03, a0, b3);
            w.C10 = Mma.Sync(w.C10, a1, b0); w.C11 = Mma.Sync(w.C11, a1, b1); w.C12 = Mma.Sync(w.C12, a1, b2); w.C13 = Mma.Sync(w.C13, a1, b3);
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
            w.C00 = Mma.FromStaged(w.C00, sm, sa, sb, lane); w.C01 = Mma.FromStaged(w.C01, sm, sa, sb + Mma.StageBFloats, lane);
            w.C02 = Mma.FromStaged(w.C02, sm, sa, sb + 2 * Mma.StageBFloats, lane); w.C03 = Mma.FromStaged(w.C03, sm, sa, sb + 3 * Mma.StageBFloats, lane);
            w.C10 = Mma.FromStaged(w.C10, sm, sa1, sb, lane); w.C11 = Mma.FromStaged(w.C11, sm, sa1, sb + Mma.StageBFloats, lane);
            w.C12 = Mma.FromStaged(w.C12, sm, sa1, sb + 2 * Mma.StageBFloats, lane); w.C13 = Mma.FromStaged(w.C13, sm, sa1, sb + 3 * Mma.StageBFloats, lane);
            Warp.Barrier();
        }
        return w;
    }

    // this lane's A registers of the 16x8 tile at k columns kk.. of the [k][m] A tile (row stride s); av starts
    // at this lane's register 0 of the warp's first tile (k = ACol(lane, 0), m = wm + ARow(lane, 0)), so
    // every offset below is a constant ptxas folds into the load (registers 1-3: 8 rows, 4 k, both further)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static FragA FragmentA(ArrayView<float> av, int s, int r0, int kk) => new()
    {
        A0 = Interop.FloatAsInt(av[kk * s + r0]),
        A1 = Interop.FloatAsInt(av[kk * s + r0 + 8]),
        A2 = Interop.FloatAsInt(av[(kk + 4) * s + r0]),
        A3 = Interop.FloatAsInt(av[(kk + 4) * s + r0 + 8]),
    };

    // this lane's B registers of the 8x8 tile at k rows kk.., columns c0.. of the [k][n] B tile; bv starts at
    // k = BRow(lane, 0), n = wn + BCol(lane)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static FragB FragmentB(ArrayView<float> bv, int s, int c0, int kk) => new()
    {
        B0 = Interop.FloatAsInt(bv[kk * s + c0]),
        B1 = Interop.FloatAsInt(bv[(kk + 4) * s + c0]),
    };

    static void PutAcc<TC>(ArrayView<float> c, ArrayView<float> bias, TC sc, GemmLaunch t, int z, int i0, int j0, int lane, Acc v)
        where TC : struct, IGemmOutput
    {
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 0), j0 + Mma.CCol(lane, 0), v.C0);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 1), j0 + Mma.CCol(lane, 1), v.C1);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 2), j0 + Mma.CCol(lane, 2), v.C2);
        Put(c, bias, sc, t, z, i0 + Mma.CRow(lane, 3), j0 + Mma.CCol(lane, 3), v.C3);
    }
}
