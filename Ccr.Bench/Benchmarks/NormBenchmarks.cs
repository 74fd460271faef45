using Ccr.Kernels.Ops;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Ccr.Nn;
using ILGPU.Runtime;
using Device = Ccr.Kernels.Device;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// The memory-bound kernels at the paper's shapes (batch 4; HRNet-W18's 18-144 channels from 120x160
/// down to 15x20 on 480x640 inputs; the decoders' 128 and 256 channels at 120x160), beside a
/// device-to-device copy of the same tensor, so the "GB/s" and "% copy" columns say how close each
/// kernel comes to the card's own copy bandwidth (target: 70%). GB/s counts each kernel's
/// compulsory traffic (every pass's reads and writes of whole tensors; <see cref="Bytes"/>), so it
/// is an effective figure: a kernel that reads a tensor twice is charged twice.
/// Shapes: <c>CCR_BENCH_SHAPES=4x18x120x160,4x144x15x20</c> narrows the list (a CPU run).
/// Every benchmark synchronises the device, so it times the kernels, not their queueing.
/// </summary>
[Config(typeof(BandwidthConfig))]
public class NormBenchmarks
{
    public static IEnumerable<string> Shapes =>
        Environment.GetEnvironmentVariable("CCR_BENCH_SHAPES")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        ?? ["4x18x120x160", "4x36x60x80", "4x72x30x40", "4x144x15x20", "4x128x120x160", "4x256x120x160"];

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "4x18x120x160";

