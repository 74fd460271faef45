using Ccr.Kernels.Ops;
using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// The per-step divergence check (FiniteCheck: scan of the gradient arena + commit) beside the Adam
/// step it guards, at HRNet-W18-small-v2's size (4.8M parameters with the FPN heads): the check
/// reads 4 bytes per parameter, Adam 28. Both end with a synchronisation here only to be timed.
/// </summary>
public class FiniteCheckBenchmarks
{
    [Params(4_800_000)]
    public int Parameters;

    Device _d = null!;
    Tensor _p = null!, _g = null!, _m = null!, _v = null!, _terms = null!, _state = null!;
    long _step;

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: true);
        var r = new Rng(1);
        var g = new float[Parameters];
        for (int i = 0; i < g.Length; i++) g[i] = r.Uniform(-1f, 1f);
        _p = Tensor.FromArray(_d, g, Parameters);
        _g = Tensor.FromArray(_d, g, Parameters);
        _m = Tensor.Zeros(_d, Parameters);
        _v = Tensor.Zeros(_d, Parameters);
        _terms = Tensor.Full(_d, 1f, 5);
        _state = Tensor.FromArray(_d, FiniteCheck.Armed(0), FiniteCheck.StateLength);
        _d.Synchronize();
    }

    [Benchmark]
    public void Check()
    {
        FiniteCheck.Check(_d, _state.IntData, _terms.Data, _g.Data);
        _d.Synchronize();
    }

    [Benchmark(Baseline = true)]
    public void AdamStep()
    {
        Optimizers.Adam(_d, _p.Data, _m.Data, _v.Data, _g.Data, ++_step, 1e-4f, 0.9f, 0.999f, 1e-8f, 1e-4f, false, _state.IntData);
        _d.Synchronize();
    }
}
