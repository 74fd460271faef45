using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>The CPU variant's packed GEMM (Gemm.Packed.cs): awkward shapes at both SIMD widths against the
/// float64 reference, block and tile edges, and results that do not depend on the thread count.</summary>
public class GemmPackedTests
{
    // (M, N, K): unit, primes, tall / skinny / short-wide, K = 1, a K of 2000 (several K blocks), N across NC
    public static TheoryData<bool, int, int, int> AwkwardShapes()
    {
        var data = new TheoryData<bool, int, int, int>();
        foreach (bool wide in new[] { false, true })
            foreach (var (m, n, k) in new[] { (1, 1, 1), (37, 53, 61), (1000, 3, 17), (3, 1000, 17), (2, 5, 2000), (64, 64, 1), (29, 1400, 40), (7, 9, 2000) })
                data.Add(wide, m, n, k);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(AwkwardShapes))]
    public void MatchesFloat64ReferenceAtAwkwardShapes(bool wide, int m, int n, int k)
    {
        Skip.If(wide && !Gemm.Wide512Supported, "no AVX-512 on this machine");
        WithWidth(wide, () =>
        {
            var r = Rand.New(m * 7919 + n * 104729 + k * 31 + (wide ? 1 : 0));
            foreach (var (ta, tb, beta) in new[] { (false, false, 0f), (true, false, 1f), (false, true, -0.5f), (true, true, 0f) })
                Check(r, m, n, k, ta, tb, 0.75f, beta, $"{(wide ? 512 : 256)}-bit");
        });
    }

    /// <summary>Shapes one either side of the micro-tile (MR x NR) and of the K block (KC) the packing sizes
    /// from the caches: zero-padded panel rows and strip columns are computed but never stored.</summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void TileAndBlockEdgesArePackedAndStoredExactly(bool wide)
    {
        Skip.If(wide && !Gemm.Wide512Supported, "no AVX-512 on this machine");
        WithWidth(wide, () =>
        {
            int mr = wide ? 12 : 6, nr = wide ? 32 : 2 * System.Numerics.Vector<float>.Count;
            int kc = Gemm.Blocking(mr, nr).KC;
            var r = Rand.New(17 + (wide ? 1 : 0));
            foreach (var (m, n, k) in new[] { (mr, nr, kc), (mr - 1, nr + 1, kc + 1), (mr + 1, nr - 1, kc - 1), (2 * mr, 2 * nr, 2 * kc + 3) })
                foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                    Check(r, m, n, k, ta, tb, -1.5f, 0f, $"edge {(wide ? 512 : 256)}-bit");
        });
    }

    /// <summary>A batch packs its shared operand once for all of K: shared A or B, with and without the C^T
    /// orientation (N = 12), across K blocks, against the reference image by image.</summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void BatchesWithASharedOperandMatchReference(bool wide)
    {
        Skip.If(wide && !Gemm.Wide512Supported, "no AVX-512 on this machine");
        WithWidth(wide, () =>
        {
            var d = Devices.Cpu;
            foreach (var (batch, m, n, k, ta, tb, sharedA) in new[] { (8, 72, 48, 648, false, false, true), (4, 144, 12, 1296, false, false, true),
                                                                      (3, 648, 12, 72, true, false, true), (5, 12, 144, 700, false, true, false),
                                                                      (6, 37, 53, 61, true, true, false) })
            {
                var r = Rand.New(batch * 1000 + m + n + k);
                var a = Rand.Floats(r, (long)m * k * (sharedA ? 1 : batch)); var b = Rand.Floats(r, (long)k * n * (sharedA ? batch : 1));
                using var scope = new TensorScope();
                var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
                var tC = Tensor.Full(d, float.NaN, batch * m * n);
                Gemm.Batched(d, tC.Data, tA.Data, tB.Data, batch, m, n, k, (long)m * n, sharedA ? 0 : (long)m * k, sharedA ? (long)k * n : 0, ta, tb, 0.5f);
                var got = tC.ToArray();
                for (int z = 0; z < batch; z++)
                {
                    var az = sharedA ? a : a.AsSpan(z * m * k, m * k).ToArray();
                    var bz = sharedA ? b.AsSpan(z * k * n, k * n).ToArray() : b;
                    var e = Gemm.Reference.Run(null, Rand.D(az), Rand.D(bz), m, n, k, ta, tb, 0.5);
                    Tol.Close(e, got.AsSpan(z * m * n, m * n), 1e-5 + 1e-7 * k, 1e-4,
                              $"batched packed gemm {(wide ? 512 : 256)}-bit z={z} of {batch} M{m} N{n} K{k} transA {ta} transB {tb} shared {(sharedA ? "A" : "B")}");
                }
            }
        });
    }

    /// <summary>Threads split only whole tiles of a K block, so every output sums in one order: 1, 2 and 3
    /// threads, with or without the packing fused into an N split, must give the same bits (also the CPU variant's contract with data-parallel training).</summary>
    [Fact]
    public void ResultsAreBitwiseEqualForAnyThreadCount()
    {
        var d = Devices.Cpu;
        int keep = Gemm.PackedThreads;
        try
        {
            // split over M and N, over N only, computed as C^T (N = 12 pads a 32-wide tile), and a conv chunk's
            // batch of 8 products with one shared A (split over the batch)
            foreach (var (batch, m, n, k, ta, tb) in new[] { (1, 200, 700, 300, false, false), (1, 96, 1300, 600, true, false), (1, 333, 257, 129, false, true),
                                                              (1, 18, 3072, 288, true, true), (1, 1296, 12, 144, true, false), (8, 72, 48, 648, false, false) })
            {
                var r = Rand.New(m + n + k);
                var a = Rand.Floats(r, (long)m * k); var b = Rand.Floats(r, (long)k * n * batch);
                float[] Run(int threads)
                {
                    Gemm.PackedThreads = threads;
                    using var scope = new TensorScope();
                    var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
                    var tC = Tensor.Full(d, float.NaN, m * n * batch);
                    Gemm.Batched(d, tC.Data, tA.Data, tB.Data, batch, m, n, k, (long)m * n, 0, (long)k * n, ta, tb);
                    return tC.ToArray();
                }
                var one = Run(1);
                // 2 and 3 threads with the strips packed inside the N split (FusedPacking, where it applies) and in a
                // round of their own before an M-first split
                foreach (var (threads, fused) in new[] { (2, true), (3, true), (2, false), (3, false) })
                {
                    Gemm.FusedPacking = fused;
                    var many = Run(threads);
                    for (int i = 0; i < one.Length; i++)
                        if (BitConverter.SingleToInt32Bits(one[i]) != BitConverter.SingleToInt32Bits(many[i]))
                            Assert.Fail($"batch {batch} M{m} N{n} K{k} transA {ta} transB {tb}: element {i} is {one[i]:R} on 1 thread, {many[i]:R} on {threads} (fused packing {fused})");
                }
                Gemm.FusedPacking = true;
                Assert.Equal(one, Run(1)); // and run to run
            }
        }
        finally { Gemm.PackedThreads = keep; Gemm.FusedPacking = true; }
    }

    static void Check(Rng r, int m, int n, int k, bool ta, bool tb, float alpha, float beta, string what)
    {
        var d = Devices.Cpu;
        var a = Rand.Floats(r, (long)m * k); var b = Rand.Floats(r, (long)k * n);
        var c0 = beta == 0f ? Enumerable.Repeat(float.NaN, m * n).ToArray() : Rand.Floats(r, (long)m * n); // beta 0 ignores C, NaN too
        using var scope = new TensorScope();
        var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
        var tC = Tensor.FromArray(d, c0, c0.Length);
        Gemm.Run(d, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, alpha, beta);
        var e = Gemm.Reference.Run(beta == 0f ? null : Rand.D(c0), Rand.D(a), Rand.D(b), m, n, k, ta, tb, alpha, beta);
        // float32 sums of k products in [-1, 1]: the absolute error grows with k
        Tol.Close(e, tC.ToArray(), 1e-5 + 1e-7 * k, 1e-4, $"packed gemm {what} M{m} N{n} K{k} transA {ta} transB {tb} beta {beta}");
    }

    static void WithWidth(bool wide, Action body)
    {
        bool keep = Gemm.Wide;
        Gemm.Wide = wide;
        try { body(); }
        finally { Gemm.Wide = keep; }
    }
}
