using Ccr.Kernels.Ops;
using System.Text.Json;
using Ccr.Nn;
using Ccr.Nn.Optim;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

public class OptimizerTests
{
    // ---------------------------------------------------------------- kernels against the float64 reference

    [Theory]
    [InlineData("cpu", 1)]
    [InlineData("cpu", 1037)]
    [InlineData("cpu", 200_003)] // several parallel chunks and a SIMD tail
    [InlineData("cuda-on-cpu", 1)]
    [InlineData("cuda-on-cpu", 777)]
    public void AdamAndAdamWMatchReferenceOverSeveralSteps(string dev, int n)
    {
        var d = Devices.Get(dev);
        foreach (bool decoupled in new[] { false, true })
        {
            var r = Rand.New(n + (decoupled ? 1 : 0));
            var p = Rand.Floats(r, n);
            double[] rp = Rand.D(p), rm = new double[n], rv = new double[n];
            using var scope = new TensorScope();
            var tp = Tensor.FromArray(d, p, n); var tm = Tensor.Zeros(d, n); var tv = Tensor.Zeros(d, n);
            var tg = Tensor.Empty(d, n);
            for (int step = 1; step <= 4; step++)
            {
                var g = Rand.Floats(r, n, -2f, 2f);
                tg.Data.CopyFrom(g);
                float lr = 1e-2f / step;
                Optimizers.Adam(d, tp.Data, tm.Data, tv.Data, tg.Data, step, lr, 0.9f, 0.999f, 1e-8f, 0.05f, decoupled);
                Optimizers.Reference.Adam(rp, rm, rv, Rand.D(g), step, lr, 0.9, 0.999, 1e-8, 0.05, decoupled);
            }
            string what = decoupled ? "AdamW" : "Adam";
            Tol.Close(rp, tp.ToArray(), 1e-6, 1e-5, what + " parameters");
            Tol.Close(rm, tm.ToArray(), 1e-6, 1e-5, what + " exp_avg");
            Tol.Close(rv, tv.ToArray(), 1e-7, 1e-5, what + " exp_avg_sq");
        }
    }

