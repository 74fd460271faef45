using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Tests.Common;
using Xunit;
using Ref = Ccr.Kernels.BatchNorm.Reference;

namespace Ccr.Tests.Kernels;

public class BatchNormTests
{
    const double Eps = 1e-5, Momentum = 0.1;

    sealed record Case(float[] X, float[] W, float[] B, float[] Rm, float[] Rv, float[] Dy, int N, int C, int H, int Wd)
    {
        public int Hw => H * Wd;
    }

    static Case Make(int seed, int n, int c, int h, int w)
    {
        var r = Rand.New(seed);
        long len = (long)n * c * h * w;
        // An offset mean (|mean| > std) checks the two-pass variance.
        var x = Rand.Floats(r, len, -1.5f, 2.5f);
        return new Case(x, Rand.Floats(r, c, 0.5f, 1.5f), Rand.Floats(r, c), Rand.Floats(r, c, -0.2f, 0.2f),
                        Rand.Floats(r, c, 0.5f, 1.5f), Rand.Floats(r, len), n, c, h, w);
    }

    [Fact]
    public void ReferenceGradientsMatchFiniteDifferences()
    {
        var k = Make(1, 2, 2, 3, 2);
        var x = Rand.D(k.X); var w = Rand.D(k.W); var b = Rand.D(k.B); var dy = Rand.D(k.Dy);
        var rm = Rand.D(k.Rm); var rv = Rand.D(k.Rv);
        double Train(double[] xv, double[] wv, double[] bv) =>
            Rand.Dot(Ref.ForwardTraining(xv, wv, bv, rm, rv, k.N, k.C, k.Hw, Momentum, Eps).Y, dy);
        var (dx, dw, db) = Ref.BackwardTraining(dy, x, w, k.N, k.C, k.Hw, Eps);
        Tol.Close(Rand.NumericGrad(v => Train(v, w, b), (double[])x.Clone()), dx, 1e-7, 1e-5, "train dx");
        Tol.Close(Rand.NumericGrad(v => Train(x, v, b), (double[])w.Clone()), dw, 1e-7, 1e-5, "train dweight");
        Tol.Close(Rand.NumericGrad(v => Train(x, w, v), (double[])b.Clone()), db, 1e-7, 1e-5, "train dbias");

        double Eval(double[] xv, double[] wv, double[] bv) =>
            Rand.Dot(Ref.ForwardEval(xv, wv, bv, rm, rv, k.N, k.C, k.Hw, Eps), dy);
        var (ex, ew, eb) = Ref.BackwardEval(dy, x, w, rm, rv, k.N, k.C, k.Hw, Eps);
        Tol.Close(Rand.NumericGrad(v => Eval(v, w, b), (double[])x.Clone()), ex, 1e-7, 1e-5, "eval dx");
        Tol.Close(Rand.NumericGrad(v => Eval(x, v, b), (double[])w.Clone()), ew, 1e-7, 1e-5, "eval dweight");
        Tol.Close(Rand.NumericGrad(v => Eval(x, w, v), (double[])b.Clone()), eb, 1e-7, 1e-5, "eval dbias");
    }

