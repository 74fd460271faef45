using Ccr.Kernels.Ops;
using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using ILGPU.Runtime.Cuda;

namespace Ccr.Bench.Benchmarks;

/// <summary>GEMM and conv2d forward / backward on the current device (CCR_DEVICE picks it). GFLOP/s
/// per benchmark = Flops / mean time; the flop counts are printed in [GlobalCleanup] so the table's
/// mean converts directly (conv backward = dx + dw + db: twice the forward's flops). On a CUDA device
/// every case runs in fp32 and in TF32 (<see cref="ConvBenchBase.Precision"/>).</summary>
public class ConvBenchmarks : ConvBenchBase
{
    /// <summary>Conv: N,Cin,H,W / Cout,k / stride,padding.</summary>
    [Params("4,18,120,160/18,3/1,1", "4,144,15,20/144,3/1,1", "4,3,240,320/64,3/2,1", "4,64,60,80/64,1/1,0")]
    public string ConvShape { get; set; } = "4,18,120,160/18,3/1,1";
    protected override string Shape => ConvShape;

    [Benchmark]
    public void Conv2dForward()
    {
        Convolution.Forward(_d, _y, _x, _w, _bias, _g, precision: _precision);
        _d.Synchronize();
    }

    [Benchmark]
    public void Conv2dBackward()
    {
        Convolution.BackwardInput(_d, _dx, _y, _w, _g, precision: _precision);
        Convolution.BackwardWeight(_d, _dw, _y, _x, _g, precision: _precision);
        Convolution.BackwardBias(_d, _db, _y, _g);
        _d.Synchronize();
    }
}

public class ConvGemmBenchmarks : ConvBenchBase
{
    /// <summary>GEMM M x N x K.</summary>
    [Params("512x512x512", "1000x300x77")]
    public string GemmShape { get; set; } = "512x512x512";
    protected override string Shape => GemmShape;

    [Benchmark]
    public void Gemm_()
    {
        Gemm.Run(_d, _c, _a, _b, _m, _n, _k, precision: _precision);
        _d.Synchronize();
    }
}

/// <summary>
/// Conv2d forward, input gradient and weight gradient timed separately at the shapes of the paper's model
/// (HRNet-W18-small-v2 + FPN 256 + Semantic FPN 128, batch 4, 480x640 input: the stem works at 240x320,
/// stage 1 at 120x160), for timing beside <c>tools/torch_conv_baseline.py</c> (same shapes, same order) on the
/// same card. Each layer is "N,Cin,H,W/Cout,k/stride,padding" with the input's H, W. The flops of each pass
/// are 2 N Cout OH OW Cin k k, printed at cleanup with the tiles the CUDA variant chose.
/// </summary>
public class ConvPassBenchmarks : ConvBenchBase
{
    /// <summary>The layers, by name (BenchmarkDotNet cuts long parameter strings in its table).</summary>
    public static readonly IReadOnlyDictionary<string, string> Layers = new Dictionary<string, string>
    {
        ["stem1"] = "4,3,480,640/64,3/2,1",       // stem conv1: 480x640 -> 240x320
        ["stem2"] = "4,64,240,320/64,3/2,1",      // stem conv2: -> 120x160
        ["branch18"] = "4,18,120,160/18,3/1,1",   // stage-2..4 branch at 1/4
        ["branch36"] = "4,36,60,80/36,3/1,1",     // branch at 1/8
        ["branch144"] = "4,144,15,20/144,3/1,1",  // branch at 1/32
        ["fuse18to36"] = "4,18,120,160/36,3/2,1", // fuse: 1/4 -> 1/8
        ["fpn256"] = "4,256,120,160/256,3/1,1",   // FPN output conv at 1/4
        ["sfpn128"] = "4,128,60,80/128,3/1,1",    // Semantic FPN head conv at 1/8
    };

    [Params("stem1", "stem2", "branch18", "branch36", "branch144", "fuse18to36", "fpn256", "sfpn128")]
    public string Layer { get; set; } = "branch18";
    protected override string Shape => Layers[Layer];

    [Benchmark]
    public void Forward()
    {
        Convolution.Forward(_d, _y, _x, _w, _bias, _g, precision: _precision);
        _d.Synchronize();
    }

    [Benchmark]
    public void InputGrad()
    {
        Convolution.BackwardInput(_d, _dx, _y, _w, _g, precision: _precision);
        _d.Synchronize();
    }