    [Theory]
    [InlineData("cpu", 1037, false)]
    [InlineData("cpu", 200_003, true)]
    [InlineData("cuda-on-cpu", 333, false)]
    [InlineData("cuda-on-cpu", 333, true)]
    public void SgdMatchesReferenceOverSeveralSteps(string dev, int n, bool nesterov)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(n * 3 + (nesterov ? 1 : 0));
        var p = Rand.Floats(r, n);
        double[] rp = Rand.D(p), rb = new double[n];
        using var scope = new TensorScope();
        var tp = Tensor.FromArray(d, p, n); var tb = Tensor.Full(d, float.NaN, n); // the first step must not read buf
        var tg = Tensor.Empty(d, n);
        float damp = nesterov ? 0f : 0.1f;
        for (int step = 1; step <= 4; step++)
        {
            var g = Rand.Floats(r, n, -2f, 2f);
            tg.Data.CopyFrom(g);
            Optimizers.Sgd(d, tp.Data, tb.Data, tg.Data, 0.1f, 0.9f, damp, 1e-2f, nesterov, step == 1);
            Optimizers.Reference.Sgd(rp, rb, Rand.D(g), 0.1, 0.9, damp, 1e-2, nesterov, step == 1);
        }
        Tol.Close(rp, tp.ToArray(), 1e-6, 1e-5, "SGD parameters");
        Tol.Close(rb, tb.ToArray(), 1e-6, 1e-5, "SGD momentum buffer");
    }

    [Fact]
    public void MismatchedLengthsAndBadStepAreRejected()
    {
        var d = Devices.Cpu;
        using var scope = new TensorScope();
        var a = Tensor.Zeros(d, 5); var b = Tensor.Zeros(d, 6);
        var e = Assert.Throws<ArgumentException>(() => Optimizers.Adam(d, a.Data, a.Data, b.Data, a.Data, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, false));
        Assert.Contains("5 and 6", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizers.Adam(d, a.Data, a.Data, a.Data, a.Data, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, false));
    }

    // ---------------------------------------------------------------- PyTorch goldens through the optimiser classes

    [Theory]
    [InlineData("cpu", "adam")]
    [InlineData("cpu", "adamw")]
    [InlineData("cpu", "sgd")]
    [InlineData("cpu", "sgd_nesterov")]
    [InlineData("cuda-on-cpu", "adam")]
    [InlineData("cuda-on-cpu", "sgd")]
    public void OptimisersMatchTorchOptimOverFiveSteps(string dev, string which)
    {
        var d = Devices.Get(dev);
        var f = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "loss", "optim.json"))).RootElement;
        var p0 = LossTests.Floats(f.GetProperty("p0"));
        var grads = f.GetProperty("grads").EnumerateArray().Select(LossTests.Floats).ToArray();
        var traj = f.GetProperty(which).EnumerateArray().Select(LossTests.Doubles).ToArray();
        // two parameters (3 + 4 elements) in one arena: the optimiser sees one flat vector
        using var scope = new TensorScope();
        var a = Tensor.FromArray(d, p0[..3], 3); a.RequiresGrad = true; a.Name = "a";
        var b = Tensor.FromArray(d, p0[3..], 2, 2); b.RequiresGrad = true; b.Name = "b";
        using var arena = new ParameterArena([a, b]);
        using Optimizer opt = which switch
        {
            "adam" => new Adam(arena, 1e-2f, 0.9f, 0.999f, 1e-8f, weightDecay: 0.1f),
            "adamw" => new AdamW(arena, 1e-2f, 0.8f, 0.99f, 1e-6f, weightDecay: 0.1f),
            "sgd" => new Sgd(arena, 0.1f, momentum: 0.9f, weightDecay: 1e-2f),
            _ => new Sgd(arena, 0.05f, momentum: 0.8f, weightDecay: 1e-3f, nesterov: true),
        };
        for (int s = 0; s < grads.Length; s++)
        {
            arena.Grads.Data.CopyFrom(grads[s]);
            opt.Update();
            Assert.Equal(s + 1, opt.Step);
            Tol.Close(traj[s], arena.Values.ToArray(), 1e-6, 1e-5, $"{which} step {s + 1}");
        }
        Tol.Close(traj[^1].AsSpan(3), b.ToArray(), 1e-6, 1e-5, "parameter b sees the arena's values");
    }

    [Fact]
    public void StateRoundTripContinuesTheSameTrajectory()
    {
        var d = Devices.Cpu;
        var r = Rand.New(11);
        int n = 50;
        var p0 = Rand.Floats(r, n);
        var grads = Enumerable.Range(0, 6).Select(_ => Rand.Floats(r, n)).ToArray();
        using var scope = new TensorScope();

        float[] Run(bool reload)
        {
            var w = Tensor.FromArray(d, p0, n); w.RequiresGrad = true;
            using var arena = new ParameterArena([w]);
            var opt = new Adam(arena, 1e-2f, weightDecay: 0.01f);
            for (int s = 0; s < 3; s++) { arena.Grads.Data.CopyFrom(grads[s]); opt.Update(); }
            if (reload)
            {
                var saved = opt.StateTensors().ToDictionary(t => t.Name, t => t.Value.ToArray());
                long step = opt.Step;
                var values = arena.Values.ToArray();
                opt.Dispose();
                opt = new Adam(arena, 1e-2f, weightDecay: 0.01f);
                arena.Values.Data.CopyFrom(values);
                opt.LoadState(step, saved);
                Assert.Equal(3, opt.Step);
            }
            for (int s = 3; s < 6; s++) { arena.Grads.Data.CopyFrom(grads[s]); opt.Update(); }
            var result = arena.Values.ToArray();
            opt.Dispose();
            return result;
        }

        Assert.Equal(Run(false), Run(true));
        var w2 = Tensor.FromArray(d, p0, n); w2.RequiresGrad = true;
        using var arena2 = new ParameterArena([w2]);
        using var sgd = new Sgd(arena2, 0.1f, momentum: 0.9f);
        Assert.Equal("momentum_buffer", Assert.Single(sgd.StateTensors()).Name);
        Assert.Throws<ArgumentException>(() => sgd.LoadState(1, new Dictionary<string, float[]> { ["momentum_buffer"] = new float[n - 1] }));
        Assert.Throws<ArgumentException>(() => sgd.LoadState(1, new Dictionary<string, float[]> { ["exp_avg"] = new float[n] }));
    }

    // ---------------------------------------------------------------- LR schedules

    [Fact]
    public void PolyScheduleWithWarmup()
    {
        var s = LrSchedule.Poly(0.01, maxIterations: 1000, warmup: 100);
        Tol.Close(0.01 * 1 / 100 * Math.Pow(1 - 0.0 / 1000, 0.9), s.At(0), 0, 1e-12, "first warm-up iteration");
        Tol.Close(0.01 * 50 / 100 * Math.Pow(1 - 49.0 / 1000, 0.9), s.At(49), 0, 1e-12, "mid warm-up");
        Tol.Close(0.01 * Math.Pow(1 - 100.0 / 1000, 0.9), s.At(100), 0, 1e-12, "after warm-up");
        Tol.Close(0.01 * Math.Pow(1 - 999.0 / 1000, 0.9), s.At(999), 0, 1e-12, "last iteration");
        Assert.Equal(0.0, s.At(1000));
        Assert.Equal(0.0, s.At(5000));
        Assert.True(Math.Abs(s.At(100) - s.At(99)) < 0.01 * 0.002, "continuous where warm-up ends");
        for (long it = 100; it < 1000; it += 37) Assert.True(s.At(it + 1) < s.At(it), "poly decays");
        Assert.Equal(0.02, LrSchedule.Constant(0.02).At(123456));
        Tol.Close(0.02 * 3 / 10, LrSchedule.Constant(0.02, warmup: 10).At(2), 0, 1e-12, "constant with warm-up");
        Assert.Throws<ArgumentOutOfRangeException>(() => s.At(-1));
    }
}
