using Ccr.Nn.Modules;
using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;
using Ref = Ccr.Kernels.Ops.BatchNorm.Reference;

namespace Ccr.Tests.Kernels;

/// <summary>
/// Batch norm fused with residual add and ReLU: y = act(bn(x) + residual). The float64 reference is
/// checked by central differences; both kernel variants against it at awkward shapes (batch 1, one
/// channel, odd H and W) in training and eval, with the CUDA variant's per-channel split forced to
/// cut ranges across image planes; PyTorch goldens for plain BN and for relu(bn(x) + residual).
/// </summary>
public class BatchNormTests
{
    const double Eps = 1e-5, Momentum = 0.1;

    /// <summary>Which op: plain batch norm, BN + ReLU, BN + residual add + ReLU.</summary>
    public enum Mode { Bn, BnRelu, BnAddRelu }

    sealed record Case(float[] X, float[] R, float[] W, float[] B, float[] Rm, float[] Rv, float[] Dy, int N, int C, int H, int Wd)
    {
        public int Hw => H * Wd;
    }

    static Case Make(int seed, int n, int c, int h, int w)
    {
        var r = Rand.New(seed);
        long len = (long)n * c * h * w;
        // An offset mean (|mean| > std) checks the variance's numerics.
        var x = Rand.Floats(r, len, -1.5f, 2.5f);
        return new Case(x, Rand.Floats(r, len), Rand.Floats(r, c, 0.5f, 1.5f), Rand.Floats(r, c), Rand.Floats(r, c, -0.2f, 0.2f),
                        Rand.Floats(r, c, 0.5f, 1.5f), Rand.Floats(r, len), n, c, h, w);
    }

    [Theory]
    [InlineData(Mode.Bn)]
    [InlineData(Mode.BnRelu)]
    [InlineData(Mode.BnAddRelu)]
    public void ReferenceGradientsMatchFiniteDifferences(Mode mode)
    {
        var k = Make(1 + (int)mode, 2, 2, 3, 2);
        var x = Rand.D(k.X); var w = Rand.D(k.W); var b = Rand.D(k.B); var dy = Rand.D(k.Dy);
        var rm = Rand.D(k.Rm); var rv = Rand.D(k.Rv);
        double[]? res = mode == Mode.BnAddRelu ? Rand.D(k.R) : null;
        bool relu = mode != Mode.Bn;
        foreach (bool training in new[] { true, false })
        {
            string tag = training ? "train" : "eval";
            double Loss(double[] xv, double[] wv, double[] bv, double[]? rr) => Rand.Dot(training
                ? Ref.ForwardTraining(xv, wv, bv, rm, rv, k.N, k.C, k.Hw, Momentum, Eps, rr, relu).Y
                : Ref.ForwardEval(xv, wv, bv, rm, rv, k.N, k.C, k.Hw, Eps, rr, relu), dy);
            var gr = training ? Ref.BackwardTraining(dy, x, w, b, k.N, k.C, k.Hw, Eps, res, relu)
                              : Ref.BackwardEval(dy, x, w, b, rm, rv, k.N, k.C, k.Hw, Eps, res, relu);
            Tol.Close(Rand.NumericGrad(v => Loss(v, w, b, res), (double[])x.Clone()), gr.Dx, 1e-7, 1e-5, $"{tag} dx");
            Tol.Close(Rand.NumericGrad(v => Loss(x, v, b, res), (double[])w.Clone()), gr.Dweight, 1e-7, 1e-5, $"{tag} dweight");
            Tol.Close(Rand.NumericGrad(v => Loss(x, w, v, res), (double[])b.Clone()), gr.Dbias, 1e-7, 1e-5, $"{tag} dbias");
            if (res != null)
                Tol.Close(Rand.NumericGrad(v => Loss(x, w, b, v), (double[])res.Clone()), gr.Dresidual!, 1e-7, 1e-5, $"{tag} dresidual");
            else Assert.Null(gr.Dresidual);
        }
    }

