using Ccr.Kernels.Ops;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Ccr.Kernels;
using Ccr.Training.Config;

namespace Ccr.Bench.Report;

/// <summary>
/// <c>Ccr.Bench cpu-peak</c>: this machine's FMA peak, measured (issue 20's yardstick), and our CPU GEMM as a
/// share of it. The peak is chains of fused multiply-adds with 12 independent accumulators (more than FMA's
/// latency x its issue rate, so the units never wait), 512-bit where AVX-512 exists and 256-bit, on one
/// thread and on every core at once; the best of 5 runs of about 0.2 s each. Figures are GFLOP/s (2 flop per
/// lane per FMA). The GEMM is the CPU variant's <see cref="Gemm.Run"/> at 512^3, the median of 7 calls, on the
/// packed path and on the previous unpacked one (<see cref="Gemm.Packed"/> off), alternated so both see the same
/// machine load. <c>--shapes</c> adds the paper network's own GEMMs: one CPU training step of the synth-gpu preset
/// (HRNet-W18-small-v2 + FPN, batch 8 x 3 x 96 x 128, CCR on) is run with <see cref="Gemm.Observe"/> listening,
/// and the shapes holding most of its GEMM flops are timed the same way (the im2col convolutions, the 1x1 ones,
/// dx's transposed products, the CCR / decoder matmuls; the weight gradients' dot form and the direct
/// correlations are not GEMM calls and are not listed).
/// </summary>
public static class CpuPeak
{
    const int Accumulators = 12;

    public static int Run(string[] args)
    {
        if (args.Contains("--help") || args.Any(a => a != "--shapes" && a != "--threads"))
        {
            Console.WriteLine("usage: Ccr.Bench cpu-peak [--shapes] [--threads]   (this machine's FMA peak and the CPU GEMM's share of it;\n" +
                              "       --shapes: also the paper network's GEMM shapes, packed vs the previous path;\n" +
                              "       --threads: the packed GEMM on one thread and on all, each against its own peak)");
            return args.Contains("--help") ? 0 : 2;
        }
        int cores = Environment.ProcessorCount;
        Console.WriteLine($"cpu-peak: {cores} cores, AVX-512F {(Avx512F.IsSupported ? "yes" : "no")}, FMA {(Fma.IsSupported ? "yes" : "no")}, .NET {Environment.Version}");
        double best = 0, bestOne = 0;
        foreach (int width in new[] { 512, 256 })
        {
            if (width == 512 && !Avx512F.IsSupported) continue;
            if (width == 256 && !Fma.IsSupported) continue;
            double one = Peak(width, 1), all = Peak(width, cores);
            best = Math.Max(best, all); bestOne = Math.Max(bestOne, one);
            Console.WriteLine($"  FMA {width}-bit: {one:F1} GFLOP/s on one thread, {all:F1} on {cores} threads");
        }
        var (packed, before) = GemmRates(new Shape(512, 512, 512, false, false), 7);
        Console.WriteLine($"  CPU GEMM 512^3 (Gemm.Run, CPU variant): {packed:F1} GFLOP/s = {Share(packed, best)} of the {best:F1} GFLOP/s peak" +
                          $" (previous unpacked path: {before:F1} = {Share(before, best)})");
        if (args.Contains("--threads")) ThreadSplit(bestOne, best, cores);
        if (args.Contains("--shapes")) NetworkShapes(best);
        return 0;
    }

    static string Share(double rate, double peak) => $"{(peak > 0 ? 100 * rate / peak : 0):F0}%";

    /// <summary>One GEMM call: a batch of M x N x K products (A or B shared by the batch when flagged).</summary>
    public readonly record struct Shape(int M, int N, int K, bool TA, bool TB, int Batch = 1, bool SharedA = false, bool SharedB = false)
    {
        public double Flops => 2.0 * M * N * K * Batch;
        public override string ToString() => (Batch > 1 ? $"{Batch} x " : "") + $"{M} x {N} x {K}{(TA ? " A^T" : "")}{(TB ? " B^T" : "")}" +
                                             (Batch > 1 && SharedA ? " (A shared)" : "") + (Batch > 1 && SharedB ? " (B shared)" : "");
    }

