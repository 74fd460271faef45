using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;
using Ref = Ccr.Kernels.Ops.Resize.Reference;

namespace Ccr.Tests.Kernels;

public class ResizeTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReferenceBackwardIsTheAdjointByFiniteDifferences(bool bilinear)
    {
        var r = Rand.New(3);
        int p = 2, ih = 3, iw = 5, oh = 4, ow = 3; // up in H, down in W, both non-integer
        var x = Rand.D(Rand.Floats(r, p * ih * iw)); var dy = Rand.D(Rand.Floats(r, p * oh * ow));
        Func<double[], double[]> fwd = v => bilinear ? Ref.Bilinear(v, p, ih, iw, oh, ow) : Ref.Nearest(v, p, ih, iw, oh, ow);
        var num = Rand.NumericGrad(v => Rand.Dot(fwd(v), dy), x);
        var got = bilinear ? Ref.BilinearBackward(dy, p, ih, iw, oh, ow) : Ref.NearestBackward(dy, p, ih, iw, oh, ow);
        Tol.Close(num, got, 1e-8, 1e-6, bilinear ? "bilinear adjoint" : "nearest adjoint");
    }

    public static TheoryData<string, int, int, int, int, int, int> Shapes()
    {
        var t = new TheoryData<string, int, int, int, int, int, int>();
        foreach (var dev in new[] { "cpu", "cuda-on-cpu" })
        {
            t.Add(dev, 1, 1, 5, 7, 9, 12);   // up, non-integer factors
            t.Add(dev, 2, 3, 11, 13, 4, 5);  // down, non-integer factors
            t.Add(dev, 1, 2, 3, 4, 6, 8);    // exact 2x (nearest's halving path)
            t.Add(dev, 1, 1, 1, 1, 3, 2);    // a single pixel
            t.Add(dev, 1, 1, 5, 13, 8, 6);   // up in H, down in W
            t.Add(dev, 2, 1, 4, 3, 4, 3);    // identity
            t.Add(dev, 1, 1, 2, 3, 16, 24);  // 8x up (the HRNet head's coarsest level)
            t.Add(dev, 1, 1, 37, 9, 3, 1);   // down by 12x and to a single column
        }
        return t;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchReference(string dev, int n, int c, int ih, int iw, int oh, int ow)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(ih * 100 + ow);
        int p = n * c;
        var x = Rand.Floats(r, p * ih * iw); var dy = Rand.Floats(r, p * oh * ow);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, p * ih * iw); var tdy = Tensor.FromArray(d, dy, p * oh * ow);
        var y = Tensor.Empty(d, p * oh * ow); var dx = Tensor.Full(d, float.NaN, p * ih * iw); // dx is written, not added
        Resize.Bilinear(d, y.Data, tx.Data, p, ih, iw, oh, ow);
        Resize.BilinearBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
        Tol.Close(Ref.Bilinear(Rand.D(x), p, ih, iw, oh, ow), y.ToArray(), 1e-6, 1e-5, "bilinear");
        Tol.Close(Ref.BilinearBackward(Rand.D(dy), p, ih, iw, oh, ow), dx.ToArray(), 1e-5, 1e-4, "bilinear backward");
        Resize.Nearest(d, y.Data, tx.Data, p, ih, iw, oh, ow);
        Elementwise.Fill(d, dx.Data, float.NaN);
        Resize.NearestBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
        Tol.Close(Ref.Nearest(Rand.D(x), p, ih, iw, oh, ow), y.ToArray(), 0, 0, "nearest");
        Tol.Close(Ref.NearestBackward(Rand.D(dy), p, ih, iw, oh, ow), dx.ToArray(), 1e-6, 1e-5, "nearest backward");

        var labels = Rand.Ints(r, p * ih * iw, 7);
        var tl = Tensor.FromArray(d, labels, n, c, ih, iw);
        var yl = F.ResizeNearestLabels(tl, oh, ow);
        Assert.Equal(new[] { n, c, oh, ow }, yl.Shape);
        Assert.Equal(Ref.NearestLabels(labels, p, ih, iw, oh, ow), yl.ToIntArray());
    }

    /// <summary>The CPU variant's separable bilinear forward rounds each output as the per-pixel formula of the kernel
    /// does ((1 - ly) top + ly bot, no fused multiply-add): bitwise the kernel's outputs, run on the CPU accelerator, at
    /// the network's upsamplings (2x, 4x, 8x over 64 planes, split over the cores), a downscale and odd factors.</summary>
    [Theory]
    [InlineData(8, 8, 12, 16, 24, 32)]
    [InlineData(2, 32, 3, 4, 24, 32)]
    [InlineData(2, 5, 24, 32, 96, 128)]
    [InlineData(1, 3, 37, 29, 10, 7)]
    [InlineData(1, 2, 5, 7, 9, 12)]
    public void CpuBilinearForwardIsBitwiseTheKernelFormula(int n, int c, int ih, int iw, int oh, int ow)
    {
        int p = n * c;
        var x = Rand.Floats(Rand.New(p + ih + ow), p * ih * iw);
        float[] Run(Device d)
        {
            using var scope = new TensorScope();
            var tx = Tensor.FromArray(d, x, p * ih * iw); var y = Tensor.Full(d, float.NaN, p * oh * ow);
            Resize.Bilinear(d, y.Data, tx.Data, p, ih, iw, oh, ow);
            return y.ToArray();
        }
        var host = Run(Devices.Cpu); var kernel = Run(Devices.Get("cuda-on-cpu"));
        for (int i = 0; i < host.Length; i++)
            if (BitConverter.SingleToInt32Bits(host[i]) != BitConverter.SingleToInt32Bits(kernel[i]))
                Assert.Fail($"bilinear {p}x{ih}x{iw} -> {oh}x{ow}: element {i} is {host[i]:R} on the CPU variant, {kernel[i]:R} by the kernel");
    }

    [Theory]
    [InlineData("cpu", "bilinear_up.json", true)]
    [InlineData("cpu", "bilinear_down.json", true)]
    [InlineData("cpu", "nearest_up.json", false)]
    [InlineData("cpu", "nearest_down.json", false)]
    [InlineData("cpu", "nearest_odd.json", false)]
    [InlineData("cuda-on-cpu", "bilinear_up.json", true)]
    [InlineData("cuda-on-cpu", "bilinear_down.json", true)]
    [InlineData("cuda-on-cpu", "nearest_odd.json", false)]
    public void MatchesPyTorchGoldenThroughAutograd(string dev, string file, bool bilinear)
    {
        var d = Devices.Get(dev);
        var g = NormFixtures.Load(file);
        var ys = g["y"].Shape;
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, g["x"].Data, g["x"].Shape); x.RequiresGrad = true;
        var y = bilinear ? F.ResizeBilinear(x, ys[2], ys[3]) : F.ResizeNearest(x, ys[2], ys[3]);
        Assert.Equal(ys, y.Shape);
        y.Backward(Tensor.FromArray(d, g["dy"].Data, ys));
        Tol.Close(g["y"].D, y.ToArray(), 1e-5, 1e-4, $"{file} y vs torch");
        Tol.Close(g["dx"].D, x.Grad!.ToArray(), 1e-5, 1e-4, $"{file} dx vs torch");
        x.Grad.Dispose();
    }

    [Theory]
    [InlineData("nearest_up.json")]
    [InlineData("nearest_down.json")]
    [InlineData("nearest_odd.json")]
    public void LabelResizePicksTheSamePixelsAsPyTorch(string file)
    {
        // Labels = flat source index; PyTorch's float output must equal x at the picked index.
        var d = Devices.Cpu;
        var g = NormFixtures.Load(file);
        var s = g["x"].Shape; var ys = g["y"].Shape;
        var idx = Enumerable.Range(0, g["x"].Data.Length).ToArray();
        using var scope = new TensorScope();
        var picked = F.ResizeNearestLabels(Tensor.FromArray(d, idx, s), ys[2], ys[3]).ToIntArray();
        Assert.Equal(g["y"].Data, picked.Select(i => g["x"].Data[i]).ToArray());
    }

    [Fact]
    public void MismatchedSizesAreRejectedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 10); var y = Tensor.Zeros(d, 11);
        var e = Assert.Throws<ArgumentException>(() => Resize.Bilinear(d, y.Data, x.Data, 1, 2, 5, 3, 4));
        Assert.Contains("2x5 -> 3x4", e.Message);
        Assert.Throws<ArgumentException>(() => F.ResizeBilinear(Tensor.Zeros(d, 1, 1, 2, 2), 0, 3));
    }

    [Fact]
    public void GatherRangesHoldEveryTap()
    {
        // Every (input, output) size pair up to 40 and a few of the model's and odd large ones: for
        // each output index, the inputs its taps touch must see it inside their conservative range.
        var pairs = new List<(int In, int Out)>();
        for (int i = 1; i <= 40; i++) for (int o = 1; o <= 40; o++) pairs.Add((i, o));
        pairs.AddRange([(15, 120), (30, 240), (120, 480), (160, 640), (7, 1000), (1000, 7), (481, 640), (640, 481), (3, 4097)]);
        foreach (var (inS, outS) in pairs)
        {
            float scale = Resize.Scale(inS, outS);
            for (int o = 0; o < outS; o++)
            {
                float f = Resize.BilinearSrc(o, scale);
                int i0 = (int)f, i1 = i0 < inS - 1 ? i0 + 1 : i0;
                foreach (int i in new[] { i0, i1 })
                    Assert.True(Resize.BilinearFirst(i, inS, outS) <= o && o < Resize.BilinearEnd(i, inS, outS),
                                $"bilinear {inS}->{outS}: output {o} taps input {i} outside [{Resize.BilinearFirst(i, inS, outS)}, {Resize.BilinearEnd(i, inS, outS)})");
                int s = Resize.NearestSrc(o, inS, outS, scale);
                Assert.True(Resize.NearestFirst(s, inS, outS) <= o && o < Resize.NearestEnd(s, inS, outS),
                            $"nearest {inS}->{outS}: output {o} reads input {s} outside [{Resize.NearestFirst(s, inS, outS)}, {Resize.NearestEnd(s, inS, outS)})");
            }
        }
    }

    [Theory]
    [InlineData(3, 2, 5, 7, 9, 12)]  // 6 planes: a full chunk of 4 and a partial one
    [InlineData(2, 1, 11, 13, 4, 5)]
    [InlineData(1, 9, 3, 4, 24, 7)]  // 9 planes: two full chunks and one plane
    public void GatherBackwardIsDeterministicAndMatchesTheHostScatterBitForBit(int n, int c, int ih, int iw, int oh, int ow)
    {
        // The CUDA variant gathers (no atomics) in the host scatter's order of additions, so on the
        // CPU accelerator (no fused multiply-add) the two give the same bits, run after run.
        var r = Rand.New(ih * 31 + ow);
        int p = n * c;
        var dy = Rand.Floats(r, p * oh * ow);
        foreach (bool bilinear in new[] { true, false })
        {
            float[] Run(Device d)
            {
                using var scope = new TensorScope();
                var tdy = Tensor.FromArray(d, dy, dy.Length);
                var dx = Tensor.Empty(d, p * ih * iw);
                if (bilinear) Resize.BilinearBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
                else Resize.NearestBackward(d, dx.Data, tdy.Data, p, ih, iw, oh, ow);
                return dx.ToArray();
            }
            var gather = Run(Devices.CudaOnCpu);
            Assert.Equal(gather, Run(Devices.CudaOnCpu));
            Assert.Equal(Run(Devices.Cpu), gather);
        }
    }
}