    public static TheoryData<string, Mode, int, int, int, int, int> KernelCases()
    {
        var t = new TheoryData<string, Mode, int, int, int, int, int>();
        foreach (var mode in new[] { Mode.Bn, Mode.BnRelu, Mode.BnAddRelu })
        {
            t.Add("cpu", mode, 1, 1, 3, 5, 0);
            t.Add("cpu", mode, 3, 5, 7, 9, 0);
            t.Add("cpu", mode, 2, 18, 15, 21, 0);
            t.Add("cpu", mode, 4, 2, 1, 1, 0);
            // CUDA variant: one part per channel, and parts that cut ranges across image planes
            t.Add("cuda-on-cpu", mode, 1, 1, 3, 5, 1);
            t.Add("cuda-on-cpu", mode, 2, 3, 5, 7, 3);
            t.Add("cuda-on-cpu", mode, 3, 2, 1, 7, 5);
        }
        t.Add("cuda-on-cpu", Mode.BnAddRelu, 1, 1, 3, 5, 15); // one element per part
        return t;
    }

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void KernelsMatchReference(string dev, Mode mode, int n, int c, int h, int w, int parts)
    {
        var d = Devices.Get(dev);
        var k = Make(n * 1000 + c * 10 + h + 7 * (int)mode, n, c, h, w);
        double[]? res = mode == Mode.BnAddRelu ? Rand.D(k.R) : null;
        bool relu = mode != Mode.Bn;
        foreach (bool training in new[] { true, false })
        {
            string tag = $"{dev} {mode} {(training ? "train" : "eval")} parts {parts}";
            var x = Rand.D(k.X); var wt = Rand.D(k.W); var bs = Rand.D(k.B); var dyd = Rand.D(k.Dy);
            var ef = training ? Ref.ForwardTraining(x, wt, bs, Rand.D(k.Rm), Rand.D(k.Rv), n, c, k.Hw, Momentum, Eps, res, relu)
                              : new Ref.ForwardResult(Ref.ForwardEval(x, wt, bs, Rand.D(k.Rm), Rand.D(k.Rv), n, c, k.Hw, Eps, res, relu),
                                                Rand.D(k.Rm), Rand.D(k.Rv).Select(v => 1 / Math.Sqrt(v + Eps)).ToArray(), Rand.D(k.Rm), Rand.D(k.Rv));
            var eg = training ? Ref.BackwardTraining(dyd, x, wt, bs, n, c, k.Hw, Eps, res, relu)
                              : Ref.BackwardEval(dyd, x, wt, bs, Rand.D(k.Rm), Rand.D(k.Rv), n, c, k.Hw, Eps, res, relu);
            var got = Run(d, k, mode, training, parts);
            Tol.Close(ef.Mean, got.Mean, 1e-6, 1e-5, $"{tag} mean");
            Tol.Close(ef.InvStd, got.InvStd, 1e-6, 1e-4, $"{tag} invstd");
            Tol.Close(ef.RunningMean, got.Rm, 1e-6, 1e-5, $"{tag} running_mean");
            Tol.Close(ef.RunningVar, got.Rv, 1e-6, 1e-4, $"{tag} running_var");
            Tol.Close(ef.Y, got.Y, 1e-5, 1e-4, $"{tag} y");
            Tol.Close(eg.Dx, got.Dx, 1e-4, 1e-3, $"{tag} dx");
            Tol.Close(eg.Dweight, got.Dw, 1e-4, 1e-3, $"{tag} dweight");
            Tol.Close(eg.Dbias, got.Db, 1e-4, 1e-3, $"{tag} dbias");
            if (res != null) Tol.Close(eg.Dresidual!, got.Dr!, 1e-5, 1e-4, $"{tag} dresidual");
        }
    }

    sealed record Out(float[] Y, float[] Mean, float[] InvStd, float[] Rm, float[] Rv, float[] Dx, float[] Dw, float[] Db, float[]? Dr);

