using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class GemmTests
{
    [Theory]
    [InlineData("cpu", 1, 1, 1)]
    [InlineData("cpu", 7, 33, 65)]
    [InlineData("cpu", 65, 7, 33)]
    [InlineData("cpu", 33, 65, 7)]
    [InlineData("cpu", 1, 77, 300)]
    [InlineData("cpu", 67, 600, 300)] // crosses the CPU variant's K (256) and N (512) blocks
    [InlineData("cuda-on-cpu", 1, 1, 1)]
    [InlineData("cuda-on-cpu", 7, 33, 65)]
    [InlineData("cuda-on-cpu", 65, 70, 17)]
    public void MatchesReferenceForEveryTransposeAndBeta(string dev, int m, int n, int k)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(m * 10007 + n * 101 + k);
        foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var a = Rand.Floats(r, (long)m * k); var b = Rand.Floats(r, (long)k * n); var c0 = Rand.Floats(r, (long)m * n);
            float alpha = 0.75f, beta = ta ? -0.5f : 0f;
            using var scope = new TensorScope();
            var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
            var tC = Tensor.FromArray(d, c0, c0.Length);
            Gemm.Run(d, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, alpha, beta);
            var e = Gemm.Reference.Run(Rand.D(c0), Rand.D(a), Rand.D(b), m, n, k, ta, tb, alpha, beta);
            Tol.Close(e, tC.ToArray(), 1e-5, 1e-4, $"gemm {dev} M{m} N{n} K{k} transA {ta} transB {tb}");
        }
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void CpuGemmMatchesReferenceAtBothSimdWidths(bool wide)
    {
        // the CPU variant's 512-bit micro-kernel (AVX-512 machines) and its 256-bit one (the rest): each
        // machine runs one of them in every other test, so both are pinned here
        Skip.If(wide && !Gemm.Wide512Supported, "no AVX-512 on this machine");
        var d = Devices.Cpu;
        bool keep = Gemm.Wide;
        Gemm.Wide = wide;
        try
        {
            foreach (var (m, n, k) in new[] { (1, 1, 1), (9, 31, 5), (17, 33, 300), (8, 64, 1100), (70, 600, 257) })
            {
                var r = Rand.New(m * 31 + n * 7 + k);
                foreach (var (ta, tb, beta) in new[] { (false, false, 0f), (true, false, 0.5f), (false, true, -1f), (true, true, 0f) })
                {
                    var a = Rand.Floats(r, (long)m * k); var b = Rand.Floats(r, (long)k * n); var c0 = Rand.Floats(r, (long)m * n);
                    using var scope = new TensorScope();
                    var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
                    var tC = Tensor.FromArray(d, c0, c0.Length);
                    Gemm.Run(d, tC.Data, tA.Data, tB.Data, m, n, k, ta, tb, 1.25f, beta);
                    var e = Gemm.Reference.Run(Rand.D(c0), Rand.D(a), Rand.D(b), m, n, k, ta, tb, 1.25, beta);
                    Tol.Close(e, tC.ToArray(), 1e-5, 1e-4, $"cpu gemm {(wide ? 512 : 256)}-bit M{m} N{n} K{k} transA {ta} transB {tb} beta {beta}");
                }
            }
        }
        finally { Gemm.Wide = keep; }
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void BatchedWithSharedAMatchesReference(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(5);
        int batch = 3, m = 5, n = 19, k = 9;
        var a = Rand.Floats(r, m * k); var b = Rand.Floats(r, batch * k * n);
        using var scope = new TensorScope();
        var tA = Tensor.FromArray(d, a, a.Length); var tB = Tensor.FromArray(d, b, b.Length);
        var c = Tensor.Full(d, float.NaN, batch * m * n); // beta = 0 must ignore NaN
        Gemm.Batched(d, c.Data, tA.Data, tB.Data, batch, m, n, k, m * n, 0, k * n);
        var got = c.ToArray();
        for (int z = 0; z < batch; z++)
        {
            var e = Gemm.Reference.Run(null, Rand.D(a), Rand.D(b.AsSpan(z * k * n, k * n).ToArray()), m, n, k);
            Tol.Close(e, got.AsSpan(z * m * n, m * n), 1e-5, 1e-4, $"batched gemm {dev} z={z}");
        }
    }

    [Fact]
    public void TooSmallBuffersAreRejectedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var a = Tensor.Zeros(d, 6); var b = Tensor.Zeros(d, 6); var c = Tensor.Zeros(d, 4);
        var e = Assert.Throws<ArgumentException>(() => Gemm.Run(d, c.Data, a.Data, b.Data, 2, 2, 4));
        Assert.Contains("A (2, 4)", e.Message);
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void MatMulBackwardMatchesReference(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(11);
        int m = 5, k = 7, n = 3;
        var a = Rand.Floats(r, m * k); var b = Rand.Floats(r, k * n); var dy = Rand.Floats(r, m * n);
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(d, a, m, k); ta.RequiresGrad = true;
        var tb = Tensor.FromArray(d, b, k, n); tb.RequiresGrad = true;
        var y = F.MatMul(ta, tb);
        Tol.Close(Gemm.Reference.Run(null, Rand.D(a), Rand.D(b), m, n, k), y.ToArray(), 1e-5, 1e-4, "matmul");
        y.Backward(Tensor.FromArray(d, dy, m, n));
        Tol.Close(Gemm.Reference.Run(null, Rand.D(dy), Rand.D(b), m, k, n, transB: true), ta.Grad!.ToArray(), 1e-5, 1e-4, "matmul da");
        Tol.Close(Gemm.Reference.Run(null, Rand.D(a), Rand.D(dy), k, n, m, transA: true), tb.Grad!.ToArray(), 1e-5, 1e-4, "matmul db");
        // the reference's da through finite differences of sum(dy * a b)
        var fd = Rand.NumericGrad(av => Rand.Dot(Gemm.Reference.Run(null, av, Rand.D(b), m, n, k), Rand.D(dy)), Rand.D(a));
        Tol.Close(fd, ta.Grad!.ToArray(), 1e-4, 1e-3, "matmul da vs finite differences");
        ta.Grad.Dispose(); tb.Grad!.Dispose();
    }
}
