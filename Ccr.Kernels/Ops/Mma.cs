using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Ccr.Kernels.Ops;

/// <summary>A fragment of the 16x8 (rows x k) A operand of <c>mma.m16n8k8</c>, as tf32 bit patterns in
/// PTX register order a0..a3: lane = 4 * group + t holds A(group, t), A(group + 8, t), A(group, t + 4),
/// A(group + 8, t + 4).</summary>
internal struct FragA { public uint A0, A1, A2, A3; }

/// <summary>A fragment of the 8x8 (k x cols) B operand: lane = 4 * group + t holds B(t, group), B(t + 4, group).</summary>
internal struct FragB { public uint B0, B1; }

/// <summary>A fragment of the 16x8 fp32 accumulator: lane = 4 * group + t holds C(group, 2t), C(group, 2t + 1),
/// C(group + 8, 2t), C(group + 8, 2t + 1).</summary>
internal struct Acc { public float C0, C1, C2, C3; }

/// <summary>
/// The warp-level TF32 multiply D = A (16x8) B (8x8) + C of <c>mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32</c>
/// (PTX ISA 9.7.14.5.7 gives the fragment layout written out in <see cref="ARow"/> .. <see cref="CCol"/>).
/// On a CUDA device it is one inline-PTX instruction (<see cref="Sync"/>). Elsewhere (the CPU accelerator,
/// 32-lane warps) the same contract is emulated: each lane publishes exactly the registers mma.sync would
/// give it into a per-warp shared scratch at their matrix positions (<see cref="StageA"/>, <see cref="StageB"/>),
/// the warp synchronises, and each lane forms the four accumulator entries it owns from the staged
/// matrices (<see cref="FromStaged"/>). Kernels stage all fragments of one k-step, then synchronise once,
/// so the emulation costs two warp barriers per k-step, not per instruction. Operands are tf32 bit patterns:
/// fp32 values rounded by <see cref="RoundTf32"/> (what <c>cvt.rna.tf32.f32</c> does), so the hardware's
/// products are exact and the emulation's agree with them.
/// </summary>
internal static class Mma
{
    /// <summary>Floats of shared scratch one warp needs to stage one 16x8 A and one 8x8 B fragment.</summary>
    public const int StageAFloats = 16 * 8, StageBFloats = 8 * 8;

    // ---------------------------------------------------------------- fragment layout (PTX ISA)

    /// <summary>Row of A held by register <paramref name="reg"/> (0..3) of <paramref name="lane"/>.</summary>
    public static int ARow(int lane, int reg) => (lane >> 2) + ((reg & 1) << 3);
    /// <summary>Column (k) of A held by register <paramref name="reg"/> of <paramref name="lane"/>.</summary>
    public static int ACol(int lane, int reg) => (lane & 3) + ((reg >> 1) << 2);
    /// <summary>Row (k) of B held by register <paramref name="reg"/> (0..1) of <paramref name="lane"/>.</summary>
    public static int BRow(int lane, int reg) => (lane & 3) + (reg << 2);
    /// <summary>Column of B held by every register of <paramref name="lane"/>.</summary>
    public static int BCol(int lane) => lane >> 2;
    /// <summary>Row of C / D held by register <paramref name="reg"/> (0..3) of <paramref name="lane"/>.</summary>
    public static int CRow(int lane, int reg) => (lane >> 2) + ((reg >> 1) << 3);
    /// <summary>Column of C / D held by register <paramref name="reg"/> of <paramref name="lane"/>.</summary>
    public static int CCol(int lane, int reg) => ((lane & 3) << 1) + (reg & 1);

    // ---------------------------------------------------------------- TF32 rounding

    /// <summary>
    /// fp32 to tf32 (8-bit exponent, 10-bit mantissa, stored in an fp32 with the low 13 bits zero), rounding
    /// to nearest with ties away from zero as <c>cvt.rna.tf32.f32</c> does: adding half of the dropped
    /// 13-bit unit to the magnitude bits and truncating rounds ties away from zero (the sign bit is
    /// separate); a carry into the exponent is the correct rounding up, to infinity at the top. Infinities
    /// pass through; NaN stays NaN (its mantissa is kept non-zero after truncation).
    /// </summary>
    public static float RoundTf32(float x) => Interop.IntAsFloat(RoundTf32Bits(Interop.FloatAsInt(x)));