    // one CPU training step of the paper network with Gemm.Observe listening; then the shapes holding 95% of
    // its GEMM flops (at most 16), each timed packed and previous
    static void NetworkShapes(double peak)
    {
        var seen = new Dictionary<Shape, int>();
        string dir = Path.Combine(Path.GetTempPath(), "ccr-cpu-peak-" + Environment.ProcessId);
        try
        {
            var cfg = ConfigLoader.Load("synth-gpu", [$"data.path={Path.Combine(dir, "data")}", "data.train_size=8",
                                                                          "data.val_size=1", "device=cpu", "data.workers=1"]);
            using var d = Device.Create(cfg.Device.ConfigWord(), verbose: false);
            using var s = new Ccr.Training.TrainSession(cfg, d);
            var t = new Ccr.Training.Trainer(s, Path.Combine(dir, "run"), _ => { });
            var batch = s.Loader.MakeBatch(0, 0);
            t.TrainStep(batch, 1.0, log: false); // warm-up: first-step allocations and compiles
            Gemm.Observe = h =>
            {
                var shape = new Shape(h.M, h.N, h.K, h.TransA, h.TransB, h.Batch, h.SharedA, h.SharedB);
                lock (seen) seen[shape] = seen.GetValueOrDefault(shape) + 1;
            };
            var sw = Stopwatch.StartNew();
            try { t.TrainStep(batch, 1.0, log: false); d.Synchronize(); }
            finally { Gemm.Observe = null; }
            Console.WriteLine($"  paper network (synth-gpu: HRNet-W18-small-v2 + FPN, 8 x 3 x 96 x 128, CCR on): one CPU step {sw.Elapsed.TotalSeconds:F1} s, " +
                              $"{seen.Values.Sum()} GEMM calls, {seen.Count} shapes, {seen.Sum(e => e.Key.Flops * e.Value) / 1e9:F1} GFLOP in GEMMs");
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
        double total = seen.Sum(e => e.Key.Flops * e.Value), acc = 0;
        Console.WriteLine("  | batch x M x N x K (op) | calls/step | share of step GEMM flop | previous GFLOP/s (% peak) | packed GFLOP/s (% peak) |");
        Console.WriteLine("  |---|---:|---:|---:|---:|");
        double tOld = 0, tNew = 0, fl = 0;
        int listed = 0;
        foreach (var (shape, calls) in seen.OrderByDescending(e => e.Key.Flops * e.Value))
        {
            if (acc >= 0.95 * total || listed++ == 16) break;
            acc += shape.Flops * calls;
            var (packed, before) = GemmRates(shape, 5);
            Console.WriteLine($"  | {shape} | {calls} | {100 * shape.Flops * calls / total:F1}% | {before:F1} ({Share(before, peak)}) | {packed:F1} ({Share(packed, peak)}) |");
            tOld += shape.Flops * calls / before; tNew += shape.Flops * calls / packed; fl += shape.Flops * calls;
        }
        Console.WriteLine($"  listed shapes together (time-weighted, as in a step): previous {fl / tOld:F1} GFLOP/s ({Share(fl / tOld, peak)}), " +
                          $"packed {fl / tNew:F1} GFLOP/s ({Share(fl / tNew, peak)}); {100 * fl / total:F0}% of the step's GEMM flop");
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

    // the packed GEMM on one thread and on all (Gemm.PackedThreads), alternated in each round: how much of the
    // second core's peak the split of one product turns into speed
    static void ThreadSplit(double peakOne, double peakAll, int cores)
    {
        double one1 = MicroTileRate(1), all1 = MicroTileRate(cores);
        Console.WriteLine($"  micro-tile alone (operands in L1, kc 128): 1 thread {one1:F1} GFLOP/s ({Share(one1, peakOne)} of its peak), " +
                          $"{cores} threads {all1:F1} ({Share(all1, peakAll)})");
        int keep = Gemm.PackedThreads;
        try
        {
            foreach (var s in new[] { new Shape(512, 512, 512, false, false), new Shape(1024, 1024, 1024, false, false),
                                      new Shape(128, 2304, 6144, false, true) })
            {
                var one = new List<double>(); var all = new List<double>();
                for (int round = 0; round < 3; round++)
                {
                    Gemm.PackedThreads = 1; one.Add(GemmRates(s, 3).Packed);
                    Gemm.PackedThreads = cores; all.Add(GemmRates(s, 3).Packed);
                }
                one.Sort(); all.Sort();
                Console.WriteLine($"  packed GEMM {s}: 1 thread {one[1]:F1} GFLOP/s ({Share(one[1], peakOne)} of its peak), " +
                                  $"{cores} threads {all[1]:F1} ({Share(all[1], peakAll)}); median of 3 rounds");
            }
        }
        finally { Gemm.PackedThreads = keep; }
    }

    // the packed GEMM's micro-tile with its operands in L1 (kc = 128: a 6 KB panel and a 16 KB strip), on `threads`
    // threads at once, best of 5 runs of about 0.1 s: what the FMA loop gets with no cache or packing cost
    static unsafe double MicroTileRate(int threads)
    {
        const int kc = 128, calls = 40_000;
        double best = 0;
        for (int run = 0; run < 6; run++)
        {
            double flops = 0;
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                var a = GC.AllocateArray<float>(32 * kc + 16, pinned: true); var b = GC.AllocateArray<float>(32 * kc + 16, pinned: true);
                var c = GC.AllocateArray<float>(32 * 32 + 16, pinned: true);
                for (int i = 0; i < a.Length; i++) { a[i] = 1e-3f * (i % 7); b[i] = 1e-3f * (i % 5); }
                fixed (float* pa = a, pb = b, pc = c)
                {
                    var (mr, nr) = (0, 0);
                    for (int i = 0; i < calls; i++) (mr, nr) = Gemm.MicroTile(kc, pa, pb, pc);
                    lock (sw) flops += 2.0 * mr * nr * kc * calls;
                }
            });
            if (run > 0) best = Math.Max(best, flops / sw.Elapsed.TotalSeconds / 1e9); // run 0: JIT and warm-up
        }
        return best;
    }