    [Benchmark]
    public void WeightGrad()
    {
        Convolution.BackwardWeight(_d, _dw, _y, _x, _g, precision: _precision);
        _d.Synchronize();
    }
}

/// <summary>Buffers for either benchmark: the shape string is a GEMM "MxNxK" or a conv "N,Cin,H,W/Cout,k/s,p".</summary>
public abstract class ConvBenchBase
{
    /// <summary>fp32, and tf32 where a CUDA device runs the benchmarks (the CPU variant is fp32 only).</summary>
    [ParamsSource(nameof(Precisions))]
    public string Precision { get; set; } = "fp32";

    public static IEnumerable<string> Precisions => CudaPresent() ? ["fp32", "tf32"] : ["fp32"];

    static bool CudaPresent()
    {
        if (string.Equals(Environment.GetEnvironmentVariable("CCR_DEVICE")?.Trim(), "cpu", StringComparison.OrdinalIgnoreCase)) return false;
        CudaLibrary.Install(); // ILGPU binds the driver once: the libcuda.so.1 lookup must come first
        using var ctx = ILGPU.Context.Create(b => b.Cuda());
        return ctx.GetCudaDevices().Count > 0;
    }

    protected Device _d = null!;
    protected MathPrecision _precision;
    readonly List<PooledBlock> _blocks = [];
    protected Buf<float> _a, _b, _c, _x, _w, _bias, _y, _dx, _dw, _db;
    private protected ConvGeom _g;
    protected int _m, _n, _k;
    bool _isGemm;
    protected abstract string Shape { get; }

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: false);
        _precision = Precision == "tf32" ? MathPrecision.Tf32 : MathPrecision.Fp32;
        var r = new Ccr.Nn.Rng(1);
        _isGemm = Shape.Contains('x');
        if (_isGemm)
        {
            var gs = Shape.Split('x').Select(int.Parse).ToArray();
            (_m, _n, _k) = (gs[0], gs[1], gs[2]);
            _a = Rand(r, (long)_m * _k); _b = Rand(r, (long)_k * _n); _c = Rand(r, (long)_m * _n);
            return;
        }
        var parts = Shape.Split('/');
        var xs = parts[0].Split(',').Select(int.Parse).ToArray();
        var cw = parts[1].Split(',').Select(int.Parse).ToArray();
        var sp = parts[2].Split(',').Select(int.Parse).ToArray();
        _g = ConvGeom.From(xs, [cw[0], xs[1], cw[1], cw[1]], cw[0], sp[0], sp[1], 1);
        _x = Rand(r, (long)_g.N * _g.Cin * _g.HW); _w = Rand(r, (long)_g.Cout * _g.CKK); _bias = Rand(r, _g.Cout);
        _y = Rand(r, (long)_g.N * _g.Cout * _g.OHW); _dx = Rand(r, _x.Length); _dw = Rand(r, _w.Length); _db = Rand(r, _g.Cout);
    }

    Buf<float> Rand(Ccr.Nn.Rng r, long n)
    {
        var block = _d.Pool.Rent(n * 4);
        _blocks.Add(block);
        var buf = new Buf<float>(block, 0, n);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = r.Uniform(-1f, 1f);
        buf.CopyFrom(a);
        return buf;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine(_isGemm
            ? $"// flops: gemm {Shape} = {2.0 * _m * _n * _k / 1e9:F3} GFLOP (GFLOP/s = GFLOP / mean seconds)"
            : $"// flops: conv {_g} forward = dx = dw = {2.0 * _g.Macs / 1e9:F3} GFLOP, backward = {4.0 * _g.Macs / 1e9:F3} GFLOP (GFLOP/s = GFLOP / mean seconds)");
        if (!_isGemm && _d.Variant == KernelVariant.Cuda)
            Console.WriteLine($"// {Precision} tiles: forward {Convolution.Plan(_d, _g, Convolution.Pass.Forward, _precision)}, dx {Convolution.Plan(_d, _g, Convolution.Pass.InputGrad, _precision)}, dw {Convolution.Plan(_d, _g, Convolution.Pass.WeightGrad, _precision)}");
        foreach (var b in _blocks) b.Dispose();
        _blocks.Clear();
        _d.Dispose();
    }
}
