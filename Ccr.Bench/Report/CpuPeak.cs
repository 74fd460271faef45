using Ccr.Kernels.Ops;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Ccr.Kernels;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench cpu-peak</c>: this machine's FMA peak, measured (issue 20's yardstick), and our CPU GEMM as a
/// share of it. The peak is chains of fused multiply-adds with 12 independent accumulators (more than FMA's
/// latency x its issue rate, so the units never wait), 512-bit where AVX-512 exists and 256-bit, on one
/// thread and on every core at once; the best of 5 runs of about 0.2 s each. Figures are GFLOP/s (2 flop per
/// lane per FMA). The GEMM is the CPU variant's <see cref="Gemm.Run"/> at 512^3, the median of 7 calls.
/// </summary>
public static class CpuPeak
{
    const int Accumulators = 12;

    public static int Run(string[] args)
    {
        if (args.Contains("--help"))
        {
            Console.WriteLine("usage: Ccr.Bench cpu-peak   (this machine's FMA peak and the CPU GEMM's share of it; no options)");
            return 0;
        }
        int cores = Environment.ProcessorCount;
        Console.WriteLine($"cpu-peak: {cores} cores, AVX-512F {(Avx512F.IsSupported ? "yes" : "no")}, FMA {(Fma.IsSupported ? "yes" : "no")}, .NET {Environment.Version}");
        double best = 0;
        foreach (int width in new[] { 512, 256 })
        {
            if (width == 512 && !Avx512F.IsSupported) continue;
            if (width == 256 && !Fma.IsSupported) continue;
            double one = Peak(width, 1), all = Peak(width, cores);
            best = Math.Max(best, all);
            Console.WriteLine($"  FMA {width}-bit: {one:F1} GFLOP/s on one thread, {all:F1} on {cores} threads");
        }
        double gemm = GemmRate(512);
        Console.WriteLine($"  CPU GEMM 512^3 (Gemm.Run, CPU variant): {gemm:F1} GFLOP/s = {(best > 0 ? 100 * gemm / best : 0):F0}% of the {best:F1} GFLOP/s peak");
        return 0;
    }

    // best of 5 runs: GFLOP/s of `threads` threads each running FMA chains of the given width
    static double Peak(int width, int threads)
    {
        const long iterations = 20_000_000; // ~0.1 s a run: long enough for the clock to settle
        Chain(width, 1000); // JIT and warm-up
        double best = 0;
        for (int run = 0; run < 5; run++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Chain(width, iterations));
            double s = sw.Elapsed.TotalSeconds;
            double flops = 2.0 * (width / 32) * Accumulators * iterations * threads;
            best = Math.Max(best, flops / s / 1e9);
        }
        return best;
    }

    // the chains; returns their sum so the JIT cannot drop them
    static float Chain(int width, long iterations) => width == 512 ? Chain512(iterations) : Chain256(iterations);

    static float Chain512(long n)
    {
        var a = Vector512.Create(0.999999f); var b = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (long i = 0; i < n; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b); c1 = Avx512F.FusedMultiplyAdd(c1, a, b); c2 = Avx512F.FusedMultiplyAdd(c2, a, b);
            c3 = Avx512F.FusedMultiplyAdd(c3, a, b); c4 = Avx512F.FusedMultiplyAdd(c4, a, b); c5 = Avx512F.FusedMultiplyAdd(c5, a, b);
            c6 = Avx512F.FusedMultiplyAdd(c6, a, b); c7 = Avx512F.FusedMultiplyAdd(c7, a, b); c8 = Avx512F.FusedMultiplyAdd(c8, a, b);
            c9 = Avx512F.FusedMultiplyAdd(c9, a, b); c10 = Avx512F.FusedMultiplyAdd(c10, a, b); c11 = Avx512F.FusedMultiplyAdd(c11, a, b);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    static float Chain256(long n)
    {
        var a = Vector256.Create(0.999999f); var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (long i = 0; i < n; i++)
        {
            c0 = Fma.MultiplyAdd(c0, a, b); c1 = Fma.MultiplyAdd(c1, a, b); c2 = Fma.MultiplyAdd(c2, a, b);
            c3 = Fma.MultiplyAdd(c3, a, b); c4 = Fma.MultiplyAdd(c4, a, b); c5 = Fma.MultiplyAdd(c5, a, b);
            c6 = Fma.MultiplyAdd(c6, a, b); c7 = Fma.MultiplyAdd(c7, a, b); c8 = Fma.MultiplyAdd(c8, a, b);
            c9 = Fma.MultiplyAdd(c9, a, b); c10 = Fma.MultiplyAdd(c10, a, b); c11 = Fma.MultiplyAdd(c11, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    // GFLOP/s of the CPU variant's GEMM at n^3: the median of 7 timed calls after 2 warm-up calls
    static double GemmRate(int n)
    {
        using var d = Device.CreateCpu();
        using var a = d.Pool.Rent((long)n * n * 4);
        using var b = d.Pool.Rent((long)n * n * 4);
        using var c = d.Pool.Rent((long)n * n * 4);
        var ba = new Buf<float>(a, 0, (long)n * n); var bb = new Buf<float>(b, 0, (long)n * n); var bc = new Buf<float>(c, 0, (long)n * n);
        var r = new Random(1);
        var host = new float[n * n];
        for (int i = 0; i < host.Length; i++) host[i] = (float)(r.NextDouble() - 0.5);
        ba.CopyFrom(host); bb.CopyFrom(host);
        for (int i = 0; i < 2; i++) Gemm.Run(d, bc, ba, bb, n, n, n);
        var times = new List<double>();
        for (int i = 0; i < 7; i++)
        {
            var sw = Stopwatch.StartNew();
            Gemm.Run(d, bc, ba, bb, n, n, n);
            d.Synchronize();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return 2.0 * n * n * n / times[3] / 1e9;
    }
}
