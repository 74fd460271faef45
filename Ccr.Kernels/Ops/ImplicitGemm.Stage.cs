using System.Runtime.CompilerServices;
using ILGPU;

namespace Ccr.Kernels.Ops;

/// <summary>Four floats moved as one 128-bit shared-memory access (ILGPU vectorises a struct load or store
/// through a view of this type: <c>ld.shared.v4.f32</c>).</summary>
internal struct F4 { public float X, Y, Z, W; }

/// <summary>Two floats moved as one 64-bit access.</summary>
internal struct F2 { public float X, Y; }

// How one operand tile (BMN x BK, stored [k][mn] in shared memory with row stride BMN + pad) is split among
// the block's threads. Each thread loads E = BMN BK / threads elements per stage, as NRows x NCols: rows are
// the mn it loads (fixed for the whole kernel: their Gather is computed once), columns the k (one Gather per
// column per stage).
//   mn-fast operands (consecutive mn adjacent in memory): G = min(4, E) adjacent mn per thread, consecutive
//     threads on consecutive groups (coalesced loads), NCols = E / G k rows spaced threads / (BMN / G) apart;
//     the G values of one column go to shared memory as one 64- or 128-bit store.
//   k-fast operands: NCols = 1 (E <= 4) or E / 4 adjacent k per thread, consecutive threads on consecutive k,
//     NRows = E / NCols mn spaced threads / (BK / NCols) apart; scalar stores.
// Every count is a compile-time constant once the kernel is specialised, so the element code below unrolls.
internal static partial class ImplicitGemm
{
    /// <summary>Reduction depth of one shared-memory stage.</summary>
    const int BK = GemmTiles.BK;

    struct Place { public int Mn0, MnStep, P0, PStep, NRows, NCols; }

    /// <summary>The four row gathers of one operand (up to four rows per thread).</summary>
    public struct Rows4 { public Gather R0, R1, R2, R3; }

    /// <summary>One thread's elements of one operand tile for one stage: V{c}{r} = column c, row r.</summary>
    public struct Vals16
    {
        public float V00, V01, V02, V03, V10, V11, V12, V13, V20, V21, V22, V23, V30, V31, V32, V33;
    }