    /// <summary><see cref="RoundTf32"/> on the bit pattern.</summary>
    public static uint RoundTf32Bits(uint bits)
    {
        // written as selects, not branches: the GEMM kernels round every staged element
        uint rounded = (bits + 0x00001000u) & 0xFFFFE000u;
        uint special = (bits & 0x007FFFFFu) != 0 ? bits | 0x00400000u : bits; // NaN (quiet, survives truncation) or infinity
        return (bits & 0x7F800000u) == 0x7F800000u ? special : rounded;
    }

    // ---------------------------------------------------------------- the tensor-core instruction

    /// <summary>c + a b on the tensor cores. Only under <c>if (CudaAsm.IsSupported)</c>: elsewhere inline PTX throws.</summary>
    public static Acc Sync(Acc c, FragA a, FragB b)
    {
        Ref<float> c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        // operands as 32-bit integer registers: ptxas rejects .f32 registers for tf32 operands (docs/DESIGN.md)
        Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, b0 = b.B0, b1 = b.B1;
        CudaAsm.EmitRef(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
            ref c0, ref c1, ref c2, ref c3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
        return new Acc { C0 = c0.Value, C1 = c1.Value, C2 = c2.Value, C3 = c3.Value };
    }

    // ---------------------------------------------------------------- emulation through shared memory

    /// <summary>Writes this lane's A registers to their places in a 16x8 row-major matrix at
    /// <paramref name="offset"/> of the warp's scratch.</summary>
    public static void StageA(ArrayView<float> s, int offset, int lane, FragA a)
    {
        s[offset + ARow(lane, 0) * 8 + ACol(lane, 0)] = Interop.IntAsFloat(a.A0);
        s[offset + ARow(lane, 1) * 8 + ACol(lane, 1)] = Interop.IntAsFloat(a.A1);
        s[offset + ARow(lane, 2) * 8 + ACol(lane, 2)] = Interop.IntAsFloat(a.A2);
        s[offset + ARow(lane, 3) * 8 + ACol(lane, 3)] = Interop.IntAsFloat(a.A3);
    }

    /// <summary>Writes this lane's B registers to their places in an 8x8 row-major (k, col) matrix.</summary>
    public static void StageB(ArrayView<float> s, int offset, int lane, FragB b)
    {
        s[offset + BRow(lane, 0) * 8 + BCol(lane)] = Interop.IntAsFloat(b.B0);
        s[offset + BRow(lane, 1) * 8 + BCol(lane)] = Interop.IntAsFloat(b.B1);
    }

    /// <summary>c + A B for the four entries this lane owns, from matrices staged by the whole warp
    /// (call between two <c>Warp.Barrier()</c>s: after every lane staged, before any lane restages).</summary>
    public static Acc FromStaged(Acc c, ArrayView<float> s, int aOffset, int bOffset, int lane) => new()
    {
        C0 = Dot(c.C0, s, aOffset + CRow(lane, 0) * 8, bOffset + CCol(lane, 0)),
        C1 = Dot(c.C1, s, aOffset + CRow(lane, 1) * 8, bOffset + CCol(lane, 1)),
        C2 = Dot(c.C2, s, aOffset + CRow(lane, 2) * 8, bOffset + CCol(lane, 2)),
        C3 = Dot(c.C3, s, aOffset + CRow(lane, 3) * 8, bOffset + CCol(lane, 3)),
    };

    // c + sum over k of A(row, k) B(k, col): a row of 8 against a column of stride 8
    static float Dot(float c, ArrayView<float> s, int aRow, int bCol)
    {
        for (int k = 0; k < 8; k++) c += s[aRow + k] * s[bCol + k * 8];
        return c;
    }

    // ---------------------------------------------------------------- one warp, one instruction (tests, verify)

    // d (16x8) = a (16x8) b (8x8) + c (16x8), all row-major, through the fragments: each lane loads exactly its
    // registers by the layout functions, multiplies, and writes back the accumulator entries it owns
    static void SingleKernel(ArrayView<float> d, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var scratch = SharedMemory.Allocate<float>(StageAFloats + StageBFloats);
        int lane = Warp.LaneIdx;
        var fa = new FragA
        {
            A0 = RoundTf32Bits(Interop.FloatAsInt(a[ARow(lane, 0) * 8 + ACol(lane, 0)])),
            A1 = RoundTf32Bits(Interop.FloatAsInt(a[ARow(lane, 1) * 8 + ACol(lane, 1)])),
            A2 = RoundTf32Bits(Interop.FloatAsInt(a[ARow(lane, 2) * 8 + ACol(lane, 2)])),
            A3 = RoundTf32Bits(Interop.FloatAsInt(a[ARow(lane, 3) * 8 + ACol(lane, 3)])),
        };
        var fb = new FragB
        {
            B0 = RoundTf32Bits(Interop.FloatAsInt(b[BRow(lane, 0) * 8 + BCol(lane)])),
            B1 = RoundTf32Bits(Interop.FloatAsInt(b[BRow(lane, 1) * 8 + BCol(lane)])),
        };
        var acc = new Acc
        {
            C0 = c[CRow(lane, 0) * 8 + CCol(lane, 0)], C1 = c[CRow(lane, 1) * 8 + CCol(lane, 1)],
            C2 = c[CRow(lane, 2) * 8 + CCol(lane, 2)], C3 = c[CRow(lane, 3) * 8 + CCol(lane, 3)],
        };
        if (CudaAsm.IsSupported) acc = Sync(acc, fa, fb);
        else
        {
            StageA(scratch, 0, lane, fa);
            StageB(scratch, StageAFloats, lane, fb);
            Warp.Barrier();
            acc = FromStaged(acc, scratch, 0, StageAFloats, lane);
            Warp.Barrier();
        }
        d[CRow(lane, 0) * 8 + CCol(lane, 0)] = acc.C0; d[CRow(lane, 1) * 8 + CCol(lane, 1)] = acc.C1;
        d[CRow(lane, 2) * 8 + CCol(lane, 2)] = acc.C2; d[CRow(lane, 3) * 8 + CCol(lane, 3)] = acc.C3;
    }

    sealed class Kernels(Device d)
    {
        public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Single =
            d.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SingleKernel);
    }

