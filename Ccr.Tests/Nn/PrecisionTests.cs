using Ccr.Bench.Report;
using Ccr.Kernels;
using Ccr.Kernels.Ops;
using Ccr.Nn;
using Ccr.Nn.Functional;
using Ccr.Nn.Modules;
using Ccr.Tests.Common;
using Ccr.Tests.Train;
using Ccr.Training;
using Xunit;

namespace Ccr.Tests.Nn;

/// <summary>
/// Precision is an argument of the ops that run GEMMs, carried by the modules that call them:
/// Module.To(precision) sets it on every Conv2d of a model, F.Conv2d / F.MatMul pass it to the
/// kernels, and a training session sets train.precision on its whole model (backbone, decoders,
/// CCR's projectors). Seen without a GPU through the kernels the CUDA variant launches (fp32 and
/// TF32 GEMMs are different kernels), and the tile plan sees the device's multiprocessors.
/// </summary>
public class PrecisionTests
{
    static Device D => Devices.CudaOnCpu;

    /// <summary>The GEMM kernels <paramref name="body"/> launches (the split-K sum aside).</summary>
    static List<string> GemmKernels(Action body)
    {
        using var rec = D.Launches.Record();
        body();
        return rec.Launches.Select(l => l.Kernel).Where(k => k.StartsWith("ImplicitGemm.") && !k.Contains("SplitSum")).Distinct().ToList();
    }

    static IEnumerable<Conv2d> Convs(Module m) =>
        (m is Conv2d c ? [c] : Enumerable.Empty<Conv2d>()).Concat(m.Children().SelectMany(ch => Convs(ch.Module)));

    [Fact]
    public void ModuleToSetsEveryConvAndItsGemmsRunAtThatPrecision()
    {
        var rng = new Rng(3);
        var net = new Sequential(new Conv2d(D, rng, 3, 8, 3, padding: 1), new Sequential(new Conv2d(D, rng, 8, 4, 1)));
        var x0 = Rand.Floats(Rand.New(5), 2 * 3 * 6 * 6);
        void Step()
        {
            using var scope = new TensorScope();
            var x = Tensor.FromArray(D, x0, 2, 3, 6, 6);
            x.RequiresGrad = true; // the input gradient's GEMM too
            F.Sum(net.Forward(x)).Backward();
        }
        try
        {
            Assert.All(Convs(net), c => Assert.Equal(MathPrecision.Fp32, c.Precision)); // the default
            Assert.Equal(["ImplicitGemm.Fp32Kernel"], GemmKernels(Step));
            Assert.Same(net, net.To(MathPrecision.Tf32));
            Assert.Equal(2, Convs(net).Count());
            Assert.All(Convs(net), c => Assert.Equal(MathPrecision.Tf32, c.Precision));
            Assert.Equal(["ImplicitGemm.Tf32Kernel"], GemmKernels(Step));
            net.To(MathPrecision.Fp32);
            Assert.Equal(["ImplicitGemm.Fp32Kernel"], GemmKernels(Step));
        }
        finally { net.DisposeTensors(); }
    }

    [Theory]
    [InlineData(MathPrecision.Fp32, "ImplicitGemm.Fp32Kernel")]
    [InlineData(MathPrecision.Tf32, "ImplicitGemm.Tf32Kernel")]
    public void MatMulRunsItsThreeGemmsAtTheGivenPrecision(MathPrecision p, string kernel)
    {
        using var scope = new TensorScope();
        var r = Rand.New(7);
        var a = Tensor.FromArray(D, Rand.Floats(r, 6 * 5), 6, 5); a.RequiresGrad = true;
        var b = Tensor.FromArray(D, Rand.Floats(r, 5 * 4), 5, 4); b.RequiresGrad = true;
        using var rec = D.Launches.Record();
        F.Sum(F.MatMul(a, b, p)).Backward();
        var gemms = rec.Launches.Where(l => l.Kernel.StartsWith("ImplicitGemm.") && !l.Kernel.Contains("SplitSum")).Select(l => l.Kernel).ToList();
        Assert.Equal([kernel, kernel, kernel], gemms); // forward, da, db
    }

    [Theory]
    [InlineData("fp32", MathPrecision.Fp32, "ImplicitGemm.Fp32Kernel")]
    [InlineData("tf32", MathPrecision.Tf32, "ImplicitGemm.Tf32Kernel")]
    public void ASessionRunsEveryConvOfItsStepAtTheConfiguredPrecision(string configured, MathPrecision p, string kernel)
    {
        string root = Path.Combine(Path.GetTempPath(), "ccr-precision-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cfg = SteadyStepTests.Tiny(root, "tasks=[semseg,depth]", "ccr.enabled=true", $"train.precision={configured}");
            using (var s = new TrainSession(cfg, D))
            {
                Assert.Equal(p, s.ComputePrecision);
                Assert.NotNull(s.CcrLoss);
                Assert.NotEmpty(Convs(s.CcrLoss!)); // the projectors' convs are covered too
                Assert.All(Convs(s.Root), c => Assert.Equal(p, c.Precision));
            }
            var rows = LaunchCount.Count(D, cfg, Path.Combine(root, "count"), steps: 1, id: "tiny");
            var gemms = rows[0].PerKernel.Select(k => k.Kernel).Where(k => k.StartsWith("ImplicitGemm.") && !k.Contains("SplitSum")).ToList();
            Assert.Equal([kernel], gemms);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void TheTilePlanSeesTheDevicesMultiprocessors()
    {
        // dw of a 64-channel 3x3 conv on one 64x64 image: few output tiles, a long K (4,096 pixels)
        var g = ConvGeom.From([1, 64, 64, 64], [64, 64, 3, 3], null, 1, 1, 1);
        using var h100 = Device.CreateCpu(KernelVariant.Cuda, planMultiprocessors: 132);
        Assert.Equal(132, h100.Multiprocessors);
        Assert.Equal(D.Accelerator.NumMultiprocessors, D.Multiprocessors); // the accelerator's, unless told
        var (m, n, k) = Convolution.GemmShape(g, Convolution.Pass.WeightGrad);
        foreach (var p in new[] { MathPrecision.Fp32, MathPrecision.Tf32 })
        {
            var planned = Convolution.Plan(h100, g, Convolution.Pass.WeightGrad, p);
            Assert.Equal(GemmTiles.Choose(m, n, k, 1, p, 132), planned);
            Assert.True(planned.Splits > Convolution.Plan(D, g, Convolution.Pass.WeightGrad, p).Splits, $"{p}: {planned} for 132 SMs");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Device.CreateCpu(KernelVariant.Cuda, planMultiprocessors: 0));
    }
}
