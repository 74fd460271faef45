using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;
using Ref = Ccr.Kernels.Ops.ShapeOps.Reference;

namespace Ccr.Tests.Kernels;

public class ShapeOpsTests
{
    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void ConcatAndSliceForwardBackward(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(11);
        int n = 2, h = 3, w = 5, hw = h * w;
        int[] cs = [1, 3, 2];
        var xs = cs.Select(c => Rand.Floats(r, n * c * hw)).ToArray();
        int total = cs.Sum();
        var dy = Rand.Floats(r, n * total * hw);
        using var scope = new TensorScope();
        var ts = xs.Select((x, i) => { var t = Tensor.FromArray(d, x, n, cs[i], h, w); t.RequiresGrad = true; return t; }).ToArray();
        var y = F.Concat(ts);
        Assert.Equal(new[] { n, total, h, w }, y.Shape);
        Tol.Close(Ref.Concat(xs.Select(Rand.D).ToArray(), cs, n, hw), y.ToArray(), 0, 0, "concat");
        y.Backward(Tensor.FromArray(d, dy, n, total, h, w));
        for (int i = 0, off = 0; i < cs.Length; off += cs[i], i++)
        {
            Tol.Close(Ref.Slice(Rand.D(dy), total, off, cs[i], n, hw), ts[i].Grad!.ToArray(), 0, 0, $"concat grad {i}");
            ts[i].Grad!.Dispose();
        }

        // Slice of channels [1, 4) of the 6-channel tensor, and its zero-padded gradient.
        var x6 = Tensor.FromArray(d, Rand.Floats(r, n * total * hw), n, total, h, w); x6.RequiresGrad = true;
        var s = F.SliceChannels(x6, 1, 3);
        Tol.Close(Ref.Slice(Rand.D(x6.ToArray()), total, 1, 3, n, hw), s.ToArray(), 0, 0, "slice");
        var ds = Rand.Floats(r, n * 3 * hw);
        s.Backward(Tensor.FromArray(d, ds, n, 3, h, w));
        var expect = new double[n * total * hw];
        for (int b = 0; b < n; b++)
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < hw; i++) expect[(b * total + 1 + c) * hw + i] = ds[(b * 3 + c) * hw + i];
        Tol.Close(expect, x6.Grad!.ToArray(), 0, 0, "slice grad");
        x6.Grad.Dispose();
    }

    [Fact]
    public void L2NormalizeReferenceGradientMatchesFiniteDifferences()
    {
        var r = Rand.New(12);
        int n = 2, c = 3, hw = 4;
        var x = Rand.D(Rand.Floats(r, n * c * hw)); var dy = Rand.D(Rand.Floats(r, n * c * hw));
        var num = Rand.NumericGrad(v => Rand.Dot(Ref.L2Normalize(v, n, c, hw, 1e-12), dy), x);
        Tol.Close(num, Ref.L2NormalizeBackward(dy, x, n, c, hw, 1e-12), 1e-7, 1e-5, "l2 normalize reference grad");
    }

    [Theory]
    [InlineData("cpu", 1, 1, 3, 5)]
    [InlineData("cpu", 2, 7, 45, 51)]   // H*W > the CPU variant's pixel chunk
    [InlineData("cuda-on-cpu", 1, 1, 3, 5)]
    [InlineData("cuda-on-cpu", 2, 5, 3, 7)]
    public void L2NormalizeMatchesReference(string dev, int n, int c, int h, int w)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(c * 31 + w);
        int hw = h * w;
        var x = Rand.Floats(r, n * c * hw); var dy = Rand.Floats(r, n * c * hw);
        for (int ch = 0; ch < c; ch++) x[ch * hw + 1] = 0f; // pixel 1 of image 0 is all zeros: norm clamps to eps
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n, c, h, w); tx.RequiresGrad = true;
        var y = F.L2Normalize(tx);
        y.Backward(Tensor.FromArray(d, dy, n, c, h, w));
        Tol.Close(Ref.L2Normalize(Rand.D(x), n, c, hw, 1e-12), y.ToArray(), 1e-6, 1e-5, "l2 normalize");
        Tol.Close(Ref.L2NormalizeBackward(Rand.D(dy), Rand.D(x), n, c, hw, 1e-12), tx.Grad!.ToArray(), 1e-4, 1e-3, "l2 normalize grad");
        tx.Grad.Dispose();
    }

    [Theory]
    [InlineData("cpu", 1)]
    [InlineData("cpu", 1000)]
    [InlineData("cpu", 100_003)]
    [InlineData("cuda-on-cpu", 1)]
    [InlineData("cuda-on-cpu", 1000)]
    public void SumAndMeanMatchReferenceWithGradients(string dev, int n)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(n);
        var x = Rand.Floats(r, n, -1f, 2f);
        double sum = Reductions.Reference.Sum(Rand.D(x));
        using var scope = new TensorScope();
        var t = Tensor.FromArray(d, x, n); t.RequiresGrad = true;
        var s = F.Sum(t);
        Assert.Equal(1, s.Numel);
        Tol.Close(sum, s.Item(), 1e-5, 1e-5, "sum");
        var m = F.Mean(t);
        Tol.Close(sum / n, m.Item(), 1e-6, 1e-5, "mean");
        m.Backward(Tensor.FromArray(d, [0.37f]));
        Tol.Close(Enumerable.Repeat(0.37 / n, n).ToArray(), t.Grad!.ToArray(), 1e-9, 1e-5, "mean grad");
        t.Grad.Dispose();
    }

    [Theory]
    [InlineData("cpu", 3, 4, 37, 0)]
    [InlineData("cpu", 1, 1, 1, 0)]
    [InlineData("cuda-on-cpu", 2, 3, 7, 0)]
    [InlineData("cuda-on-cpu", 2, 3, 7, 4)]   // parts that cut across image planes
    [InlineData("cuda-on-cpu", 3, 1, 5, 15)]  // one element per part
    [InlineData("cuda-on-cpu", 1, 2, 700, 3)] // parts of several unrolled iterations
    public void SumPerChannelMatchesReference(string dev, int n, int c, int hw, int parts)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(hw + parts);
        var x = Rand.Floats(r, n * c * hw);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, n * c * hw); var y = Tensor.Empty(d, c);
        Reductions.SumPerChannel(d, y.Data, tx.Data, n, c, hw, parts);
        Tol.Close(Reductions.Reference.SumPerChannel(Rand.D(x), n, c, hw), y.ToArray(), 1e-5, 1e-5, "sum per channel");
    }

    [Fact]
    public void OutOfRangeChannelsAreRejectedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 1, 4, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => F.SliceChannels(x, 2, 3));
        Assert.Contains("[2, 5)", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => F.Concat([x, Tensor.Zeros(d, 1, 4, 2, 3)]));
        Assert.Contains("[1, 4, 2, 3]", e2.Message);
    }
}