    static Out Run(Device d, Case k, Mode mode, bool training, int parts)
    {
        int n = k.N, c = k.C, h = k.H, w = k.Wd;
        bool relu = mode != Mode.Bn, hasRes = mode == Mode.BnAddRelu;
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, k.X, n, c, h, w); var dy = Tensor.FromArray(d, k.Dy, n, c, h, w);
        var r = Tensor.FromArray(d, k.R, n, c, h, w);
        var wt = Tensor.FromArray(d, k.W, c); var bt = Tensor.FromArray(d, k.B, c);
        var rm = Tensor.FromArray(d, k.Rm, c); var rv = Tensor.FromArray(d, k.Rv, c);
        var mean = Tensor.Empty(d, c); var inv = Tensor.Empty(d, c); var y = Tensor.Empty(d, n, c, h, w);
        var dx = Tensor.Empty(d, n, c, h, w); var dr = Tensor.Empty(d, n, c, h, w);
        var dw = Tensor.Empty(d, c); var db = Tensor.Empty(d, c);
        BatchNorm.Forward(d, y.Data, mean.Data, inv.Data, rm.Data, rv.Data, x.Data, hasRes ? r.Data : null, wt.Data, bt.Data,
                          n, c, k.Hw, training, (float)Momentum, (float)Eps, relu, parts: parts);
        BatchNorm.Backward(d, dx.Data, hasRes ? dr.Data : null, dw.Data, db.Data, dy.Data, y.Data, x.Data, mean.Data, inv.Data,
                           wt.Data, n, c, k.Hw, training, relu, parts: parts);
        return new Out(y.ToArray(), mean.ToArray(), inv.ToArray(), rm.ToArray(), rv.ToArray(), dx.ToArray(), dw.ToArray(),
                       db.ToArray(), hasRes ? dr.ToArray() : null);
    }

    [Fact]
    public void CudaVariantGivesTheSameBitsEveryRunAndCloseResultsForAnySplit()
    {
        var d = Devices.CudaOnCpu;
        var k = Make(91, 2, 3, 5, 7);
        var a = Run(d, k, Mode.BnAddRelu, true, 4);
        var b = Run(d, k, Mode.BnAddRelu, true, 4);
        foreach (var (u, v, what) in new[] { (a.Y, b.Y, "y"), (a.Dx, b.Dx, "dx"), (a.Dw, b.Dw, "dweight"), (a.Db, b.Db, "dbias"), (a.Rv, b.Rv, "running_var") })
            Assert.True(u.AsSpan().SequenceEqual(v), $"{what} differs between two identical runs");
        var one = Run(d, k, Mode.BnAddRelu, true, 1);
        Tol.Close(Array.ConvertAll(one.Dx, v => (double)v), a.Dx, 1e-5, 1e-4, "dx, 1 vs 4 parts per channel");
        Tol.Close(Array.ConvertAll(one.Rv, v => (double)v), a.Rv, 1e-6, 1e-5, "running_var, 1 vs 4 parts per channel");
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void MatchesPyTorchGolden(string dev)
    {
        var d = Devices.Get(dev);
        var g = NormFixtures.Load("batchnorm.json");
        var s = g["x"].Shape;
        int c = s[1];
        foreach (bool training in new[] { true, false })
        {
            string tag = training ? "train" : "eval";
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, g["x"].Data, s); x.RequiresGrad = true;
            var w = Tensor.FromArray(d, g["weight"].Data, c); w.RequiresGrad = true;
            var b = Tensor.FromArray(d, g["bias"].Data, c); b.RequiresGrad = true;
            var rm = Tensor.FromArray(d, g["running_mean0"].Data, c);
            var rv = Tensor.FromArray(d, g["running_var0"].Data, c);
            var y = F.BatchNorm2d(x, w, b, rm, rv, training);
            y.Backward(Tensor.FromArray(d, g["dy"].Data, s));
            Tol.Close(g["y_" + tag].D, y.ToArray(), 1e-5, 1e-4, $"{tag} y vs torch");
            Tol.Close(g["dx_" + tag].D, x.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dx vs torch");
            Tol.Close(g["dweight_" + tag].D, w.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dweight vs torch");
            Tol.Close(g["dbias_" + tag].D, b.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dbias vs torch");
            Tol.Close(g[training ? "running_mean1" : "running_mean0"].D, rm.ToArray(), 1e-6, 1e-4, $"{tag} running_mean vs torch");
            Tol.Close(g[training ? "running_var1" : "running_var0"].D, rv.ToArray(), 1e-6, 1e-4, $"{tag} running_var vs torch");
            x.Grad.Dispose(); w.Grad.Dispose(); b.Grad.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void FusedAddReluMatchesPyTorchGolden(string dev)
    {
        var d = Devices.Get(dev);
        var g = NormFixtures.Load("batchnorm_add_relu.json");
        var s = g["x"].Shape;
        int c = s[1];
        foreach (bool training in new[] { true, false })
        {
            string tag = training ? "train" : "eval";
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, g["x"].Data, s); x.RequiresGrad = true;
            var r = Tensor.FromArray(d, g["residual"].Data, s); r.RequiresGrad = true;
            var w = Tensor.FromArray(d, g["weight"].Data, c); w.RequiresGrad = true;
            var b = Tensor.FromArray(d, g["bias"].Data, c); b.RequiresGrad = true;
            var rm = Tensor.FromArray(d, g["running_mean0"].Data, c);
            var rv = Tensor.FromArray(d, g["running_var0"].Data, c);
            var y = F.BatchNormRelu(x, w, b, rm, rv, training, residual: r);
            y.Backward(Tensor.FromArray(d, g["dy"].Data, s));
            Tol.Close(g["y_" + tag].D, y.ToArray(), 1e-5, 1e-4, $"{tag} y vs torch");
            Tol.Close(g["dx_" + tag].D, x.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dx vs torch");
            Tol.Close(g["dresidual_" + tag].D, r.Grad!.ToArray(), 1e-6, 1e-5, $"{tag} dresidual vs torch");
            Tol.Close(g["dweight_" + tag].D, w.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dweight vs torch");
            Tol.Close(g["dbias_" + tag].D, b.Grad!.ToArray(), 1e-5, 1e-4, $"{tag} dbias vs torch");
            Tol.Close(g["running_mean_" + tag].D, rm.ToArray(), 1e-6, 1e-5, $"{tag} running_mean vs torch");
            Tol.Close(g["running_var_" + tag].D, rv.ToArray(), 1e-6, 1e-5, $"{tag} running_var vs torch");
            x.Grad.Dispose(); r.Grad.Dispose(); w.Grad.Dispose(); b.Grad.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void FusedOpEqualsTheUnfusedComposition(string dev)
    {
        // relu(bn(x) + r) fused vs Relu(Add(BatchNorm2d(x), r)) as three ops, values and gradients.
        var d = Devices.Get(dev);
        var k = Make(33, 2, 3, 4, 5);
        float[] Grads(bool fused)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromArray(d, k.X, 2, 3, 4, 5); x.RequiresGrad = true;
            var r = Tensor.FromArray(d, k.R, 2, 3, 4, 5); r.RequiresGrad = true;
            var w = Tensor.FromArray(d, k.W, 3); w.RequiresGrad = true;
            var b = Tensor.FromArray(d, k.B, 3); b.RequiresGrad = true;
            var rm = Tensor.FromArray(d, k.Rm, 3); var rv = Tensor.FromArray(d, k.Rv, 3);
            var y = fused ? F.BatchNormRelu(x, w, b, rm, rv, true, residual: r)
                          : F.Relu(F.Add(F.BatchNorm2d(x, w, b, rm, rv, true), r));
            y.Backward(Tensor.FromArray(d, k.Dy, 2, 3, 4, 5));
            var all = y.ToArray().Concat(x.Grad!.ToArray()).Concat(r.Grad!.ToArray()).Concat(w.Grad!.ToArray())
                       .Concat(b.Grad!.ToArray()).Concat(rm.ToArray()).Concat(rv.ToArray()).ToArray();
            x.Grad.Dispose(); r.Grad.Dispose(); w.Grad.Dispose(); b.Grad.Dispose();
            return all;
        }
        Tol.Close(Array.ConvertAll(Grads(false), v => (double)v), Grads(true), 1e-6, 1e-5, "fused vs unfused");
    }

    [Fact]
    public void ModuleSwitchesBetweenBatchAndRunningStatistics()
    {
        var d = Devices.Cpu;
        var k = Make(5, 2, 3, 4, 5);
        var bn = new BatchNorm2d(d, 3);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, k.X, 2, 3, 4, 5);
        var yTrain = bn.Forward(x).ToArray();
        var e = Ref.ForwardTraining(Rand.D(k.X), [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1], 2, 3, 20, Momentum, Eps);
        Tol.Close(e.Y, yTrain, 1e-5, 1e-4, "module train y");
        Tol.Close(e.RunningMean, bn.RunningMean.ToArray(), 1e-6, 1e-5, "module running_mean");
        Assert.Equal(1, bn.NumBatchesTracked);
        var yRelu = bn.ForwardRelu(x).ToArray(); // a second training step, fused with ReLU
        Assert.Equal(2, bn.NumBatchesTracked);
        Assert.All(yRelu, v => Assert.True(v >= 0f));
        bn.Train(false);
        var e2 = Ref.ForwardTraining(Rand.D(k.X), [1, 1, 1], [0, 0, 0], e.RunningMean, e.RunningVar, 2, 3, 20, Momentum, Eps);
        var yEval = bn.Forward(x).ToArray();
        Tol.Close(Ref.ForwardEval(Rand.D(k.X), [1, 1, 1], [0, 0, 0], e2.RunningMean, e2.RunningVar, 2, 3, 20, Eps), yEval, 1e-5, 1e-4, "module eval y");
    }

    /// <summary>As torch.relu, the fused ReLU lets NaN through (a NaN must not turn into a finite
    /// activation that hides a diverged layer), and its backward passes the gradient at a NaN.</summary>
    [Theory]
    [MemberData(nameof(Devices.Both), MemberType = typeof(Devices))]
    public void FusedReluPropagatesNaNAsPyTorch(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        // eval mode, identity statistics: y = relu(x + r)
        var x = Tensor.FromArray(d, [-1f, float.NaN, 2f, 0.5f], 1, 1, 2, 2);
        var r = Tensor.FromArray(d, [0f, 0f, -3f, float.NaN], 1, 1, 2, 2);
        var one = Tensor.FromArray(d, [1f], 1); var zero = Tensor.FromArray(d, [0f], 1);
        var y = Tensor.Empty(d, 1, 1, 2, 2);
        var mean = Tensor.Empty(d, 1); var inv = Tensor.Empty(d, 1);
        BatchNorm.Forward(d, y.Data, mean.Data, inv.Data, zero.Data, one.Data, x.Data, r.Data, one.Data, zero.Data, 1, 1, 4,
                          training: false, (float)Momentum, 0f, relu: true);
        var got = y.ToArray();
        Assert.Equal(0f, got[0]);
        Assert.True(float.IsNaN(got[1]) && got[2] == 0f && float.IsNaN(got[3]), $"y = [{string.Join(", ", got)}]");
    }

    [Fact]
    public void BadShapesAreRejectedBeforeLaunch()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var x = Tensor.Zeros(d, 2, 3, 4, 4);
        var w = Tensor.Zeros(d, 4);
        var e = Assert.Throws<ArgumentException>(() => F.BatchNorm2d(x, w, w, w, w, true));
        Assert.Contains("3 channels", e.Message);
        var one = Tensor.Zeros(d, 1, 1, 1, 1); var c1 = Tensor.Zeros(d, 1);
        var e2 = Assert.Throws<ArgumentException>(() => F.BatchNorm2d(one, c1, c1, c1, c1, true));
        Assert.Contains("more than 1 value per channel", e2.Message);
        var c3 = Tensor.Zeros(d, 3);
        var e3 = Assert.Throws<ArgumentException>(() => F.BatchNormRelu(x, c3, c3, c3, c3, true, residual: Tensor.Zeros(d, 2, 3, 4, 5)));
        Assert.Contains("batch_norm_add_relu", e3.Message);
    }
}
