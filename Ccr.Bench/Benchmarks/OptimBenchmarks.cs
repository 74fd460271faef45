using Ccr.Kernels.Ops;
using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// The fused optimiser step over a flat arena (one launch), and the task losses at the paper's
/// batch / crop (4 x 40 classes x 120 x 160 logits, HRNet's 1/4 resolution of NYUD's crops).
/// Adam reads p, g, m, v and writes p, m, v: 28 bytes per parameter; GB/s is printed at cleanup.
/// </summary>
public class OptimBenchmarks
{
    [Params(4_000_000)]
    public int Parameters;

    Device _d = null!;
    Tensor _p = null!, _g = null!, _m = null!, _v = null!;
    Tensor _logits = null!, _labels = null!, _dlogits = null!, _stats = null!, _one = null!;
    long _step;
    double _adamSeconds; long _adamCalls;

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: true);
        var r = new Rng(1);
        _p = Tensor.FromArray(_d, Floats(r, Parameters), Parameters);
        _g = Tensor.FromArray(_d, Floats(r, Parameters), Parameters);
        _m = Tensor.Zeros(_d, Parameters);
        _v = Tensor.Zeros(_d, Parameters);
        const int N = 4, C = 40, H = 120, W = 160;
        _logits = Tensor.FromArray(_d, Floats(r, (long)N * C * H * W), N, C, H, W);
        var labels = new int[N * H * W];
        for (int i = 0; i < labels.Length; i++) labels[i] = r.NextInt(10) == 0 ? 255 : r.NextInt(C);
        _labels = Tensor.FromLabels(_d, labels, C, [N, H, W]);
        _dlogits = Tensor.Empty(_d, N, C, H, W);
        _stats = Tensor.Empty(_d, 2);
        _one = Tensor.Full(_d, 1f, 1);
        _d.Synchronize();
    }

    static float[] Floats(Rng r, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = r.Uniform(-1f, 1f);
        return a;
    }

    [Benchmark]
    public void AdamStep()
    {
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Optimizers.Adam(_d, _p.Data, _m.Data, _v.Data, _g.Data, ++_step, 1e-4f, 0.9f, 0.999f, 1e-8f, 1e-4f, false);
        _d.Synchronize();
        _adamSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        _adamCalls++;
    }

    [Benchmark]
    public void CrossEntropyForwardBackward()
    {
        const int N = 4, C = 40, HW = 120 * 160;
        Losses.CrossEntropy(_d, _stats.Data, _logits.Data, _labels.IntData, _stats.Data, false, 255, N, C, HW);
        Losses.CrossEntropyBackward(_d, _dlogits.Data, _one.Data, _stats.Data, _logits.Data, _labels.IntData, _stats.Data, false, 255, N, C, HW);
        _d.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_adamCalls > 0)
        {
            double s = _adamSeconds / _adamCalls;
            Console.WriteLine($"// Adam step over {Parameters:N0} parameters: {s * 1e3:F3} ms, {28.0 * Parameters / s / 1e9:F1} GB/s ({_d})");
        }
        foreach (var t in new[] { _p, _g, _m, _v, _logits, _labels, _dlogits, _stats, _one }) t?.Dispose();
        _d.Dispose();
    }
}
