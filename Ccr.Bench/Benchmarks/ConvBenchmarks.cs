using BenchmarkDotNet.Attributes;
using Ccr.Kernels;

namespace Ccr.Bench.Benchmarks;

/// <summary>GEMM and conv2d forward / backward on the current device (CCR_DEVICE picks it). GFLOP/s
/// per benchmark = Flops / mean time; the flop counts are printed in [GlobalCleanup] so the table's
/// mean converts directly (conv backward = dx + dw + db: twice the forward's flops).</summary>
public class ConvBenchmarks : ConvBenchBase
{
    /// <summary>Conv: N,Cin,H,W / Cout,k / stride,padding.</summary>
    [Params("4,18,120,160/18,3/1,1", "4,144,15,20/144,3/1,1", "4,3,240,320/64,3/2,1", "4,64,60,80/64,1/1,0")]
    public string ConvShape { get; set; } = "4,18,120,160/18,3/1,1";
    protected override string Shape => ConvShape;

    [Benchmark]
    public void Conv2dForward()
    {
        Conv2d.Forward(_d, _y, _x, _w, _bias, _g);
        _d.Synchronize();
    }

    [Benchmark]
    public void Conv2dBackward()
    {
        Conv2d.BackwardInput(_d, _dx, _y, _w, _g);
        Conv2d.BackwardWeight(_d, _dw, _y, _x, _g);
        Conv2d.BackwardBias(_d, _db, _y, _g);
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
        Gemm.Run(_d, _c, _a, _b, _m, _n, _k);
        _d.Synchronize();
    }
}

/// <summary>Buffers for either benchmark: the shape string is a GEMM "MxNxK" or a conv "N,Cin,H,W/Cout,k/s,p".</summary>
public abstract class ConvBenchBase
{
    protected Device _d = null!;
    readonly List<PooledBlock> _blocks = [];
    protected Buf<float> _a, _b, _c, _x, _w, _bias, _y, _dx, _dw, _db;
    protected ConvGeom _g;
    protected int _m, _n, _k;
    bool _isGemm;
    protected abstract string Shape { get; }

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: false);
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
            : $"// flops: conv {_g} forward = {2.0 * _g.Macs / 1e9:F3} GFLOP, backward = {4.0 * _g.Macs / 1e9:F3} GFLOP (GFLOP/s = GFLOP / mean seconds)");
        foreach (var b in _blocks) b.Dispose();
        _blocks.Clear();
        _d.Dispose();
    }
}