    // GFLOP/s of the CPU variant's GEMM at one shape, (packed, previous): the median of `reps` timed rounds after
    // a warm-up, the two paths alternated inside each round; a round repeats the call to last >= 20 ms
    static (double Packed, double Previous) GemmRates(Shape s, int reps)
    {
        using var d = Device.CreateCpu();
        long na = (long)s.M * s.K * (s.SharedA ? 1 : s.Batch), nb = (long)s.K * s.N * (s.SharedB ? 1 : s.Batch), nc = (long)s.M * s.N * s.Batch;
        using var a = d.Pool.Rent(na * 4);
        using var b = d.Pool.Rent(nb * 4);
        using var c = d.Pool.Rent(nc * 4);
        var ba = new Buf<float>(a, 0, na); var bb = new Buf<float>(b, 0, nb); var bc = new Buf<float>(c, 0, nc);
        var r = new Random(1);
        ba.CopyFrom(Enumerable.Range(0, (int)na).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray());
        bb.CopyFrom(Enumerable.Range(0, (int)nb).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray());
        bool keep = Gemm.Packed;
        try
        {
            int inner = Math.Max(1, (int)(0.02 * 50e9 / s.Flops));
            double Time(bool packed)
            {
                Gemm.Packed = packed;
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < inner; i++)
                    Gemm.Batched(d, bc, ba, bb, s.Batch, s.M, s.N, s.K, (long)s.M * s.N, s.SharedA ? 0 : (long)s.M * s.K,
                                 s.SharedB ? 0 : (long)s.K * s.N, s.TA, s.TB);
                d.Synchronize();
                return sw.Elapsed.TotalSeconds / inner;
            }
            Time(true); Time(false);
            var tp = new List<double>(); var tq = new List<double>();
            for (int i = 0; i < reps; i++) { tp.Add(Time(true)); tq.Add(Time(false)); }
            tp.Sort(); tq.Sort();
            return (s.Flops / tp[reps / 2] / 1e9, s.Flops / tq[reps / 2] / 1e9);
        }
        finally { Gemm.Packed = keep; }
    }
}