    /// <summary>D (16x8) = A (16x8) B (8x8) + C (16x8), row-major, computed by one warp through the fragment
    /// registers (tensor cores on a GPU, the shared-memory emulation elsewhere). A and B are rounded to tf32.</summary>
    public static float[] Multiply16x8x8(Device d, float[] a, float[] b, float[] c)
    {
        if (a.Length != 128 || b.Length != 64 || c.Length != 128)
            throw new ArgumentException($"mma 16x8x8: A needs 128, B 64, C 128 values, got {a.Length}, {b.Length}, {c.Length}");
        if (d.Accelerator.WarpSize != 32)
            throw new NotSupportedException($"mma 16x8x8 needs 32-lane warps; {d.Accelerator.Name} has {d.Accelerator.WarpSize}");
        using var block = d.Pool.Rent((128 + 128 + 64 + 128) * 4);
        var dv = new Buf<float>(block, 0, 128); var av = new Buf<float>(block, 128, 128);
        var bv = new Buf<float>(block, 256, 64); var cv = new Buf<float>(block, 320, 128);
        av.CopyFrom(a); bv.CopyFrom(b); cv.CopyFrom(c);
        d.Kernels(static d => new Kernels(d)).Single(new KernelConfig(1, 32), dv.View, av.View, bv.View, cv.View);
        return dv.ToArray();
    }

    /// <summary>float64 reference of <see cref="Multiply16x8x8"/>: the plain product of the tf32-rounded operands plus C.</summary>
    public static double[] Reference16x8x8(float[] a, float[] b, float[] c)
    {
        var d = new double[128];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double s = c[i * 8 + j];
                for (int k = 0; k < 8; k++) s += (double)RoundTf32(a[i * 8 + k]) * RoundTf32(b[k * 8 + j]);
                d[i * 8 + j] = s;
            }
        return d;
    }
}