    [Theory]
    [InlineData("cpu", 1, 1, 3, 5)]
    [InlineData("cpu", 3, 5, 7, 9)]
    [InlineData("cpu", 2, 18, 15, 21)]
    [InlineData("cpu", 4, 2, 1, 1)]
    [InlineData("cuda-on-cpu", 1, 1, 3, 5)]
    [InlineData("cuda-on-cpu", 2, 3, 5, 7)]
    public void TrainingKernelsMatchReference(string dev, int n, int c, int h, int w)
    {
        var d = Devices.Get(dev);
        var k = Make(n * 1000 + c * 10 + h, n, c, h, w);
        var (ey, emean, einv, erm, erv) = Ref.ForwardTraining(Rand.D(k.X), Rand.D(k.W), Rand.D(k.B), Rand.D(k.Rm), Rand.D(k.Rv),
                                                                n, c, k.Hw, Momentum, Eps);
        var (edx, edw, edb) = Ref.BackwardTraining(Rand.D(k.Dy), Rand.D(k.X), Rand.D(k.W), n, c, k.Hw, Eps);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, k.X, n, c, h, w); var dy = Tensor.FromArray(d, k.Dy, n, c, h, w);
        var wt = Tensor.FromArray(d, k.W, c); var bt = Tensor.FromArray(d, k.B, c);
        var rm = Tensor.FromArray(d, k.Rm, c); var rv = Tensor.FromArray(d, k.Rv, c);
        var mean = Tensor.Empty(d, c); var inv = Tensor.Empty(d, c); var y = Tensor.Empty(d, n, c, h, w);
        var dx = Tensor.Empty(d, n, c, h, w); var dw = Tensor.Empty(d, c); var db = Tensor.Empty(d, c);
        BatchNorm.Stats(d, mean.Data, inv.Data, rm.Data, rv.Data, x.Data, n, c, k.Hw, (float)Momentum, (float)Eps);
        BatchNorm.Normalize(d, y.Data, x.Data, mean.Data, inv.Data, wt.Data, bt.Data, n, c, k.Hw);
        BatchNorm.Backward(d, dx.Data, dw.Data, db.Data, dy.Data, x.Data, mean.Data, inv.Data, wt.Data, n, c, k.Hw, training: true);
        Tol.Close(emean, mean.ToArray(), 1e-6, 1e-5, "mean");
        Tol.Close(einv, inv.ToArray(), 1e-6, 1e-4, "invstd");
        Tol.Close(erm, rm.ToArray(), 1e-6, 1e-5, "running_mean");
        Tol.Close(erv, rv.ToArray(), 1e-6, 1e-4, "running_var");
        Tol.Close(ey, y.ToArray(), 1e-5, 1e-4, "y");
        Tol.Close(edx, dx.ToArray(), 1e-4, 1e-3, "dx");
        Tol.Close(edw, dw.ToArray(), 1e-4, 1e-3, "dweight");
        Tol.Close(edb, db.ToArray(), 1e-4, 1e-3, "dbias");
    }

    [Theory]
    [InlineData("cpu", 2, 5, 7, 3)]
    [InlineData("cuda-on-cpu", 1, 2, 3, 5)]
    public void EvalKernelsMatchReference(string dev, int n, int c, int h, int w)
    {
        var d = Devices.Get(dev);
        var k = Make(77 + c, n, c, h, w);
        var ey = Ref.ForwardEval(Rand.D(k.X), Rand.D(k.W), Rand.D(k.B), Rand.D(k.Rm), Rand.D(k.Rv), n, c, k.Hw, Eps);
        var (edx, edw, edb) = Ref.BackwardEval(Rand.D(k.Dy), Rand.D(k.X), Rand.D(k.W), Rand.D(k.Rm), Rand.D(k.Rv), n, c, k.Hw, Eps);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, k.X, n, c, h, w); x.RequiresGrad = true;
        var wt = Tensor.FromArray(d, k.W, c); wt.RequiresGrad = true;
        var bt = Tensor.FromArray(d, k.B, c); bt.RequiresGrad = true;
        var rm = Tensor.FromArray(d, k.Rm, c); var rv = Tensor.FromArray(d, k.Rv, c);
        var y = F.BatchNorm2d(x, wt, bt, rm, rv, training: false);
        y.Backward(Tensor.FromArray(d, k.Dy, n, c, h, w));
        Tol.Close(ey, y.ToArray(), 1e-5, 1e-4, "eval y");
        Tol.Close(edx, x.Grad!.ToArray(), 1e-5, 1e-4, "eval dx");
        Tol.Close(edw, wt.Grad!.ToArray(), 1e-4, 1e-3, "eval dweight");
        Tol.Close(edb, bt.Grad!.ToArray(), 1e-4, 1e-3, "eval dbias");
        Assert.Equal(k.Rm, rm.ToArray()); // eval leaves the running statistics alone
        Assert.Equal(k.Rv, rv.ToArray());
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

    [Fact]
    public void ModuleSwitchesBetweenBatchAndRunningStatistics()
    {
        var d = Devices.Cpu;
        var k = Make(5, 2, 3, 4, 5);
        var bn = new global::Ccr.Nn.Modules.BatchNorm2d(d, 3);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(d, k.X, 2, 3, 4, 5);
        var yTrain = bn.Forward(x).ToArray();
        var (ey, _, _, erm, erv) = Ref.ForwardTraining(Rand.D(k.X), [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1], 2, 3, 20, Momentum, Eps);
        Tol.Close(ey, yTrain, 1e-5, 1e-4, "module train y");
        Tol.Close(erm, bn.RunningMean.ToArray(), 1e-6, 1e-5, "module running_mean");
        Assert.Equal(1, bn.NumBatchesTracked);
        bn.Train(false);
        var yEval = bn.Forward(x).ToArray();
        Tol.Close(Ref.ForwardEval(Rand.D(k.X), [1, 1, 1], [0, 0, 0], erm, erv, 2, 3, 20, Eps), yEval, 1e-5, 1e-4, "module eval y");
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
    }
}
