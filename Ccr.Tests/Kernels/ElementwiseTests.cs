using Ccr.Nn.Functional;
using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class ElementwiseTests
{
    [Theory]
    [InlineData("cpu", 1)]
    [InlineData("cpu", 1037)]
    [InlineData("cuda-on-cpu", 1)]
    [InlineData("cuda-on-cpu", 777)]
    public void BinaryOpsMatchReference(string dev, int n)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(n);
        var a = Rand.Floats(r, n); var b = Rand.Floats(r, n);
        using var ta = Tensor.FromArray(d, a, n);
        using var tb = Tensor.FromArray(d, b, n);
        using var y = Tensor.Empty(d, n);
        Elementwise.Add(d, y.Data, ta.Data, tb.Data);
        Tol.Close(Elementwise.Reference.Add(Rand.D(a), Rand.D(b)), y.ToArray(), 1e-6, 1e-6, "add");
        Elementwise.Sub(d, y.Data, ta.Data, tb.Data);
        Tol.Close(Elementwise.Reference.Sub(Rand.D(a), Rand.D(b)), y.ToArray(), 1e-6, 1e-6, "sub");
        Elementwise.Mul(d, y.Data, ta.Data, tb.Data);
        Tol.Close(Elementwise.Reference.Mul(Rand.D(a), Rand.D(b)), y.ToArray(), 1e-6, 1e-6, "mul");
        Elementwise.Axpby(d, y.Data, ta.Data, 0.5f, 0f);
        Elementwise.Axpby(d, y.Data, tb.Data, -2f, 3f);
        var expect = Elementwise.Reference.Axpby(Elementwise.Reference.Axpby(new double[n], Rand.D(a), 0.5, 0), Rand.D(b), -2, 3);
        Tol.Close(expect, y.ToArray(), 1e-6, 1e-5, "axpby");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void ReluForwardBackwardWithNaNAndInfinity(string dev)
    {
        var d = Devices.Get(dev);
        var x = new[] { -1f, 0f, 2f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 3.5f };
        var dy = new[] { 1f, 2f, 3f, 4f, 5f, 6f, 7f };
        using var tx = Tensor.FromArray(d, x, x.Length);
        using var tdy = Tensor.FromArray(d, dy, x.Length);
        using var y = Tensor.Empty(d, x.Length);
        using var dx = Tensor.Empty(d, x.Length);
        Elementwise.Relu(d, y.Data, tx.Data);
        Elementwise.ReluBackward(d, dx.Data, tdy.Data, y.Data);
        // torch.relu([-1, 0, 2, nan, inf, -inf]) = [0, 0, 2, nan, inf, 0]; its backward passes the NaN's gradient
        Assert.Equal(new[] { 0f, 0f, 2f, float.NaN, float.PositiveInfinity, 0f, 3.5f }, y.ToArray());
        Assert.Equal(new[] { 0f, 0f, 3f, 4f, 5f, 0f, 7f }, dx.ToArray());
        Tol.Close(Elementwise.Reference.ReluBackward(Rand.D(dy), Rand.D(x)), dx.ToArray(), 0, 0, "relu backward");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void AddReluMatchesReferenceWithNaNAndInfinity(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(41);
        var a = new[] { -1f, 0.5f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1f }.Concat(Rand.Floats(r, 1031)).ToArray();
        var b = new[] { 0.5f, -1f, 1f, -1f, 2f, -1f }.Concat(Rand.Floats(r, 1031)).ToArray();
        using var ta = Tensor.FromArray(d, a, a.Length);
        using var tb = Tensor.FromArray(d, b, a.Length);
        using var y = Tensor.Empty(d, a.Length);
        Elementwise.AddRelu(d, y.Data, ta.Data, tb.Data);
        var got = y.ToArray();
        Assert.Equal(new[] { 0f, 0f, float.NaN, float.PositiveInfinity, 0f, 0f }, got[..6]); // as torch.relu(a + b): NaN passes
        Tol.Close(Elementwise.Reference.AddRelu(Rand.D(a), Rand.D(b))[6..], got[6..], 1e-7, 1e-6, "add_relu");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void AddReluGradientReachesBothInputs(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(42);
        var a = Rand.Floats(r, 60); var b = Rand.Floats(r, 60); var dy = Rand.Floats(r, 60);
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(d, a, 3, 4, 5); ta.RequiresGrad = true;
        var tb = Tensor.FromArray(d, b, 3, 4, 5); tb.RequiresGrad = true;
        var y = F.AddRelu(ta, tb);
        y.Backward(Tensor.FromArray(d, dy, 3, 4, 5));
        var expect = Elementwise.Reference.ReluBackward(Rand.D(dy), Elementwise.Reference.Add(Rand.D(a), Rand.D(b)));
        Tol.Close(expect, ta.Grad!.ToArray(), 0, 0, "d a");
        Tol.Close(expect, tb.Grad!.ToArray(), 0, 0, "d b");
        ta.Grad.Dispose(); tb.Grad.Dispose();
    }

    [Fact]
    public void MismatchedLengthsAreRejectedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var a = Tensor.Zeros(d, 5);
        using var b = Tensor.Zeros(d, 6);
        var e = Assert.Throws<ArgumentException>(() => Elementwise.Add(d, a.Data, a.Data, b.Data));
        Assert.Contains("5 and 6", e.Message);
    }
}
