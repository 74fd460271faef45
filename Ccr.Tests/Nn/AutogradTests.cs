using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Nn;

public class AutogradTests
{
    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void ChainOfOpsMatchesFiniteDifferences(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(7);
        int n = 13;
        var a = Rand.Floats(r, n); var b = Rand.Floats(r, n); var dout = Rand.Floats(r, n);
        // f(a, b) = sum(dout * relu(a * b - 0.5 a) + 2 b)
        double Fn(double[] av, double[] bv)
        {
            double s = 0;
            for (int i = 0; i < n; i++) s += dout[i] * (Math.Max(av[i] * bv[i] - 0.5 * av[i], 0) + 2 * bv[i]);
            return s;
        }
        using var scope = new TensorScope();
        var ta = Tensor.FromArray(d, a, n); ta.RequiresGrad = true;
        var tb = Tensor.FromArray(d, b, n); tb.RequiresGrad = true;
        var y = F.Add(F.Relu(F.Sub(F.Mul(ta, tb), F.Scale(ta, 0.5f))), F.Scale(tb, 2f));
        y.Backward(Tensor.FromArray(d, dout, n));
        var ga = Rand.NumericGrad(x => Fn(x, Rand.D(b)), Rand.D(a));
        var gb = Rand.NumericGrad(x => Fn(Rand.D(a), x), Rand.D(b));
        Tol.Close(ga, ta.Grad!.ToArray(), 1e-5, 1e-4, "dA");
        Tol.Close(gb, tb.Grad!.ToArray(), 1e-5, 1e-4, "dB");
        ta.Grad.Dispose(); tb.Grad.Dispose();
    }

    [Fact]
    public void ScopeDisposesTemporariesAndGradientsAccumulate()
    {
        var d = Devices.Cpu;
        var stats = TensorStats.Of(d);
        long before = stats.LiveTensors, bytes = stats.LiveBytes;
        var w = Tensor.FromArray(d, new[] { 1f, 2f, 3f }, 3);
        TensorScope.Current?.Keep(w);
        w.RequiresGrad = true;
        for (int step = 0; step < 2; step++)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, new[] { 1f, -1f, 2f }, 3);
            var loss = F.WeightedSum([F.Mul(w, x)], [1f]);
            loss.Backward(Tensor.Full(d, 1f, 3));
        }
        Assert.Equal(new[] { 2f, -2f, 4f }, w.Grad!.ToArray()); // two steps of += x
        w.Grad.Dispose(); w.Dispose();
        Assert.Equal(before, stats.LiveTensors);
        Assert.Equal(bytes, stats.LiveBytes);
    }

    [Fact]
    public void UseAfterDisposeAndBadShapesGiveClearErrors()
    {
        var d = Devices.Cpu;
        var t = Tensor.Zeros(d, 2, 3);
        t.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => t.ToArray());
        Assert.Contains("used after it was disposed", e.Message);
        using var a = Tensor.Zeros(d, 2, 3);
        using var b = Tensor.Zeros(d, 3, 2);
        var e2 = Assert.Throws<ArgumentException>(() => F.Add(a, b));
        Assert.Contains("[2, 3]", e2.Message);
        Assert.Contains("[3, 2]", e2.Message);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.FromLabels(d, [0, 3, 255, 7], 5, [4]));
        Assert.Contains("label 7 at flat index 3", e3.Message);
    }

    [Fact]
    public void ItemReportsNaNWithTheOpThatMadeIt()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var a = Tensor.FromArray(d, new[] { float.NaN }, 1);
        var y = F.Scale(a, 2f);
        var e = Assert.Throws<NonFiniteException>(() => y.Item());
        Assert.Contains("scale", e.Message);
    }
}
