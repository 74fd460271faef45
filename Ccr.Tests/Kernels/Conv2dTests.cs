using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class Conv2dTests
{
    static ConvGeom G(int n, int cin, int h, int w, int cout, int k, int s, int p, int dil, bool bias) =>
        ConvGeom.From([n, cin, h, w], [cout, cin, k, k], bias ? cout : null, s, p, dil);

    /// <summary>Runs forward and the three backward kernels and compares each with the float64 reference.</summary>
    static void CheckAgainstReference(Device d, ConvGeom g, bool bias, int seed, double dxAtol = 1e-5)
    {
        var r = Rand.New(seed);
        var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var w = Rand.Floats(r, (long)g.Cout * g.CKK);
        var b = bias ? Rand.Floats(r, g.Cout) : null;
        var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length);
        var tb = b != null ? Tensor.FromArray(d, b, b.Length) : null;
        var tdy = Tensor.FromArray(d, dy, dy.Length);
        var y = Tensor.Full(d, float.NaN, (int)(g.N * g.Cout * g.OHW));
        var dx = Tensor.Full(d, float.NaN, x.Length); var dw = Tensor.Full(d, float.NaN, w.Length); var db = Tensor.Full(d, float.NaN, g.Cout);
        Convolution.Forward(d, y.Data, tx.Data, tw.Data, tb?.Data, g);
        Convolution.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g);
        Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g);
        Convolution.BackwardBias(d, db.Data, tdy.Data, g);
        var (edx, edw, edb) = Convolution.Reference.Backward(Rand.D(dy), Rand.D(x), Rand.D(w), g);
        string what = $"conv2d {d.Variant} {g}";
        Tol.Close(Convolution.Reference.Forward(Rand.D(x), Rand.D(w), b == null ? null : Rand.D(b), g), y.ToArray(), 1e-5, 1e-4, what + " y");
        Tol.Close(edx, dx.ToArray(), dxAtol, 1e-4, what + " dx");
        Tol.Close(edw, dw.ToArray(), 1e-4, 1e-4, what + " dw");
        Tol.Close(edb, db.ToArray(), 1e-4, 1e-4, what + " db");
    }

    [Theory]
    // dev, N, Cin, H, W, Cout, k, stride, padding, dilation, bias
    [InlineData("cpu", 1, 1, 5, 5, 1, 3, 1, 0, 1, false)]
    [InlineData("cpu", 2, 3, 9, 7, 4, 3, 2, 1, 1, true)]     // stride 2, odd input
    [InlineData("cpu", 1, 2, 8, 11, 3, 3, 1, 2, 2, true)]    // dilation 2, padding 2
    [InlineData("cpu", 2, 3, 6, 5, 5, 1, 1, 0, 1, true)]     // pointwise fast path
    [InlineData("cpu", 1, 4, 7, 6, 3, 1, 2, 0, 1, false)]    // 1x1 stride 2: im2col path
    [InlineData("cpu", 1, 2, 9, 9, 3, 5, 2, 2, 1, true)]
    [InlineData("cpu", 1, 2, 8, 9, 2, 7, 1, 3, 1, false)]
    [InlineData("cpu", 2, 5, 17, 19, 18, 3, 1, 1, 1, true)]  // more than one GEMM strip
    [InlineData("cpu", 2, 4, 6, 35, 5, 3, 1, 2, 1, true)]    // direct correlation path: padding k - 1, partial row tile, channels not a multiple of 3
    [InlineData("cpu", 2, 8, 32, 31, 16, 3, 1, 1, 1, true)]  // big enough that the direct weight gradient splits over the cores
    [InlineData("cpu", 2, 4, 20, 30, 70, 3, 1, 1, 1, false)] // weight-gradient GEMM with K = 2 x 600 images side by side: K blocks span images
    [InlineData("cpu", 3, 70, 3, 4, 13, 3, 1, 1, 1, true)]   // 3x4 planes: K = 36 over 3 images, 13 rows (a 12-row panel + 1)
    [InlineData("cpu", 3, 3, 66, 70, 20, 3, 2, 1, 1, false)] // a stem: small dw over 1,155 pixels an image, summed per image
    [InlineData("cpu", 3, 20, 11, 16, 70, 3, 1, 1, 1, true)] // AVX-512: B read in place from the padded images, an odd count of 16-pixel runs
    [InlineData("cpu", 2, 18, 10, 32, 18, 3, 1, 1, 1, true)] // 18 channels on that GEMM (the direct correlations elsewhere)
    [InlineData("cpu", 2, 5, 14, 16, 14, 3, 1, 2, 2, true)]  // that GEMM with dilation 2
    [InlineData("cpu", 2, 5, 31, 32, 14, 3, 2, 1, 1, true)]  // stride 2 from phase planes, odd height
    [InlineData("cuda-on-cpu", 1, 1, 5, 5, 1, 3, 1, 0, 1, false)]
    [InlineData("cuda-on-cpu", 2, 2, 7, 5, 3, 3, 2, 1, 1, true)]
    [InlineData("cuda-on-cpu", 1, 2, 6, 7, 2, 3, 1, 2, 2, true)]
    [InlineData("cuda-on-cpu", 2, 3, 4, 3, 2, 1, 1, 0, 1, true)]
    public void ForwardAndBackwardMatchReference(string dev, int n, int cin, int h, int w, int cout, int k, int s, int p, int dil, bool bias) =>
        CheckAgainstReference(Devices.Get(dev), G(n, cin, h, w, cout, k, s, p, dil, bias), bias, n * 1000 + cin * 100 + h * 10 + k + s + p + dil);

    /// <summary>Which weight gradients are summed image by image: the paper network's stem and the stem-like shape the
    /// reference and thread-count tests run; not a wide layer, not a short plane.</summary>
    [Fact]
    public void SmallWeightGradientsOverLongPlanesAreSummedPerImage()
    {
        Assert.True(Convolution.WeightGradientPerImage(G(8, 3, 96, 128, 64, 3, 2, 1, 1, false)));
        Assert.True(Convolution.WeightGradientPerImage(G(3, 3, 66, 70, 20, 3, 2, 1, 1, false)));
        Assert.False(Convolution.WeightGradientPerImage(G(8, 256, 24, 32, 128, 3, 1, 1, 1, false)));
        Assert.False(Convolution.WeightGradientPerImage(G(8, 18, 24, 32, 36, 3, 2, 1, 1, false)));
        Assert.False(Convolution.WeightGradientPerImage(G(1, 3, 96, 128, 64, 3, 2, 1, 1, false)));
    }

    /// <summary>The CPU input gradient of a stride-1 conv with more than 64 output channels runs as the forward conv of dy
    /// with the flipped weights: equal to the float64 reference (and so to the col2im path it replaced) for padding 1,
    /// 0 (dy padded by 2) and a 5x5 kernel with padding 1, on odd plane sizes and channel counts off the 12-row panels.
    /// Each dx is a sum of Cout K K products of values in [-1, 1] (up to 1,625 here, about 10 in size): fp32 rounds
    /// such sums by about 1e-5, so the absolute tolerance grows with the square root of the terms.</summary>
    [Theory]
    [InlineData(2, 70, 10, 13, 72, 3, 1)]
    [InlineData(1, 20, 9, 11, 66, 3, 0)]
    [InlineData(2, 70, 8, 9, 65, 5, 1)]
    [InlineData(8, 80, 12, 16, 96, 3, 1)]
    [InlineData(2, 70, 24, 32, 72, 3, 1)]  // dx 70 x 768 an image: a product per image (the others run the batch as one)
    public void InputGradientAsForwardMatchesReference(int n, int cin, int h, int w, int cout, int k, int p)
    {
        var g = G(n, cin, h, w, cout, k, 1, p, 1, false);
        Assert.True(Convolution.BackwardInputAsForward(g), $"{g} should run its input gradient as a forward conv");
        CheckAgainstReference(Devices.Cpu, g, false, n + cin + h + w + cout + k + p, dxAtol: 1e-6 * Math.Sqrt(cout * k * k));
    }

    // run(threads, newPath): the old path (im2col unless named) on one thread against the new (packed from the images
    // unless named) on 1, 2 and 3, bit for bit
    static void SameBitsOnAnyThreadCount(Func<int, bool, float[]> run, string what, string oldPath = "by im2col",
                                         string newPath = "packed from the images")
    {
        var before = run(1, false);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var got = run(threads, true);
            for (int i = 0; i < got.Length; i++)
                if (BitConverter.SingleToInt32Bits(before[i]) != BitConverter.SingleToInt32Bits(got[i]))
                    Assert.Fail($"{what}: element {i} is {before[i]:R} {oldPath}, {got[i]:R} {newPath} on {threads} threads");
        }
    }

    /// <summary>The CPU forward that packs the GEMM's B straight from the images gives the bits of the im2col path
    /// (same packed values, same blocks and sums) on 1, 2 and 3 GEMM threads: a batch split per image (8 on 2) and
    /// one that is not (3 images, or 8 on 3, split inside each product); one and two output-row segments per strip
    /// (OW 32, 16), strips that wrap rows (OW 8, 10, 4), stride 2, dilation 2 and a 5x5 kernel with padding; small
    /// outputs (Cout x OHW up to 16,384 floats an image), whose batch runs as one product with strips that span images.</summary>
    [Fact]
    public void ForwardPackedFromImageIsBitwiseTheIm2colPath()
    {
        var d = Devices.Cpu;
        int keep = Gemm.PackedThreads;
        try
        {
            foreach (var g in new[] { G(8, 144, 6, 8, 72, 3, 1, 1, 1, false), G(8, 72, 24, 32, 80, 3, 1, 1, 1, false),
                                      G(3, 72, 12, 16, 80, 3, 1, 1, 1, false), G(3, 20, 13, 10, 70, 3, 2, 1, 1, false),
                                      G(2, 70, 11, 9, 80, 3, 1, 2, 2, false), G(2, 66, 13, 17, 70, 5, 2, 2, 1, false),
                                      // small planes, the batch side by side in one product: 6x8, 3x4 (im2col's C^T), 5x7, s2
                                      G(8, 72, 6, 8, 72, 3, 1, 1, 1, false), G(8, 144, 3, 4, 144, 3, 1, 1, 1, false),
                                      G(3, 40, 5, 7, 70, 3, 1, 1, 1, false), G(5, 30, 12, 16, 26, 3, 2, 1, 1, false) })
            {
                Assert.True(Gemm.PacksImage(g), $"{g} should take the packed-from-image path");
                var r = Rand.New(g.Cin + g.Cout + g.H);
                var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var w = Rand.Floats(r, (long)g.Cout * g.CKK);
                float[] Run(int threads, bool fromImage)
                {
                    Gemm.PackedThreads = threads;
                    Convolution.PackFromImage = fromImage;
                    using var scope = new TensorScope();
                    var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length);
                    var y = Tensor.Full(d, float.NaN, (int)(g.N * g.Cout * g.OHW));
                    Convolution.Forward(d, y.Data, tx.Data, tw.Data, null, g);
                    return y.ToArray();
                }
                SameBitsOnAnyThreadCount(Run, $"conv2d {g} y");
            }
        }
        finally { Gemm.PackedThreads = keep; Convolution.PackFromImage = true; }
    }

    /// <summary>The AVX-512 forward that reads B in place from the padded images (runs of 16 output pixels) gives the bits
    /// of the path that packs B strips from the images, for the forward and for the input gradient run as a forward,
    /// on 1, 2 and 3 GEMM threads: rows of 32 and 64 (two strips a row), rows of 16 (two rows a strip), an odd count of
    /// runs (a lone last run) and strips that span images, padding 0 and 2, dilation 2, a 5x5 kernel, one image, panels
    /// off the 12 rows (13, 14, 26 outputs), 18 channels (which took the direct correlations before), and strided convs
    /// read from phase planes (stride 2 on even and odd widths, with and without padding; stride 3).</summary>
    [SkippableFact]
    public void ForwardReadingBInPlaceIsBitwiseThePackedPath()
    {
        Skip.IfNot(Gemm.Wide512Supported, "the in-place B is the AVX-512 micro-tile's");
        var d = Devices.Cpu;
        int keep = Gemm.PackedThreads, keepDirect = Convolution.DirectMaxChannels;
        try
        {
            Convolution.DirectMaxChannels = 0; // both sides on the GEMM, whatever the channels
            foreach (var g in new[] { G(8, 72, 24, 32, 80, 3, 1, 1, 1, false), G(3, 40, 12, 16, 26, 3, 1, 1, 1, false),
                                      G(3, 20, 11, 16, 70, 3, 1, 1, 1, false), G(2, 30, 9, 64, 14, 3, 1, 1, 1, false),
                                      G(2, 24, 20, 32, 13, 5, 1, 2, 1, false), G(2, 20, 14, 16, 30, 3, 1, 2, 2, false),
                                      G(2, 20, 10, 18, 40, 3, 1, 0, 1, false), G(8, 18, 24, 32, 18, 3, 1, 1, 1, false),
                                      G(1, 36, 12, 16, 36, 3, 1, 1, 1, false),
                                      // strided, from phase planes: stride 2 (even and odd width, padding 0), stride 3
                                      G(3, 20, 24, 32, 26, 3, 2, 1, 1, false), G(2, 18, 48, 64, 18, 3, 2, 1, 1, false),
                                      G(2, 10, 33, 33, 14, 3, 2, 0, 1, false), G(2, 7, 31, 31, 13, 3, 2, 1, 1, false),
                                      G(2, 8, 48, 48, 13, 3, 3, 1, 1, false) })
            {
                Gemm.DirectImageB = true;
                Assert.True(Gemm.PacksImage(g) && Gemm.ReadsImageDirect(g), $"{g} should read B in place");
                bool dxToo = Convolution.BackwardInputAsForward(g);
                var r = Rand.New(g.Cin + g.Cout + g.H + g.W);
                var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var w = Rand.Floats(r, (long)g.Cout * g.CKK);
                var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
                float[] Run(int threads, bool inPlace)
                {
                    Gemm.PackedThreads = threads;
                    Gemm.DirectImageB = inPlace;
                    using var scope = new TensorScope();
                    var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length);
                    var tdy = Tensor.FromArray(d, dy, dy.Length);
                    var y = Tensor.Full(d, float.NaN, (int)(g.N * g.Cout * g.OHW));
                    var dx = Tensor.Full(d, float.NaN, x.Length);
                    Convolution.Forward(d, y.Data, tx.Data, tw.Data, null, g);
                    if (dxToo) Convolution.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g);
                    return [.. y.ToArray(), .. dxToo ? dx.ToArray() : []];
                }
                SameBitsOnAnyThreadCount(Run, $"conv2d {g} y{(dxToo ? " and dx" : "")}", "with B packed", "with B read in place");
            }
        }
        finally { Gemm.PackedThreads = keep; Gemm.DirectImageB = true; Convolution.DirectMaxChannels = keepDirect; }
    }

    /// <summary>The CPU weight gradient that packs cols^T straight from the zero-padded images gives the bits of the
    /// im2col path (same packed values, chunks, K blocks and sums) on 1, 2 and 3 GEMM threads: K blocks that span
    /// images (OHW 768, 130, 12), a partial last strip (CKK 1,296 = 40.5 strips; 585), stride 2 with an odd input,
    /// dilation 2, a 5x5 kernel, 13 output rows (a 12-row panel + 1), a batch split into several chunks, and unpadded
    /// convs (3x3, 1x1, 1x1 stride 2) whose images are read in place.</summary>
    [Fact]
    public void WeightGradientFromImageIsBitwiseTheIm2colPath()
    {
        var d = Devices.Cpu;
        int keep = Gemm.PackedThreads;
        Gemm.WeightGradientInPlace = false; // the GEMM path on every shape here (the dot products and per-tap products
        Gemm.WeightGradientPerTap = false;  // sum in other orders)
        try
        {
            foreach (var g in new[] { G(8, 144, 24, 32, 72, 3, 1, 1, 1, false), G(3, 144, 3, 4, 80, 3, 1, 1, 1, false),
                                      G(3, 20, 13, 10, 70, 3, 2, 1, 1, false), G(2, 70, 11, 9, 13, 3, 1, 2, 2, false),
                                      G(2, 23, 13, 17, 70, 5, 2, 2, 1, false), G(3, 7, 10, 13, 70, 3, 1, 0, 1, false),
                                      G(9, 256, 48, 64, 20, 3, 1, 1, 1, false), G(4, 96, 12, 16, 80, 1, 1, 0, 1, false),
                                      G(3, 40, 9, 11, 70, 1, 2, 0, 1, false) })
            {
                Assert.True(Gemm.PacksImageTransposed(g, 1), $"{g} should take the packed-from-image weight gradient");
                var r = Rand.New(g.Cin + g.Cout + g.H);
                var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
                float[] Run(int threads, bool fromImage)
                {
                    Gemm.PackedThreads = threads;
                    Convolution.WeightGradientFromImage = fromImage;
                    using var scope = new TensorScope();
                    var tx = Tensor.FromArray(d, x, x.Length); var tdy = Tensor.FromArray(d, dy, dy.Length);
                    var dw = Tensor.Full(d, float.NaN, (int)((long)g.Cout * g.CKK));
                    Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g);
                    return dw.ToArray();
                }
                SameBitsOnAnyThreadCount(Run, $"conv2d {g} dw");
            }
        }
        finally
        {
            Gemm.PackedThreads = keep; Convolution.WeightGradientFromImage = true;
            Gemm.WeightGradientInPlace = true; Gemm.WeightGradientPerTap = true;
        }
    }

    /// <summary>The AVX-512 wide weight gradient, one product per tap from a channels-last copy of the padded input,
    /// equals the float64 reference and gives the same bits on 1, 2 and 3 threads: panels off the 12 rows (70, 73, 66
    /// outputs), a last strip of 16 channels (Cin 48, 144), strides 1 and 2 on odd planes, a 1x1 conv, dilation 2 with
    /// a 5x5 kernel, K blocks that span images (N OHW 3 x 192). Tolerance as for the dot products above.</summary>
    [SkippableFact]
    public void WeightGradientPerTapMatchesReferenceOnAnyThreadCount()
    {
        Skip.IfNot(Gemm.Wide512Supported, "the per-tap weight gradient is the AVX-512 path's");
        int keep = Gemm.PackedThreads;
        try
        {
            foreach (var g in new[] { G(3, 32, 12, 16, 70, 3, 1, 1, 1, false), G(2, 48, 10, 13, 80, 3, 2, 1, 1, false),
                                      G(2, 80, 7, 9, 66, 1, 1, 0, 1, false), G(2, 16, 9, 11, 70, 5, 1, 2, 2, false),
                                      G(2, 144, 3, 4, 73, 3, 1, 1, 1, false) })
            {
                Assert.True(Gemm.ReadsWeightGradPerTap(g), $"{g} should take the per-tap weight gradient");
                DwMatchesReferenceOnAnyThreadCount(g, g.Cin * 5 + g.Cout + g.W, "per tap");
            }
        }
        finally { Gemm.PackedThreads = keep; }
    }

    // dw by the CPU path the geometry takes, on 1 thread against the float64 reference (tolerance growing with the square
    // root of the N OHW products summed), and bit for bit on 2 and 3 threads
    static void DwMatchesReferenceOnAnyThreadCount(ConvGeom g, int seed, string path)
    {
        var d = Devices.Cpu;
        var r = Rand.New(seed);
        var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
        float[] Run(int threads)
        {
            Gemm.PackedThreads = threads;
            using var scope = new TensorScope();
            var tx = Tensor.FromArray(d, x, x.Length); var tdy = Tensor.FromArray(d, dy, dy.Length);
            var dw = Tensor.Full(d, float.NaN, (int)((long)g.Cout * g.CKK));
            Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g);
            return dw.ToArray();
        }
        var one = Run(1);
        var (_, edw, _) = Convolution.Reference.Backward(Rand.D(dy), Rand.D(x), new double[(long)g.Cout * g.CKK], g);
        Tol.Close(edw, one, 1e-6 * Math.Sqrt((double)g.N * g.OHW), 1e-5, $"conv2d {g} dw {path}");
        foreach (int threads in new[] { 2, 3 })
        {
            var many = Run(threads);
            for (int i = 0; i < one.Length; i++)
                if (BitConverter.SingleToInt32Bits(one[i]) != BitConverter.SingleToInt32Bits(many[i]))
                    Assert.Fail($"conv2d {g} dw {path}: element {i} is {one[i]:R} on 1 thread, {many[i]:R} on {threads}");
        }
    }

    /// <summary>The AVX-512 weight gradient by dot products on dy and the padded images in place equals the float64
    /// reference and gives the same bits on 1, 2 and 3 threads: output channels off the 4-row tile (18, 13, 7, 30) and taps
    /// off the 6-tap tile (45, 7, 25), three chunks of images (5 x 768 pixels, two images a chunk) or one, unpadded 3x3 and
    /// 1x1 convs read in place, dilation 2, a 5x5 kernel, rows of 16, 32 and 64, strides 2 and 3 from phase planes (the
    /// paper's stem among them). Each dw sums N OHW products of values in
    /// [-1, 1], so the tolerance grows with the square root of that count.</summary>
    [SkippableFact]
    public void WeightGradientInPlaceMatchesReferenceOnAnyThreadCount()
    {
        Skip.IfNot(Gemm.Wide512Supported, "the in-place weight gradient is the AVX-512 path's");
        int keep = Gemm.PackedThreads;
        try
        {
            foreach (var g in new[] { G(5, 18, 24, 32, 18, 3, 1, 1, 1, false), G(3, 5, 20, 16, 13, 3, 1, 2, 2, false),
                                      G(2, 7, 9, 64, 40, 1, 1, 0, 1, false), G(3, 70, 12, 18, 7, 3, 1, 0, 1, false),
                                      G(2, 1, 12, 32, 30, 5, 1, 2, 1, false), G(1, 36, 12, 16, 36, 3, 1, 1, 1, false),
                                      G(3, 18, 24, 32, 36, 3, 2, 1, 1, false), G(2, 3, 31, 32, 20, 3, 2, 1, 1, false),
                                      G(2, 4, 48, 48, 10, 3, 3, 1, 1, false), G(2, 3, 96, 128, 64, 3, 2, 1, 1, false) })
            {
                Assert.True(Gemm.ReadsWeightGradInPlace(g), $"{g} should take the in-place weight gradient");
                DwMatchesReferenceOnAnyThreadCount(g, g.Cin * 7 + g.Cout + g.W, "in place");
            }
        }
        finally { Gemm.PackedThreads = keep; }
    }

    /// <summary>The CPU variant's backward passes give the same bits on 1, 2 and 3 GEMM threads (the packed GEMM
    /// splits only whole tiles; the weight gradient sums its images along K in one order): im2col shapes with few
    /// and many K blocks, stride 2, a pointwise conv, the paper network's 144-channel 3x4 branch, and a stem whose
    /// small weight gradient is summed image by image.</summary>
    [Fact]
    public void BackwardIsBitwiseEqualForAnyThreadCount()
    {
        var d = Devices.Cpu;
        int keep = Gemm.PackedThreads;
        try
        {
            foreach (var g in new[] { G(8, 144, 3, 4, 144, 3, 1, 1, 1, false), G(4, 40, 24, 32, 72, 3, 1, 1, 1, false),
                                      G(3, 20, 13, 10, 70, 3, 2, 1, 1, false), G(4, 96, 12, 16, 80, 1, 1, 0, 1, false),
                                      G(5, 3, 66, 70, 20, 3, 2, 1, 1, false) })
            {
                var r = Rand.New(g.Cin + g.Cout + g.H);
                var x = Rand.Floats(r, (long)g.N * g.Cin * g.HW); var w = Rand.Floats(r, (long)g.Cout * g.CKK);
                var dy = Rand.Floats(r, (long)g.N * g.Cout * g.OHW);
                (float[] Dx, float[] Dw) Run(int threads)
                {
                    Gemm.PackedThreads = threads;
                    using var scope = new TensorScope();
                    var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length); var tdy = Tensor.FromArray(d, dy, dy.Length);
                    var dx = Tensor.Full(d, float.NaN, x.Length); var dw = Tensor.Full(d, float.NaN, w.Length);
                    Convolution.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g);
                    Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g);
                    return (dx.ToArray(), dw.ToArray());
                }
                var one = Run(1);
                foreach (int threads in new[] { 2, 3 })
                {
                    var many = Run(threads);
                    foreach (var (name, a, b) in new[] { ("dx", one.Dx, many.Dx), ("dw", one.Dw, many.Dw) })
                        for (int i = 0; i < a.Length; i++)
                            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
                                Assert.Fail($"conv2d {g} {name}: element {i} is {a[i]:R} on 1 thread, {b[i]:R} on {threads}");
                }
            }
        }
        finally { Gemm.PackedThreads = keep; }
    }

    [Fact]
    public void ReferenceGradientsMatchFiniteDifferences()
    {
        var g = G(2, 2, 6, 5, 3, 3, 2, 1, 2, true);
        var r = Rand.New(3);
        var x = Rand.D(Rand.Floats(r, g.N * g.Cin * g.HW)); var w = Rand.D(Rand.Floats(r, g.Cout * g.CKK));
        var b = Rand.D(Rand.Floats(r, g.Cout)); var dy = Rand.D(Rand.Floats(r, g.N * g.Cout * g.OHW));
        var (dx, dw, db) = Convolution.Reference.Backward(dy, x, w, g);
        Tol.Close(Rand.NumericGrad(v => Rand.Dot(Convolution.Reference.Forward(v, w, b, g), dy), x), dx, 1e-6, 1e-5, "reference dx");
        Tol.Close(Rand.NumericGrad(v => Rand.Dot(Convolution.Reference.Forward(x, v, b, g), dy), w), dw, 1e-6, 1e-5, "reference dw");
        Tol.Close(Rand.NumericGrad(v => Rand.Dot(Convolution.Reference.Forward(x, w, v, g), dy), b), db, 1e-6, 1e-5, "reference db");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void MatchesPyTorchGoldens(string dev)
    {
        var d = Devices.Get(dev);
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "conv", "conv_goldens.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        int count = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            float[] Arr(string name) => c.GetProperty(name).ValueKind == JsonValueKind.Null ? null! :
                c.GetProperty(name).EnumerateArray().Select(v => v.GetSingle()).ToArray();
            int[] Shape(string name) => c.GetProperty(name).EnumerateArray().Select(v => v.GetInt32()).ToArray();
            string name = c.GetProperty("name").GetString()!;
            var xs = Shape("x_shape"); var ws = Shape("w_shape");
            var b = Arr("b");
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, Arr("x"), xs); x.RequiresGrad = true;
            var w = Tensor.FromArray(d, Arr("w"), ws); w.RequiresGrad = true;
            Tensor? tb = null;
            if (b != null) { tb = Tensor.FromArray(d, b, b.Length); tb.RequiresGrad = true; }
            var y = F.Conv2d(x, w, tb, c.GetProperty("stride").GetInt32(), c.GetProperty("padding").GetInt32(), c.GetProperty("dilation").GetInt32());
            Assert.Equal(Shape("y_shape"), y.Shape);
            Tol.Close(Rand.D(Arr("y")), y.ToArray(), 1e-5, 1e-4, $"{name} y vs PyTorch");
            y.Backward(Tensor.FromArray(d, Arr("dy"), y.Shape));
            Tol.Close(Rand.D(Arr("dx")), x.Grad!.ToArray(), 1e-5, 1e-4, $"{name} dx vs PyTorch");
            Tol.Close(Rand.D(Arr("dw")), w.Grad!.ToArray(), 1e-5, 1e-4, $"{name} dw vs PyTorch");
            if (tb != null) { Tol.Close(Rand.D(Arr("db")), tb.Grad!.ToArray(), 1e-5, 1e-4, $"{name} db vs PyTorch"); tb.Grad!.Dispose(); }
            x.Grad!.Dispose(); w.Grad!.Dispose();
            count++;
        }
        Assert.True(count >= 3, $"only {count} golden cases in {path}");
    }

    [Fact]
    public void ConvThroughAutogradAccumulatesIntoParameters()
    {
        // two convs in a chain (relu between): gradients flow through dx of the second into the first
        var d = Devices.Cpu;
        var r = Rand.New(21);
        var g1 = G(1, 2, 6, 5, 3, 3, 1, 1, 1, true);
        var g2 = G(1, 3, 6, 5, 2, 3, 2, 1, 1, false);
        var x = Rand.Floats(r, g1.N * g1.Cin * g1.HW); var w1 = Rand.Floats(r, g1.Cout * g1.CKK);
        var b1 = Rand.Floats(r, g1.Cout); var w2 = Rand.Floats(r, g2.Cout * g2.CKK);
        var dy = Rand.Floats(r, g2.N * g2.Cout * g2.OHW);
        double Loss(double[] w1v) =>
            Rand.Dot(Convolution.Reference.Forward(Convolution.Reference.Forward(Rand.D(x), w1v, Rand.D(b1), g1).Select(v => Math.Max(v, 0)).ToArray(), Rand.D(w2), null, g2), Rand.D(dy));
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, 1, 2, 6, 5);
        var tw1 = Tensor.FromArray(d, w1, 3, 2, 3, 3); tw1.RequiresGrad = true;
        var tb1 = Tensor.FromArray(d, b1, 3); tb1.RequiresGrad = true;
        var tw2 = Tensor.FromArray(d, w2, 2, 3, 3, 3); tw2.RequiresGrad = true;
        for (int step = 0; step < 2; step++)
        {
            var y = F.Conv2d(F.Relu(F.Conv2d(tx, tw1, tb1, 1, 1)), tw2, null, 2, 1);
            y.Backward(Tensor.FromArray(d, dy, y.Shape));
        }
        var fd = Rand.NumericGrad(Loss, Rand.D(w1)).Select(v => 2 * v).ToArray(); // two steps accumulate
        Tol.Close(fd, tw1.Grad!.ToArray(), 1e-4, 1e-3, "dw1 through autograd vs finite differences");
        Assert.Null(tx.Grad);
        tw1.Grad.Dispose(); tb1.Grad!.Dispose(); tw2.Grad!.Dispose();
    }

    [Fact]
    public void BadShapesNameBothShapes()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 1, 3, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => F.Conv2d(x, Tensor.Zeros(d, 4, 2, 3, 3), null));
        Assert.Contains("[1, 3, 5, 5]", e.Message); Assert.Contains("[4, 2, 3, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => F.Conv2d(x, Tensor.Zeros(d, 4, 3, 7, 7), null));
        Assert.Contains("empty output", e.Message);
        e = Assert.Throws<ArgumentException>(() => F.Conv2d(x, Tensor.Zeros(d, 4, 3, 3, 3), Tensor.Zeros(d, 5)));
        Assert.Contains("bias has 5", e.Message);
    }
}
