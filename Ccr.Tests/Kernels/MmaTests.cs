using Ccr.Kernels.Ops;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>
/// The warp-level TF32 multiply: its fragment layout against the PTX ISA's table, TF32 rounding against an
/// independent definition, and the whole 16x8x8 product through the fragments against a plain product.
/// A layout that was wrong but used consistently would still multiply correctly through the CPU emulation,
/// which is why the layout is also checked entry by entry against the ISA text; on a GPU the product test
/// runs the real <c>mma.sync</c>.
/// </summary>
public class MmaTests
{
    // PTX ISA 9.7.14.5.7, "Matrix Fragments for mma.m16n8k8", .tf32, written out as the ISA states it:
    // groupID = laneid >> 2, threadID_in_group = laneid % 4;
    // A: row = groupID for a0 and a2, groupID + 8 for a1 and a3; col = threadID_in_group for a0 and a1, + 4 for a2 and a3.
    // B: row = threadID_in_group for b0, + 4 for b1; col = groupID.
    // C: row = groupID for c0 and c1, groupID + 8 for c2 and c3; col = threadID_in_group * 2 + (i & 1).
    [Fact]
    public void FragmentLayoutIsThePtxIsaTable()
    {
        for (int lane = 0; lane < 32; lane++)
        {
            int group = lane / 4, tig = lane % 4;
            int[] aRow = [group, group + 8, group, group + 8], aCol = [tig, tig, tig + 4, tig + 4];
            for (int r = 0; r < 4; r++)
            {
                Assert.Equal(aRow[r], Mma.ARow(lane, r));
                Assert.Equal(aCol[r], Mma.ACol(lane, r));
                Assert.Equal(r < 2 ? group : group + 8, Mma.CRow(lane, r));
                Assert.Equal(tig * 2 + (r & 1), Mma.CCol(lane, r));
            }
            Assert.Equal(tig, Mma.BRow(lane, 0));
            Assert.Equal(tig + 4, Mma.BRow(lane, 1));
            Assert.Equal(group, Mma.BCol(lane));
        }
        // spot checks read off the ISA's figures: lane 5 is group 1, thread 1
        Assert.Equal((9, 5), (Mma.ARow(5, 3), Mma.ACol(5, 3)));
        Assert.Equal((5, 1), (Mma.BRow(5, 1), Mma.BCol(5)));
        Assert.Equal((9, 3), (Mma.CRow(5, 3), Mma.CCol(5, 3)));
    }

    [Fact]
    public void EachMatrixElementIsHeldByExactlyOneLaneRegister()
    {
        var a = new int[16 * 8]; var b = new int[8 * 8]; var c = new int[16 * 8];
        for (int lane = 0; lane < 32; lane++)
        {
            for (int r = 0; r < 4; r++) { a[Mma.ARow(lane, r) * 8 + Mma.ACol(lane, r)]++; c[Mma.CRow(lane, r) * 8 + Mma.CCol(lane, r)]++; }
            for (int r = 0; r < 2; r++) b[Mma.BRow(lane, r) * 8 + Mma.BCol(lane)]++;
        }
        Assert.All(a, n => Assert.Equal(1, n));
        Assert.All(b, n => Assert.Equal(1, n));
        Assert.All(c, n => Assert.Equal(1, n));
    }

    // round to 11 significant bits, ties away from zero, in float64 arithmetic (no bit tricks)
    static float Tf32ByArithmetic(float x)
    {
        if (x == 0 || !float.IsFinite(x)) return x;
        int e = (int)Math.Floor(Math.Log2(Math.Abs((double)x)));
        e = Math.Max(e, -126); // subnormals share the smallest normal exponent's spacing
        double unit = Math.Pow(2, e - 10);
        return (float)(Math.Round(x / unit, MidpointRounding.AwayFromZero) * unit);
    }

    [Fact]
    public void Tf32RoundingIsNearestTiesAwayFromZero()
    {
        var r = Rand.New(7);
        for (int i = 0; i < 20000; i++)
        {
            float x = BitConverter.Int32BitsToSingle((int)(r.NextUInt() & 0x7FFFFFFF)) * (i % 2 == 0 ? 1 : -1);
            if (!float.IsFinite(x) || Math.Abs(x) > 3e38f) continue;
            Assert.Equal(Tf32ByArithmetic(x), Mma.RoundTf32(x));
        }
        // ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10: away from zero, both signs
        Assert.Equal(1f + MathF.Pow(2, -10), Mma.RoundTf32(1f + MathF.Pow(2, -11)));
        Assert.Equal(-(1f + MathF.Pow(2, -10)), Mma.RoundTf32(-(1f + MathF.Pow(2, -11))));
        Assert.Equal(1f, Mma.RoundTf32(1f + MathF.Pow(2, -12)));
        // a carry into the exponent, the largest float rounds to infinity, special values pass
        Assert.Equal(2f, Mma.RoundTf32(BitConverter.Int32BitsToSingle(0x3FFFFFFF)));
        Assert.Equal(float.PositiveInfinity, Mma.RoundTf32(float.MaxValue));
        Assert.Equal(float.NegativeInfinity, Mma.RoundTf32(float.NegativeInfinity));
        Assert.True(float.IsNaN(Mma.RoundTf32(float.NaN)));
        Assert.True(float.IsNaN(Mma.RoundTf32(BitConverter.Int32BitsToSingle(0x7F800001)))); // NaN with only low mantissa bits
        Assert.Equal(0u, Mma.RoundTf32Bits(0x80000000u) & 0x7FFFFFFFu); // -0 stays zero
        // every result has its 13 low mantissa bits clear
        for (int i = 0; i < 1000; i++)
        {
            uint u = r.NextUInt();
            if ((u & 0x7F800000u) != 0x7F800000u) Assert.Equal(0u, Mma.RoundTf32Bits(u) & 0x1FFFu);
        }
    }

    static void CheckProduct(Ccr.Kernels.Device d, int seed)
    {
        var r = Rand.New(seed);
        var a = Rand.Floats(r, 128); var b = Rand.Floats(r, 64); var c = Rand.Floats(r, 128, -4, 4);
        var got = Mma.Multiply16x8x8(d, a, b, c);
        // products of tf32 values are exact in fp32; only the fp32 accumulation of 8 terms rounds
        Tol.Close(Mma.Reference16x8x8(a, b, c), got, 1e-5, 1e-5, $"mma 16x8x8 on {d.Accelerator.AcceleratorType}");
        // and it is a TF32 product: differs from the unrounded one by about 2^-10 of sum |a b|
        var exact = new double[128];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double s = c[i * 8 + j];
                for (int k = 0; k < 8; k++) s += (double)a[i * 8 + k] * b[k * 8 + j];
                exact[i * 8 + j] = s;
            }
        Tol.Close(exact, got, 8 * Math.Pow(2, -10), 0, "mma 16x8x8 against the unrounded product");
    }

    [Fact]
    public void WarpProductThroughFragmentsMatchesPlainProduct() => CheckProduct(Devices.CudaOnCpu, 11);

    [SkippableFact]
    public void TensorCoreProductMatchesPlainProduct()
    {
        Skip.If(Devices.Gpu == null, "no CUDA device");
        CheckProduct(Devices.Gpu!, 12);
    }
}
