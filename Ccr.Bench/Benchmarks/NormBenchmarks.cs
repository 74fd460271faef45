using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// Batch norm training forward + backward (the three kernels a BN layer runs per step), plus
/// bilinear upsampling and L2 normalisation, on the default device. Effective bandwidth counts the
/// minimal traffic: BN forward reads x three times and writes y, backward reads dy and x twice and
/// writes dx (9 float passes); printed in GB/s at cleanup from a separate timed loop.
/// </summary>
public class NormBenchmarks
{
    [Params("4x18x120x160", "4x144x15x20")]
    public string Shape { get; set; } = "4x18x120x160";

    Device _d = null!;
    Tensor _x = null!, _dy = null!, _y = null!, _dx = null!, _w = null!, _b = null!, _rm = null!, _rv = null!;
    Tensor _mean = null!, _inv = null!, _dw = null!, _db = null!, _up = null!, _small = null!;
    int _n, _c, _h, _wd;

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: false);
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (_n, _c, _h, _wd) = (s[0], s[1], s[2], s[3]);
        var r = new Rng(1);
        long len = (long)_n * _c * _h * _wd;
        Tensor T(long count, params int[] shape) { var a = new float[count]; for (long i = 0; i < count; i++) a[i] = r.Uniform(-1, 1); return Tensor.FromArray(_d, a, shape); }
        _x = T(len, _n, _c, _h, _wd); _dy = T(len, _n, _c, _h, _wd);
        _y = Tensor.Empty(_d, _n, _c, _h, _wd); _dx = Tensor.Empty(_d, _n, _c, _h, _wd);
        _w = Tensor.Full(_d, 1f, _c); _b = Tensor.Zeros(_d, _c); _rm = Tensor.Zeros(_d, _c); _rv = Tensor.Full(_d, 1f, _c);
        _mean = Tensor.Empty(_d, _c); _inv = Tensor.Empty(_d, _c); _dw = Tensor.Empty(_d, _c); _db = Tensor.Empty(_d, _c);
        _small = T((long)_n * _c * (_h / 4) * (_wd / 4), _n, _c, _h / 4, _wd / 4); _up = Tensor.Empty(_d, _n, _c, _h, _wd);
    }

    [Benchmark]
    public void BatchNormForwardBackward()
    {
        int hw = _h * _wd;
        BatchNorm.Stats(_d, _mean.Data, _inv.Data, _rm.Data, _rv.Data, _x.Data, _n, _c, hw, 0.1f, 1e-5f);
        BatchNorm.Normalize(_d, _y.Data, _x.Data, _mean.Data, _inv.Data, _w.Data, _b.Data, _n, _c, hw);
        BatchNorm.Backward(_d, _dx.Data, _dw.Data, _db.Data, _dy.Data, _x.Data, _mean.Data, _inv.Data, _w.Data, _n, _c, hw, true);
        _d.Synchronize();
    }

    [Benchmark]
    public void BilinearUp4Forward()
    {
        Resize.Bilinear(_d, _up.Data, _small.Data, _n * _c, _h / 4, _wd / 4, _h, _wd);
        _d.Synchronize();
    }

    [Benchmark]
    public void L2NormalizeForward()
    {
        ShapeOps.L2Normalize(_d, _y.Data, _dx.Data.Slice(0, (long)_n * _h * _wd), _x.Data, _n, _c, _h * _wd, 1e-12f);
        _d.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        BatchNormForwardBackward();
        // Min and median of single runs: the minimum is robust to other load on the machine.
        var times = new double[30];
        for (int i = 0; i < times.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            BatchNormForwardBackward();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        double gb = 9.0 * _x.Numel * 4 / 1e9;
        Console.WriteLine($"// batch norm fwd+bwd {Shape} on {_d.Accelerator.Name}: min {times[0]:F3} ms " +
                          $"({gb / (times[0] / 1e3):F1} GB/s effective), median {times[times.Length / 2]:F3} ms");
        _d.Dispose();
    }
}
