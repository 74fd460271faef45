using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class LossTests
{
    // ---------------------------------------------------------------- against the float64 reference

    [Theory]
    [InlineData("cpu", 1, 1, 1, 1, false)]
    [InlineData("cpu", 2, 7, 5, 3, false)]
    [InlineData("cpu", 3, 13, 17, 11, true)]
    [InlineData("cpu", 1, 40, 37, 29, true)]
    [InlineData("cuda-on-cpu", 1, 3, 2, 3, false)]
    [InlineData("cuda-on-cpu", 2, 5, 3, 5, true)]
    public void CrossEntropyMatchesReference(string dev, int N, int C, int H, int W, bool weighted)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(N * 1000 + C * 10 + H);
        int HW = H * W;
        var x = Rand.Floats(r, (long)N * C * HW, -4f, 4f);
        var labels = new int[N * HW];
        for (int i = 0; i < labels.Length; i++) labels[i] = r.NextInt(5) == 0 ? 255 : r.NextInt(C);
        if (N * HW > 1) labels[0] = 0; // at least one valid pixel
        var w = weighted ? Rand.Floats(r, C, 0.1f, 2f) : null;
        float dout = r.Uniform(0.5f, 2f);
        var (loss, grad) = Losses.Reference.CrossEntropy(Rand.D(x), labels, w == null ? null : Rand.D(w), N, C, HW, dout);

        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, N, C, H, W); tx.RequiresGrad = true;
        var ty = Tensor.FromLabels(d, labels, C, [N, H, W]);
        var l = F.CrossEntropy(tx, ty, 255, w);
        Assert.Empty(l.Shape);
        Assert.Equal("cross_entropy", l.Name);
        Tol.Close(loss, l.Item(), 1e-5, 1e-5, "cross entropy");
        l.Backward(Tensor.Full(d, dout));
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-6, 1e-4, "d logits");
    }

    [Theory]
    [InlineData("cpu", 1, 1, 1, 1)]
    [InlineData("cpu", 2, 3, 7, 9)]
    [InlineData("cpu", 3, 1, 33, 17)]
    [InlineData("cuda-on-cpu", 1, 3, 3, 5)]
    [InlineData("cuda-on-cpu", 2, 1, 7, 3)]
    public void MaskedL1MatchesReference(string dev, int N, int C, int H, int W)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(N * 100 + C * 10 + H + 1);
        int HW = H * W;
        var p = Rand.Floats(r, (long)N * C * HW);
        var t = Rand.Floats(r, (long)N * C * HW);
        for (int i = 0; i < N * HW; i++)
        {
            int n = i / HW, q = i % HW;
            int k = r.NextInt(6);
            if (k == 0) t[(n * C + r.NextInt(C)) * HW + q] = 255f;                  // ignored
            else if (k == 1) for (int c = 0; c < C; c++) t[(n * C + c) * HW + q] = 0f; // all zero: invalid
        }
        if (C > 1) t[1 * HW % (C * HW)] = 0f; // one zero channel alone leaves the pixel valid
        float dout = r.Uniform(0.5f, 2f);
        var (loss, grad) = Losses.Reference.MaskedL1(Rand.D(p), Rand.D(t), 255, N, C, HW, dout);

        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, p, N, C, H, W); tp.RequiresGrad = true;
        var tt = Tensor.FromArray(d, t, N, C, H, W);
        var l = F.MaskedL1(tp, tt);
        Assert.Equal("masked_l1", l.Name);
        Tol.Close(loss, l.Item(), 1e-5, 1e-5, "masked L1");
        l.Backward(Tensor.Full(d, dout));
        Tol.Close(grad, tp.Grad!.ToArray(), 1e-7, 1e-5, "d pred");
    }

    [Theory]
    [InlineData("cpu", 1, 1, 1, 0.95f)]
    [InlineData("cpu", 2, 9, 13, 0.8f)]
    [InlineData("cpu", 3, 64, 67, 0.95f)]
    [InlineData("cuda-on-cpu", 1, 5, 7, 0.8f)]
    [InlineData("cuda-on-cpu", 2, 3, 3, 0.95f)]
    public void BalancedBceMatchesReference(string dev, int N, int H, int W, float posWeight)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(N * 100 + H * 10 + W);
        long n = (long)N * H * W;
        var x = Rand.Floats(r, n, -30f, 30f); // large logits: the log-sigmoid must stay finite
        var t = new float[n];
        for (long i = 0; i < n; i++) t[i] = r.NextInt(8) == 0 ? 255f : r.NextInt(4) == 0 ? 1f : 0f;
        t[0] = 0f;
        float dout = r.Uniform(0.5f, 2f);
        var (loss, grad) = Losses.Reference.BalancedBce(Rand.D(x), Rand.D(t), posWeight, 255, dout);

        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, N, 1, H, W); tx.RequiresGrad = true;
        var tt = Tensor.FromArray(d, t, N, 1, H, W);
        var l = F.BalancedBce(tx, tt, posWeight);
        Assert.Equal("balanced_bce", l.Name);
        Tol.Close(loss, l.Item(), 1e-5, 1e-5, "balanced BCE");
        l.Backward(Tensor.Full(d, dout));
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-7, 1e-4, "d logits");
    }

    // ---------------------------------------------------------------- the references' gradients

    [Fact]
    public void ReferenceGradientsMatchFiniteDifferences()
    {
        var r = Rand.New(99);
        int N = 2, C = 4, HW = 6;
        var x = Rand.D(Rand.Floats(r, N * C * HW, -3f, 3f));
        var labels = new int[N * HW];
        for (int i = 0; i < labels.Length; i++) labels[i] = i % 5 == 4 ? 255 : r.NextInt(C);
        var w = Rand.D(Rand.Floats(r, C, 0.2f, 2f));
        Tol.Close(Rand.NumericGrad(v => Losses.Reference.CrossEntropy(v, labels, w, N, C, HW).Loss, x),
                  Losses.Reference.CrossEntropy(x, labels, w, N, C, HW).DLogits, 1e-7, 1e-5, "CE reference gradient");

        var p = Rand.D(Rand.Floats(r, N * C * HW));
        var t = Rand.D(Rand.Floats(r, N * C * HW));
        t[3] = 255; for (int c = 0; c < C; c++) t[c * HW + 5] = 0;
        Tol.Close(Rand.NumericGrad(v => Losses.Reference.MaskedL1(v, t, 255, N, C, HW).Loss, p),
                  Losses.Reference.MaskedL1(p, t, 255, N, C, HW).DPred, 1e-7, 1e-5, "L1 reference gradient");

        var b = Rand.D(Rand.Floats(r, 20, -5f, 5f));
        var bt = Enumerable.Range(0, 20).Select(i => i % 7 == 0 ? 255.0 : i % 3 == 0 ? 1.0 : 0.0).ToArray();
        Tol.Close(Rand.NumericGrad(v => Losses.Reference.BalancedBce(v, bt, 0.8, 255).Loss, b),
                  Losses.Reference.BalancedBce(b, bt, 0.8, 255).DLogits, 1e-7, 1e-5, "BCE reference gradient");
    }

    // ---------------------------------------------------------------- edge cases

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void AllIgnoredGivesZeroLossAndZeroGradient(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, Rand.Floats(Rand.New(1), 2 * 3 * 2 * 2), 2, 3, 2, 2); x.RequiresGrad = true;
        var y = Tensor.FromLabels(d, Enumerable.Repeat(255, 8).ToArray(), 3, [2, 2, 2]);
        var l = F.CrossEntropy(x, y, 255, [1f, 2f, 3f]);
        Assert.Equal(0f, l.Item());
        l.Backward(Tensor.Full(d, 1.5f));
        Assert.All(x.Grad!.ToArray(), v => Assert.Equal(0f, v));

        var p = Tensor.FromArray(d, Rand.Floats(Rand.New(2), 12), 2, 3, 2, 1); p.RequiresGrad = true;
        var t = Tensor.FromArray(d, [0f, 0f, 0f, 255f, 0f, 0f, 1f, 0f, 0f, 255f, 255f, 3f], 2, 3, 2, 1);
        var l1 = F.MaskedL1(p, t);
        Assert.Equal(0f, l1.Item());
        l1.Backward(Tensor.Full(d, 1f));
        Assert.All(p.Grad!.ToArray(), v => Assert.Equal(0f, v));

        var e = Tensor.FromArray(d, [1f, -2f, 3f], 1, 1, 1, 3); e.RequiresGrad = true;
        var b = F.BalancedBce(e, Tensor.Full(d, 255f, 1, 1, 1, 3), 0.95f);
        Assert.Equal(0f, b.Item());
        b.Backward(Tensor.Full(d, 1f));
        Assert.All(e.Grad!.ToArray(), v => Assert.Equal(0f, v));
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void NaNLogitThrowsFromItemNamingTheOp(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        var x = Rand.Floats(Rand.New(3), 2 * 4 * 3);
        x[5] = float.NaN;
        var tx = Tensor.FromArray(d, x, 2, 4, 3, 1);
        var ty = Tensor.FromLabels(d, [0, 1, 2, 3, 0, 1], 4, [2, 3, 1]);
        var e = Assert.Throws<NonFiniteException>(() => F.CrossEntropy(tx, ty).Item());
        Assert.Equal("cross_entropy", e.Op);
        var e2 = Assert.Throws<NonFiniteException>(() => F.BalancedBce(tx, Tensor.Zeros(d, 2, 4, 3, 1), 0.8f).Item());
        Assert.Equal("balanced_bce", e2.Op);
        var e3 = Assert.Throws<NonFiniteException>(() => F.MaskedL1(tx, Tensor.Full(d, 1f, 2, 4, 3, 1)).Item());
        Assert.Equal("masked_l1", e3.Op);
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void HugeLogitsStayFinite(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        var x = new[] { 1000f, -1000f, 0f, -1000f, 1000f, 80f }; // (1, 3, 2, 1)
        var tx = Tensor.FromArray(d, x, 1, 3, 2, 1); tx.RequiresGrad = true;
        var ty = Tensor.FromLabels(d, [1, 1], 3, [1, 2, 1]);
        var l = F.CrossEntropy(tx, ty);
        var (loss, grad) = Losses.Reference.CrossEntropy(Rand.D(x), [1, 1], null, 1, 3, 2);
        Tol.Close(loss, l.Item(), 1e-3, 1e-6, "CE of huge logits");
        l.Backward();
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-6, 1e-5, "d huge logits");
        var b = F.BalancedBce(Tensor.FromArray(d, [1000f, -1000f], 1, 1, 1, 2), Tensor.FromArray(d, [0f, 1f], 1, 1, 1, 2), 0.8f);
        Tol.Close(Losses.Reference.BalancedBce([1000, -1000], [0, 1], 0.8, 255).Loss, b.Item(), 1e-3, 1e-6, "BCE of huge logits");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void IgnoreIndexInsideTheClassRangeIsSkipped(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(6);
        var x = Rand.Floats(r, 2 * 4 * 3, -2f, 2f);
        int[] labels = [0, 1, 2, 3, 0, 0];
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, 2, 4, 3, 1); tx.RequiresGrad = true;
        var l = F.CrossEntropy(tx, Tensor.FromLabels(d, labels, 4, [2, 3, 1], ignoreIndex: 0), ignoreIndex: 0);
        var (loss, grad) = Losses.Reference.CrossEntropy(Rand.D(x), labels, null, 2, 4, 3, 0.5, ignoreIndex: 0);
        Tol.Close(loss, l.Item(), 1e-6, 1e-5, "CE with ignore index 0");
        l.Backward(Tensor.Full(d, 0.5f));
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-7, 1e-5, "d CE with ignore index 0");
        Assert.Equal(0f, tx.Grad!.ToArray()[0]); // pixel 0 (label 0) is ignored
    }

    [Fact]
    public void OutOfRangeLabelIsRejectedOnTheHost()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            Tensor.FromLabels(Devices.Cpu, [0, 1, 5, 255], 5, [1, 2, 2], name: "semseg"));
        Assert.Contains("label 5", e.Message);
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void BadLabelThatEscapedTheHostCheckIsSkippedNotRead(string dev)
    {
        var d = Devices.Get(dev);
        var x = Rand.Floats(Rand.New(4), 1 * 3 * 4);
        int[] labels = [2, 7, -3, 0]; // 7 and -3 bypass FromLabels on purpose
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, 1, 3, 4, 1); tx.RequiresGrad = true;
        var ty = Tensor.FromArray(d, labels, 1, 4, 1);
        var l = F.CrossEntropy(tx, ty);
        var (loss, grad) = Losses.Reference.CrossEntropy(Rand.D(x), labels, null, 1, 3, 4);
        Tol.Close(loss, l.Item(), 1e-6, 1e-5, "CE with bad labels");
        l.Backward();
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-6, 1e-5, "d logits with bad labels");
    }

    [Fact]
    public void ShapeErrorsNameTheOpAndShapes()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 2, 3, 4, 5);
        var e = Assert.Throws<ArgumentException>(() => F.CrossEntropy(x, Tensor.FromLabels(d, new int[2 * 4 * 4], 3, [2, 4, 4])));
        Assert.Contains("cross_entropy", e.Message);
        Assert.Contains("[2, 4, 4]", e.Message);
        Assert.Throws<ArgumentException>(() => F.CrossEntropy(x, Tensor.FromLabels(d, new int[40], 3, [2, 4, 5]), 255, [1f, 2f]));
        Assert.Throws<ArgumentException>(() => F.MaskedL1(x, Tensor.Zeros(d, 2, 3, 4, 4)));
    }

    [Fact]
    public void NoLeakWithoutGradient()
    {
        var d = Devices.Cpu;
        var stats = TensorStats.Of(d);
        using var x = Tensor.FromArray(d, Rand.Floats(Rand.New(5), 6), 1, 3, 2, 1);
        using var y = Tensor.FromLabels(d, [0, 2], 3, [1, 2, 1]);
        long before = stats.LiveTensors;
        using (var l = F.CrossEntropy(x, y, 255, [1f, 1f, 1f])) Assert.True(l.Item() > 0);
        Assert.Equal(before, stats.LiveTensors);
    }

    [SkippableFact]
    public void CudaKernelsOnARealGpuMatchReference()
    {
        Skip.If(Devices.Gpu == null, "no CUDA device");
        var d = Devices.Gpu!;
        var r = Rand.New(77);
        int N = 2, C = 21, H = 57, W = 83, HW = H * W;
        var x = Rand.Floats(r, (long)N * C * HW, -5f, 5f);
        var labels = new int[N * HW];
        for (int i = 0; i < labels.Length; i++) labels[i] = r.NextInt(10) == 0 ? 255 : r.NextInt(C);
        var w = Rand.Floats(r, C, 0.1f, 2f);
        var (loss, grad) = Losses.Reference.CrossEntropy(Rand.D(x), labels, Rand.D(w), N, C, HW, 0.75);
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(d, x, N, C, H, W); tx.RequiresGrad = true;
        var l = F.CrossEntropy(tx, Tensor.FromLabels(d, labels, C, [N, H, W]), 255, w);
        Tol.Close(loss, l.Item(), 1e-5, 1e-4, "CE on the GPU");
        l.Backward(Tensor.Full(d, 0.75f));
        Tol.Close(grad, tx.Grad!.ToArray(), 1e-6, 1e-3, "d CE on the GPU");

        var p = Rand.Floats(r, N * 3 * HW); var t = Rand.Floats(r, N * 3 * HW);
        t[5] = 255f;
        var (l1, dl1) = Losses.Reference.MaskedL1(Rand.D(p), Rand.D(t), 255, N, 3, HW);
        var tp = Tensor.FromArray(d, p, N, 3, H, W); tp.RequiresGrad = true;
        var ll = F.MaskedL1(tp, Tensor.FromArray(d, t, N, 3, H, W));
        Tol.Close(l1, ll.Item(), 1e-5, 1e-4, "masked L1 on the GPU");
        ll.Backward();
        Tol.Close(dl1, tp.Grad!.ToArray(), 1e-8, 1e-4, "d masked L1 on the GPU");

        var e = Rand.Floats(r, N * HW, -10f, 10f);
        var et = Enumerable.Range(0, N * HW).Select(i => i % 9 == 0 ? 255f : i % 4 == 0 ? 1f : 0f).ToArray();
        var (lb, db) = Losses.Reference.BalancedBce(Rand.D(e), Rand.D(et), 0.95, 255);
        var te = Tensor.FromArray(d, e, N, 1, H, W); te.RequiresGrad = true;
        var bl = F.BalancedBce(te, Tensor.FromArray(d, et, N, 1, H, W), 0.95f);
        Tol.Close(lb, bl.Item(), 1e-5, 1e-4, "balanced BCE on the GPU");
        bl.Backward();
        Tol.Close(db, te.Grad!.ToArray(), 1e-8, 1e-3, "d balanced BCE on the GPU");
    }

    // ---------------------------------------------------------------- PyTorch goldens

    static JsonElement Fixture(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "loss", name))).RootElement;
    internal static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
    internal static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
    static int[] Shape(JsonElement e) => e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();

    [Theory]
    [InlineData("cpu", "ce_ignore.json")]
    [InlineData("cpu", "ce_weighted.json")]
    [InlineData("cuda-on-cpu", "ce_weighted.json")]
    public void CrossEntropyMatchesPyTorch(string dev, string file)
    {
        var d = Devices.Get(dev);
        var f = Fixture(file);
        var s = Shape(f);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, Floats(f.GetProperty("logits")), s); x.RequiresGrad = true;
        var labels = f.GetProperty("labels").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var y = Tensor.FromLabels(d, labels, s[1], [s[0], s[2], s[3]]);
        float[]? w = f.TryGetProperty("weights", out var we) ? Floats(we) : null;
        var l = F.CrossEntropy(x, y, 255, w);
        Tol.Close(f.GetProperty("loss").GetDouble(), l.Item(), 1e-6, 1e-5, "CE vs PyTorch");
        l.Backward();
        Tol.Close(Doubles(f.GetProperty("grad")), x.Grad!.ToArray(), 1e-7, 1e-4, "dCE vs PyTorch");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void MaskedL1AndBalancedBceMatchPyTorch(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        var f = Fixture("masked_l1.json");
        var p = Tensor.FromArray(d, Floats(f.GetProperty("pred")), Shape(f)); p.RequiresGrad = true;
        var l = F.MaskedL1(p, Tensor.FromArray(d, Floats(f.GetProperty("target")), Shape(f)));
        Tol.Close(f.GetProperty("loss").GetDouble(), l.Item(), 1e-6, 1e-5, "masked L1 vs PyTorch");
        l.Backward();
        Tol.Close(Doubles(f.GetProperty("grad")), p.Grad!.ToArray(), 1e-7, 1e-5, "d masked L1 vs PyTorch");

        var b = Fixture("balanced_bce.json");
        var x = Tensor.FromArray(d, Floats(b.GetProperty("logits")), Shape(b)); x.RequiresGrad = true;
        var lb = F.BalancedBce(x, Tensor.FromArray(d, Floats(b.GetProperty("target")), Shape(b)), (float)b.GetProperty("pos_weight").GetDouble());
        Tol.Close(b.GetProperty("loss").GetDouble(), lb.Item(), 1e-6, 1e-5, "balanced BCE vs PyTorch");
        lb.Backward();
        Tol.Close(Doubles(b.GetProperty("grad")), x.Grad!.ToArray(), 1e-7, 1e-4, "d balanced BCE vs PyTorch");
    }
}
