using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Optim;
using Ccr.Tests.Common;
using Xunit;

namespace Ccr.Tests.Kernels;

/// <summary>The device "all finite" flag (against double.IsFinite) and the optimiser kernels that
/// leave everything untouched while it is set.</summary>
public class FiniteCheckTests
{
    static int[] State(Tensor s) => s.ToIntArray();

    [Theory]
    [InlineData("cpu", 1)]
    [InlineData("cpu", 37)]
    [InlineData("cpu", 200_003)] // several parallel chunks and a SIMD tail
    [InlineData("cuda-on-cpu", 1)]
    [InlineData("cuda-on-cpu", 777)]
    public void FlagsTheFirstStepWithANonFiniteGradientAndStaysSet(string dev, int n)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(n);
        // positions that break indexing: first, last, a SIMD tail, the middle of a chunk
        var positions = new[] { 0, n - 1, Math.Max(0, n - 3), n / 2 }.Distinct().ToArray();
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            foreach (int at in positions)
            {
                using var scope = new TensorScope();
                var values = Rand.Floats(r, n, -3f, 3f);
                values[n / 3] = float.MaxValue; values[(2 * n) / 3] = float.Epsilon; // large and subnormal are finite
                var state = Tensor.FromArray(d, FiniteCheck.Armed(40), FiniteCheck.StateLength);
                var terms = Tensor.FromArray(d, new[] { 0.5f, 2f }, 2);
                var v = Tensor.FromArray(d, values, n);
                FiniteCheck.Check(d, state.IntData, terms.Data, v.Data);
                Assert.Equal(new[] { 0, 41, -1, -1, 0 }, State(state));

                values[at] = bad;
                v.Data.CopyFrom(values);
                Assert.Contains(values, x => !double.IsFinite(x)); // the reference verdict
                FiniteCheck.Check(d, state.IntData, terms.Data, v.Data);
                Assert.Equal(new[] { 1, 42, 41, 2, 0 }, State(state)); // step 41, term 2 = "the values"

                // later steps, good or bad in another way, change only the counter
                terms.Data.CopyFrom(new[] { float.NaN, 1f });
                FiniteCheck.Check(d, state.IntData, terms.Data, v.Data);
                values[at] = 1f;
                v.Data.CopyFrom(values);
                terms.Data.CopyFrom(new[] { 1f, 1f });
                FiniteCheck.Check(d, state.IntData, terms.Data, v.Data);
                Assert.Equal(new[] { 1, 44, 41, 2, 0 }, State(state));
            }
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda-on-cpu")]
    public void NamesTheFirstNonFiniteTermBeforeTheGradients(string dev)
    {
        var d = Devices.Get(dev);
        using var scope = new TensorScope();
        var state = Tensor.FromArray(d, FiniteCheck.Armed(0), FiniteCheck.StateLength);
        var terms = Tensor.FromArray(d, new[] { 1f, float.PositiveInfinity, float.NaN, 3f }, 4);
        var v = Tensor.FromArray(d, new[] { 1f, float.NaN, 2f }, 3);
        FiniteCheck.Check(d, state.IntData, terms.Data, v.Data);
        Assert.Equal(new[] { 1, 1, 0, 1, 0 }, State(state));
        Assert.Throws<ArgumentException>(() => FiniteCheck.Check(d, state.IntData.Slice(0, 4), terms.Data, v.Data));
    }

    [Theory]
    [InlineData("cpu", 1037)]
    [InlineData("cpu", 200_003)]
    [InlineData("cuda-on-cpu", 333)]
    public void OptimisersLeaveEverythingUntouchedWhileTheFlagIsSet(string dev, int n)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(n + 5);
        using var scope = new TensorScope();
        var p = Rand.Floats(r, n); var m = Rand.Floats(r, n); var v = Rand.Floats(r, n, 0f, 1f); var g = Rand.Floats(r, n);
        var tp = Tensor.FromArray(d, p, n); var tm = Tensor.FromArray(d, m, n); var tv = Tensor.FromArray(d, v, n);
        var tg = Tensor.FromArray(d, g, n);
        var up = Tensor.FromArray(d, new[] { 1 }, 1); var down = Tensor.FromArray(d, new[] { 0 }, 1);

        Optimizers.Adam(d, tp.Data, tm.Data, tv.Data, tg.Data, 3, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, false, up.IntData);
        Optimizers.Sgd(d, tp.Data, tm.Data, tg.Data, 0.1f, 0.9f, 0f, 1e-2f, false, false, up.IntData);
        Assert.Equal(p, tp.ToArray());
        Assert.Equal(m, tm.ToArray());
        Assert.Equal(v, tv.ToArray());

        // a clear flag gives exactly the step without one
        var q = Tensor.FromArray(d, p, n); var qm = Tensor.FromArray(d, m, n); var qv = Tensor.FromArray(d, v, n);
        Optimizers.Adam(d, tp.Data, tm.Data, tv.Data, tg.Data, 3, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, false, down.IntData);
        Optimizers.Adam(d, q.Data, qm.Data, qv.Data, tg.Data, 3, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, false);
        Assert.NotEqual(p, tp.ToArray());
        Assert.Equal(q.ToArray(), tp.ToArray());
        Assert.Equal(qv.ToArray(), tv.ToArray());
        Optimizers.Sgd(d, tp.Data, tm.Data, tg.Data, 0.1f, 0.9f, 0f, 1e-2f, false, false, down.IntData);
        Optimizers.Sgd(d, q.Data, qm.Data, tg.Data, 0.1f, 0.9f, 0f, 1e-2f, false, false);
        Assert.Equal(q.ToArray(), tp.ToArray());
        Assert.Equal(qm.ToArray(), tm.ToArray());
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda-on-cpu")]
    public void GuardedOptimiserKeepsTheWeightsFromBeforeTheFirstBadStep(string dev)
    {
        var d = Devices.Get(dev);
        var r = Rand.New(77);
        using var scope = new TensorScope();
        var w = Tensor.FromArray(d, Rand.Floats(r, 20), 4, 5); w.RequiresGrad = true; w.Name = "w";
        using var arena = new ParameterArena([w]);
        using var guard = new FiniteGuard(d, 2);
        using var opt = new Adam(arena, 1e-2f) { Guard = guard };
        guard.Arm(10);
        var loss = Tensor.FromArray(d, new[] { 0.25f }, 1); var total = Tensor.FromArray(d, new[] { 0.5f }, 1);

        arena.Grads.Data.CopyFrom(Rand.Floats(r, 20));
        guard.Record([loss, total], arena.Grads);
        opt.Update();
        var good = arena.Values.ToArray();
        var s = guard.Read();
        Assert.False(s.Tripped);
        Assert.Equal(new[] { 0.25f, 0.5f }, s.Terms);

        var grads = Rand.Floats(r, 20); grads[7] = float.NaN;
        arena.Grads.Data.CopyFrom(grads);
        guard.Record([loss, total], arena.Grads);
        opt.Update();
        arena.Grads.Data.CopyFrom(Rand.Floats(r, 20)); // a good step after a bad one is skipped too
        guard.Record([loss, total], arena.Grads);
        opt.Update();
        Assert.Equal(good, arena.Values.ToArray());
        s = guard.Read();
        Assert.True(s.Tripped);
        Assert.Equal(11, s.FirstBadStep);
        Assert.Equal(2, s.FirstBadTerm); // = TermCount: the gradients

        guard.Arm(20);
        guard.Record([loss, total], arena.Grads);
        opt.Update();
        Assert.False(guard.Read().Tripped);
        Assert.NotEqual(good, arena.Values.ToArray());
    }
}