    Device _d = null!;
    Tensor _x = null!, _r = null!, _dy = null!, _y = null!, _y2 = null!, _dx = null!, _dr = null!;
    Tensor _w = null!, _b = null!, _rm = null!, _rv = null!, _mean = null!, _inv = null!, _dw = null!, _db = null!;
    Tensor _half = null!, _dhalf = null!, _norm = null!, _one = null!;
    int _n, _c, _h, _wd;
    int Hw => _h * _wd;

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: false);
        (_n, _c, _h, _wd) = Parse(Shape);
        var r = new Rng(1);
        long len = (long)_n * _c * Hw;
        Tensor T(long count, params int[] shape)
        {
            var a = new float[count];
            for (long i = 0; i < count; i++) a[i] = r.Uniform(-1, 1);
            return Tensor.FromArray(_d, a, shape);
        }
        _x = T(len, _n, _c, _h, _wd); _r = T(len, _n, _c, _h, _wd); _dy = T(len, _n, _c, _h, _wd);
        _y = Tensor.Empty(_d, _n, _c, _h, _wd); _y2 = Tensor.Empty(_d, _n, _c, _h, _wd);
        _dx = Tensor.Empty(_d, _n, _c, _h, _wd); _dr = Tensor.Empty(_d, _n, _c, _h, _wd);
        _w = Tensor.Full(_d, 1f, _c); _b = Tensor.Zeros(_d, _c); _rm = Tensor.Zeros(_d, _c); _rv = Tensor.Full(_d, 1f, _c);
        _mean = Tensor.Empty(_d, _c); _inv = Tensor.Empty(_d, _c); _dw = Tensor.Empty(_d, _c); _db = Tensor.Empty(_d, _c);
        _half = T((long)_n * _c * (_h / 2) * (_wd / 2), _n, _c, _h / 2, _wd / 2); _dhalf = Tensor.Empty(_d, _n, _c, _h / 2, _wd / 2);
        _norm = Tensor.Empty(_d, _n, _h, _wd); _one = Tensor.Empty(_d, 1);
        // the saved statistics and forward output the backward benchmarks read
        Fwd(_y, true, false);
        _d.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup() => _d.Dispose();

    static (int, int, int, int) Parse(string s)
    {
        var p = s.Split('x').Select(int.Parse).ToArray();
        return (p[0], p[1], p[2], p[3]);
    }

    // ---------------------------------------------------------------- the copy baseline

    /// <summary>Driver copy of one tensor into another (cuMemcpy device to device on a GPU).</summary>
    [Benchmark(Baseline = true)]
    public void DeviceCopy() { var dst = _y2.Data.View; _x.Data.View.CopyTo(_d.Stream, in dst); _d.Synchronize(); }

    /// <summary>Our own copy kernel (Axpby with beta 0: y = x): what a grid-stride kernel reaches.</summary>
    [Benchmark]
    public void CopyKernel() { Elementwise.Axpby(_d, _y2.Data, _x.Data, 1f, 0f); _d.Synchronize(); }

    // ---------------------------------------------------------------- elementwise

    [Benchmark] public void Relu() { Elementwise.Relu(_d, _y2.Data, _x.Data); _d.Synchronize(); }
    [Benchmark] public void ReluBackward() { Elementwise.ReluBackward(_d, _dx.Data, _dy.Data, _y.Data); _d.Synchronize(); }
    [Benchmark] public void Add() { Elementwise.Add(_d, _y2.Data, _x.Data, _r.Data); _d.Synchronize(); }
    [Benchmark] public void AddRelu() { Elementwise.AddRelu(_d, _y2.Data, _x.Data, _r.Data); _d.Synchronize(); }

    // ---------------------------------------------------------------- batch norm (training)

    [Benchmark] public void BnForward() { Fwd(_y2, false, false); _d.Synchronize(); }
    [Benchmark] public void BnReluForward() { Fwd(_y2, true, false); _d.Synchronize(); }
    [Benchmark] public void BnAddReluForward() { Fwd(_y2, true, true); _d.Synchronize(); }

    /// <summary>The same as <see cref="BnAddReluForward"/> unfused: BN, then add, then ReLU.</summary>
    [Benchmark]
    public void BnAddReluForwardUnfused()
    {
        Fwd(_y2, false, false);
        Elementwise.Add(_d, _y2.Data, _y2.Data, _r.Data);
        Elementwise.Relu(_d, _y2.Data, _y2.Data);
        _d.Synchronize();
    }

    [Benchmark] public void BnReluBackward() { Bwd(true, false); _d.Synchronize(); }
    [Benchmark] public void BnAddReluBackward() { Bwd(true, true); _d.Synchronize(); }

    /// <summary>The same as <see cref="BnAddReluBackward"/> unfused: ReLU backward, the add's two
    /// gradients (a copy for the residual), BN backward.</summary>
    [Benchmark]
    public void BnAddReluBackwardUnfused()
    {
        Elementwise.ReluBackward(_d, _dr.Data, _dy.Data, _y.Data);
        Elementwise.Axpby(_d, _y2.Data, _dr.Data, 1f, 0f);
        BatchNorm.Backward(_d, _dx.Data, null, _dw.Data, _db.Data, _y2.Data, _y.Data, _x.Data, _mean.Data, _inv.Data, _w.Data,
                           _n, _c, Hw, training: true, relu: false);
        _d.Synchronize();
    }

    /// <summary>Plain BN forward + backward (the figure PERFORMANCE.md tracked before fusion).</summary>
    [Benchmark]
    public void BnForwardBackward()
    {
        Fwd(_y2, false, false);
        BatchNorm.Backward(_d, _dx.Data, null, _dw.Data, _db.Data, _dy.Data, _x.Data, _x.Data, _mean.Data, _inv.Data, _w.Data,
                           _n, _c, Hw, training: true, relu: false);
        _d.Synchronize();
    }

    void Fwd(Tensor y, bool relu, bool res) =>
        BatchNorm.Forward(_d, y.Data, _mean.Data, _inv.Data, _rm.Data, _rv.Data, _x.Data, res ? _r.Data : null, _w.Data, _b.Data,
                          _n, _c, Hw, true, 0.1f, 1e-5f, relu);

    void Bwd(bool relu, bool res) =>
        BatchNorm.Backward(_d, _dx.Data, res ? _dr.Data : null, _dw.Data, _db.Data, _dy.Data, _y.Data, _x.Data, _mean.Data,
                           _inv.Data, _w.Data, _n, _c, Hw, true, relu);

    // ---------------------------------------------------------------- resize (2x up, as the decoders), reductions

    [Benchmark] public void BilinearUp2() { Resize.Bilinear(_d, _y2.Data, _half.Data, _n * _c, _h / 2, _wd / 2, _h, _wd); _d.Synchronize(); }
    [Benchmark] public void BilinearUp2Backward() { Resize.BilinearBackward(_d, _dhalf.Data, _dy.Data, _n * _c, _h / 2, _wd / 2, _h, _wd); _d.Synchronize(); }
    [Benchmark] public void NearestUp2() { Resize.Nearest(_d, _y2.Data, _half.Data, _n * _c, _h / 2, _wd / 2, _h, _wd); _d.Synchronize(); }
    [Benchmark] public void NearestUp2Backward() { Resize.NearestBackward(_d, _dhalf.Data, _dy.Data, _n * _c, _h / 2, _wd / 2, _h, _wd); _d.Synchronize(); }
    [Benchmark] public void SumPerChannel() { Reductions.SumPerChannel(_d, _db.Data, _dy.Data, _n, _c, Hw); _d.Synchronize(); }
    [Benchmark] public void Sum() { Reductions.Sum(_d, _one.Data, _dy.Data); _d.Synchronize(); }
    [Benchmark] public void L2Normalize() { ShapeOps.L2Normalize(_d, _y2.Data, _norm.Data, _x.Data, _n, _c, Hw, 1e-12f); _d.Synchronize(); }

    /// <summary>Compulsory bytes moved by one call of <paramref name="method"/> on an (n, c, h, w)
    /// tensor (whole-tensor passes; per-channel vectors and partials ignored; the resizes move the
    /// full-size tensor and the (h/2, w/2) one).</summary>
    public static double Bytes(string method, int n, int c, int h, int w)
    {
        long numel = (long)n * c * h * w, half = (long)n * c * (h / 2) * (w / 2);
        if (method is nameof(BilinearUp2) or nameof(NearestUp2) or nameof(BilinearUp2Backward) or nameof(NearestUp2Backward))
            return (numel + half) * (double)sizeof(float);
        double passes = method switch
        {
            nameof(DeviceCopy) or nameof(CopyKernel) or nameof(Relu) => 2,      // read x, write y
            nameof(ReluBackward) or nameof(Add) or nameof(AddRelu) => 3,        // two reads, one write
            nameof(BnForward) or nameof(BnReluForward) => 3,                    // stats: x; apply: x, y
            nameof(BnAddReluForward) => 4,                                      // + residual
            nameof(BnAddReluForwardUnfused) => 3 + 3 + 2,                       // BN, add, relu
            nameof(BnReluBackward) => 7,                                        // dy, y, x; dy, y, x, dx
            nameof(BnAddReluBackward) => 7,                                     // dy, y, x, dres; dres, x, dx
            nameof(BnAddReluBackwardUnfused) => 3 + 2 + 5,                      // relu bwd, copy, BN bwd (dy, x; dy, x, dx)
            nameof(BnForwardBackward) => 3 + 5,
            nameof(SumPerChannel) or nameof(Sum) => 1,
            nameof(L2Normalize) => 3,                                           // x twice (norm, scale), y
            _ => double.NaN,
        };
        return passes * numel * sizeof(float);
    }

    /// <summary>Adds "GB/s" and "% copy" (of <see cref="DeviceCopy"/> at the same shape) to the table.</summary>
    public sealed class BandwidthConfig : ManualConfig
    {
        public BandwidthConfig()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.Min, new BandwidthColumn(false), new BandwidthColumn(true));
        }
    }

    sealed class BandwidthColumn(bool relative) : IColumn
    {
        public string Id => relative ? "PctCopy" : "GBps";
        public string ColumnName => relative ? "% copy" : "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => relative ? 1 : 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => relative ? "GB/s as a percentage of DeviceCopy's at the same shape"
                                         : "effective bandwidth: compulsory bytes (NormBenchmarks.Bytes) / median time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            double gbps = Rate(summary, benchmarkCase);
            if (!relative) return double.IsNaN(gbps) ? "-" : gbps.ToString("F1");
            var copy = summary.BenchmarksCases.FirstOrDefault(b =>
                b.Descriptor.WorkloadMethod.Name == nameof(DeviceCopy) &&
                b.Parameters.DisplayInfo == benchmarkCase.Parameters.DisplayInfo);
            double c = copy == null ? double.NaN : Rate(summary, copy);
            return double.IsNaN(gbps) || double.IsNaN(c) || c <= 0 ? "-" : (100 * gbps / c).ToString("F0");
        }

        static double Rate(Summary summary, BenchmarkCase b)
        {
            var report = summary[b];
            if (report?.ResultStatistics == null) return double.NaN;
            var shape = b.Parameters.Items.FirstOrDefault(p => p.Name == nameof(Shape))?.Value as string;
            if (shape == null) return double.NaN;
            var (n, c, h, w) = Parse(shape);
            double bytes = Bytes(b.Descriptor.WorkloadMethod.Name, n, c, h, w);
            return bytes / (report.ResultStatistics.Median * 1e-9) / 1e9; // Median is in ns
        }
    }
}