    // every count is a power of two: masks and shifts (ILGPU keeps / and % of a signed int as divisions)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Log2(int v) => v >= 16 ? 4 + (v >= 256 ? 4 : v >= 128 ? 3 : v >= 64 ? 2 : v >= 32 ? 1 : 0) : v >= 8 ? 3 : v >= 4 ? 2 : v >= 2 ? 1 : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Place PlaceOf(int tid, int bmn, int threads, bool kFast)
    {
        int e = bmn * BK / threads;
        if (kFast)
        {
            int cols = e <= 4 ? 1 : e / 4, groups = BK / cols;
            return new Place { NCols = cols, NRows = e / cols, P0 = cols * (tid & (groups - 1)), PStep = 1, Mn0 = tid >> Log2(groups), MnStep = threads / groups };
        }
        int g = e < 4 ? e : 4, ng = bmn / g;
        return new Place { NRows = g, NCols = e / g, Mn0 = g * (tid & (ng - 1)), MnStep = 1, P0 = tid >> Log2(ng), PStep = threads / ng };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Gather RowAt<TOp>(TOp op, int z, Place pl, int origin, int len, int r) where TOp : struct, IGemmOperand
    {
        // a row past the end reads the last row: it only feeds outputs that are never stored
        return op.Row(z, Math.Min(origin + pl.Mn0 + r * pl.MnStep, len - 1));
    }

    static Rows4 RowsOf<TOp>(TOp op, int z, Place pl, int origin, int len) where TOp : struct, IGemmOperand
    {
        var rs = new Rows4();
        rs.R0 = RowAt(op, z, pl, origin, len, 0);
        if (pl.NRows > 1) rs.R1 = RowAt(op, z, pl, origin, len, 1);
        if (pl.NRows > 2) rs.R2 = RowAt(op, z, pl, origin, len, 2);
        if (pl.NRows > 3) rs.R3 = RowAt(op, z, pl, origin, len, 3);
        return rs;
    }

    // column c of the stage at k0: B's columns past the end are marked (its load returns 0), A's clamped
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Gather ColAt<TOp>(TOp op, Place pl, int k0, int kEnd, int c, bool isA) where TOp : struct, IGemmOperand
    {
        int k = k0 + pl.P0 + c * pl.PStep;
        if (isA) return op.Col(Math.Min(k, kEnd - 1));
        var g = op.Col(k);
        if (k >= kEnd) g.H = Gather.Invalid;
        return g;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Get<TOp>(ArrayView<float> src, TOp op, Gather row, Gather col, bool tf32, bool isA) where TOp : struct, IGemmOperand
    {
        float v = isA ? op.LoadAny(src, row, col) : op.Load(src, row, col);
        return tf32 ? Mma.RoundTf32(v) : v;
    }

    /// <summary>This thread's elements of stage [k0, k0 + BK) of one operand, into registers. A (<paramref name="isA"/>)
    /// loads without a k test: B is 0 past K.</summary>
    static Vals16 Fetch<TOp>(ArrayView<float> src, TOp op, Rows4 rs, Place pl, int k0, int kEnd, bool tf32, bool isA)
        where TOp : struct, IGemmOperand
    {
        var v = new Vals16();
        int nr = pl.NRows;
        var c0 = ColAt(op, pl, k0, kEnd, 0, isA);
        v.V00 = Get(src, op, rs.R0, c0, tf32, isA);
        if (nr > 1) v.V01 = Get(src, op, rs.R1, c0, tf32, isA);
        if (nr > 2) v.V02 = Get(src, op, rs.R2, c0, tf32, isA);
        if (nr > 3) v.V03 = Get(src, op, rs.R3, c0, tf32, isA);
        if (pl.NCols > 1)
        {
            var c1 = ColAt(op, pl, k0, kEnd, 1, isA);
            v.V10 = Get(src, op, rs.R0, c1, tf32, isA);
            if (nr > 1) v.V11 = Get(src, op, rs.R1, c1, tf32, isA);
            if (nr > 2) v.V12 = Get(src, op, rs.R2, c1, tf32, isA);
            if (nr > 3) v.V13 = Get(src, op, rs.R3, c1, tf32, isA);
        }
        if (pl.NCols > 2)
        {
            var c2 = ColAt(op, pl, k0, kEnd, 2, isA);
            v.V20 = Get(src, op, rs.R0, c2, tf32, isA);
            if (nr > 1) v.V21 = Get(src, op, rs.R1, c2, tf32, isA);
            if (nr > 2) v.V22 = Get(src, op, rs.R2, c2, tf32, isA);
            if (nr > 3) v.V23 = Get(src, op, rs.R3, c2, tf32, isA);
        }
        if (pl.NCols > 3)
        {
            var c3 = ColAt(op, pl, k0, kEnd, 3, isA);
            v.V30 = Get(src, op, rs.R0, c3, tf32, isA);
            if (nr > 1) v.V31 = Get(src, op, rs.R1, c3, tf32, isA);
            if (nr > 2) v.V32 = Get(src, op, rs.R2, c3, tf32, isA);
            if (nr > 3) v.V33 = Get(src, op, rs.R3, c3, tf32, isA);
        }
        return v;
    }

    // column c's values (rows 0..3) to shared row p of the tile; first = this thread's element (row 0, column 0),
    // so every offset below is a compile-time constant that ptxas folds into the store
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PutColumn(ArrayView<float> first, Place pl, bool kFast, int s, int c, float r0, float r1, float r2, float r3)
    {
        int at = c * pl.PStep * s;
        if (!kFast && pl.NRows == 4)
        {
            first.SubView(at).Cast<F4>()[0] = new F4 { X = r0, Y = r1, Z = r2, W = r3 };
            return;
        }
        if (!kFast && pl.NRows == 2)
        {
            first.SubView(at).Cast<F2>()[0] = new F2 { X = r0, Y = r1 };
            return;
        }
        first[at] = r0;
        if (pl.NRows > 1) first[at + pl.MnStep] = r1;
        if (pl.NRows > 2) first[at + 2 * pl.MnStep] = r2;
        if (pl.NRows > 3) first[at + 3 * pl.MnStep] = r3;
    }

    /// <summary>Registers from <see cref="Fetch{TOp}"/> to the operand tile at <paramref name="at"/>.</summary>
    static void Deposit(ArrayView<float> sm, Place pl, bool kFast, int at, int s, Vals16 v)
    {
        var first = sm.SubView(at + pl.P0 * s + pl.Mn0);
        PutColumn(first, pl, kFast, s, 0, v.V00, v.V01, v.V02, v.V03);
        if (pl.NCols > 1) PutColumn(first, pl, kFast, s, 1, v.V10, v.V11, v.V12, v.V13);
        if (pl.NCols > 2) PutColumn(first, pl, kFast, s, 2, v.V20, v.V21, v.V22, v.V23);
        if (pl.NCols > 3) PutColumn(first, pl, kFast, s, 3, v.V30, v.V31, v.V32, v.V33);
    }
}
