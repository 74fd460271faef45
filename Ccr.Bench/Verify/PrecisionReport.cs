using Ccr.Kernels.Ops;
using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Nn;

namespace Ccr.Bench.Verify;

/// <summary>
/// <c>Ccr.Bench precision</c>: the relative L2 error against float64 of the CUDA variant's conv2d (y, dx, dw)
/// and GEMM in fp32 and in TF32, on a CUDA device at layer shapes of the paper's model, else on the CPU
/// accelerator (TF32 through the emulated fragments) at small shapes. Inputs are uniform in [-1, 1].
/// What TF32 costs in accuracy, measured rather than assumed; not a pass / fail check (verify is).
/// </summary>
public static class PrecisionReport
{
    public static int Run(string[] args)
    {
        using var main = Device.Create(verbose: true);
        bool gpu = main.IsCuda;
        using var cpu = gpu ? null : Device.CreateCpu(KernelVariant.Cuda);
        var d = gpu ? main : cpu!;
        Console.WriteLine($"CUDA variant on {d}");
        (int[] X, int[] W)[] convs = gpu
            ? [([4, 18, 120, 160], [18, 18, 3, 3]), ([4, 144, 15, 20], [144, 144, 3, 3]), ([2, 128, 30, 40], [128, 128, 3, 3])]
            : [([2, 18, 12, 16], [18, 18, 3, 3]), ([1, 64, 8, 8], [64, 64, 3, 3])];
        int gemm = gpu ? 1024 : 256;
        var r = new Rng(5);
        float[] F(long n) { var a = new float[n]; for (long i = 0; i < n; i++) a[i] = r.Uniform(-1, 1); return a; }
        double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        foreach (var (xs, ws) in convs)
        {
            var g = ConvGeom.From(xs, ws, null, 1, 1, 1);
            var x = F((long)g.N * g.Cin * g.HW); var w = F((long)g.Cout * g.CKK); var dy = F((long)g.N * g.Cout * g.OHW);
            var ey = Convolution.Reference.Forward(D(x), D(w), null, g);
            var (edx, edw, _) = Convolution.Reference.Backward(D(dy), D(x), D(w), g);
            foreach (var p in new[] { MathPrecision.Fp32, MathPrecision.Tf32 })
            {
                using var scope = new TensorScope();
                var tx = Tensor.FromArray(d, x, x.Length); var tw = Tensor.FromArray(d, w, w.Length); var tdy = Tensor.FromArray(d, dy, dy.Length);
                var y = Tensor.Empty(d, dy.Length); var dx = Tensor.Empty(d, x.Length); var dw = Tensor.Empty(d, w.Length);
                Convolution.Forward(d, y.Data, tx.Data, tw.Data, null, g, precision: p);
                Convolution.BackwardInput(d, dx.Data, tdy.Data, tw.Data, g, precision: p);
                Convolution.BackwardWeight(d, dw.Data, tdy.Data, tx.Data, g, precision: p);
                Console.WriteLine($"conv {g} {p}: relative L2 error y {Rel(ey, y.ToArray()):E2}, dx {Rel(edx, dx.ToArray()):E2}, dw {Rel(edw, dw.ToArray()):E2}");
            }
        }
        var a = F((long)gemm * gemm); var b = F((long)gemm * gemm);
        var e = Gemm.Reference.Run(null, D(a), D(b), gemm, gemm, gemm);
        foreach (var p in new[] { MathPrecision.Fp32, MathPrecision.Tf32 })
        {
            using var scope = new TensorScope();
            var ta = Tensor.FromArray(d, a, a.Length); var tb = Tensor.FromArray(d, b, b.Length); var tc = Tensor.Empty(d, gemm * gemm);
            var sw = Stopwatch.StartNew();
            Gemm.Run(d, tc.Data, ta.Data, tb.Data, gemm, gemm, gemm, precision: p);
            d.Synchronize();
            Console.WriteLine($"gemm {gemm}^3 {p}: relative L2 error {Rel(e, tc.ToArray()):E2} (first call, with its JIT: {sw.Elapsed.TotalMilliseconds:F0} ms)");
        }
        return 0;
    }

    static double Rel(double[] e, float[] g)
    {
        double num = 0, den = 0;
        for (int i = 0; i < e.Length; i++) { num += (e[i] - g[i]) * (e[i] - g[i]); den += e[i] * e[i]; }
        return Math.Sqrt(num / den);
    }
}
