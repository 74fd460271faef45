using System.Diagnostics;
using Ccr.Kernels;
using Ccr.Kernels.Ops;

namespace Ccr.Bench.Report;

/// <summary>`Ccr.Bench conv-passes [REPS]`: forward, input gradient and weight gradient timed separately on the
/// CPU variant at the paper step's heaviest conv shapes (batch 8, 96x128 input; median of REPS after a warm-up),
/// to see which backward pass a change moves without the whole step-profile. Shapes after REPS replace the list.
/// Environment switches select the paths before each change, for before / after in one sitting: CONV_PASSES_IM2COL,
/// CONV_PASSES_COL2IM, CONV_PASSES_DW_IM2COL, CONV_PASSES_UNFUSED, CONV_PASSES_PACKED_B,
/// CONV_PASSES_DW_PACKED, CONV_PASSES_DW_GATHERED (each =1), CONV_PASSES_DIRECT_MAX=C.
/// tools/cpu_conv_compare.py runs it beside oneDNN (PyTorch) on every conv shape of the step.</summary>
internal static class ConvPasses
{
    // "N,Cin,H,W/Cout,k/stride,padding"
    static readonly string[] Shapes =
    [
        "8,256,24,32/128,3/1,1", "8,256,24,32/256,3/1,1", "8,144,3,4/144,3/1,1", "8,72,6,8/72,3/1,1",
        "8,36,12,16/36,3/1,1", "8,18,24,32/36,3/2,1", "8,256,24,32/256,1/1,0", "8,64,48,64/64,3/2,1",
    ];

    public static int Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 7;
        using var d = Device.CreateCpu();
        // CONV_PASSES_IM2COL=1: the forward through im2col + GEMM (the path before B was packed from the image)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_IM2COL") == "1") Convolution.PackFromImage = false;
        // CONV_PASSES_COL2IM=1: the stride-1 input gradient through dcols + col2im (before it ran as a forward conv)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_COL2IM") == "1") Convolution.InputGradientAsForward = false;
        // CONV_PASSES_DIRECT_MAX=C: stride-1 convs with at most C channels take the direct correlations (default 32)
        if (int.TryParse(Environment.GetEnvironmentVariable("CONV_PASSES_DIRECT_MAX"), out int direct)) Convolution.DirectMaxChannels = direct;
        // CONV_PASSES_THREADS=T: the packed GEMM's threads (default: every core)
        if (int.TryParse(Environment.GetEnvironmentVariable("CONV_PASSES_THREADS"), out int threads)) Gemm.PackedThreads = threads;
        // CONV_PASSES_UNFUSED=1: the packed GEMM packs a block's B strips in a round of their own, then splits M first
        if (Environment.GetEnvironmentVariable("CONV_PASSES_UNFUSED") == "1") Gemm.FusedPacking = false;
        // CONV_PASSES_DW_IM2COL=1: the weight gradient's B packed from an im2col'd column matrix (before: from the images)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_DW_IM2COL") == "1") Convolution.WeightGradientFromImage = false;
        // CONV_PASSES_PACKED_B=1: stride-1 forwards (and input gradients run as forwards) pack B strips from the images
        // (before: B read in place from the padded images)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_PACKED_B") == "1") Gemm.DirectImageB = false;
        // CONV_PASSES_DW_PACKED=1: stride-1 weight gradients on the packed GEMM (before: dot products on dy and the
        // padded images in place)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_DW_PACKED") == "1") Gemm.WeightGradientInPlace = false;
        // CONV_PASSES_DW_GATHERED=1: wide weight gradients on the GEMM over gathered cols^T (before: one product per tap
        // from a channels-last copy)
        if (Environment.GetEnvironmentVariable("CONV_PASSES_DW_GATHERED") == "1") Gemm.WeightGradientPerTap = false;
        // warm-up: the first shape's numbers otherwise include the JIT's tier-up of the host loops (col2im 20 ms, not 5)
        Warm(d);
        Console.WriteLine($"{"shape",-28} {"fwd ms",8} {"dx ms",8} {"dw ms",8}");
        foreach (var s in args.Length > 1 ? args[1..] : Shapes)
        {
            var p = s.Split('/'); var x = p[0].Split(',').Select(int.Parse).ToArray();
            var w = p[1].Split(',').Select(int.Parse).ToArray(); var sp = p[2].Split(',').Select(int.Parse).ToArray();
            var g = ConvGeom.From(x, [w[0], x[1], w[1], w[1]], null, sp[0], sp[1], 1);
            long nx = (long)g.N * g.Cin * g.HW, ny = (long)g.N * g.Cout * g.OHW, nw = (long)g.Cout * g.CKK;
            using var bx = d.Pool.Rent(nx * 4); using var bdx = d.Pool.Rent(nx * 4);
            using var by = d.Pool.Rent(ny * 4); using var bw = d.Pool.Rent(nw * 4); using var bdw = d.Pool.Rent(nw * 4);
            Buf<float> X = new(bx, 0, nx), DX = new(bdx, 0, nx), Y = new(by, 0, ny), W = new(bw, 0, nw), DW = new(bdw, 0, nw);
            var rng = new Random(1);
            foreach (var b in new[] { X, Y, W }) { var sp2 = b.Span; for (int i = 0; i < sp2.Length; i++) sp2[i] = (float)rng.NextDouble() - 0.5f; }
            double F() => Time(() => Convolution.Forward(d, Y, X, W, null, g), reps);
            double I() => Time(() => Convolution.BackwardInput(d, DX, Y, W, g), reps);
            double Wg() => Time(() => Convolution.BackwardWeight(d, DW, Y, X, g), reps);
            Console.WriteLine($"{s,-28} {F(),8:F2} {I(),8:F2} {Wg(),8:F2}");
            if (Environment.GetEnvironmentVariable("CONV_PASSES_GEMM") == "1")
            {
                // the weight gradient's GEMM alone (M Cout, N CKK, K N OHW), B transposed as it is there, and untransposed
                int m = g.Cout, n = g.CKK, k = g.N * g.OHW;
                using var ba = d.Pool.Rent((long)m * k * 4); using var bb = d.Pool.Rent((long)n * k * 4); using var bc = d.Pool.Rent((long)m * n * 4);
                Buf<float> A = new(ba, 0, (long)m * k), B = new(bb, 0, (long)n * k), C = new(bc, 0, (long)m * n);
                double nt = Time(() => Gemm.Run(d, C, A, B, m, n, k, transB: true), reps);
                double nn = Time(() => Gemm.Run(d, C, A, B, m, n, k), reps);
                double dxg = Time(() => Gemm.Run(d, B, C, A, n, k, m, transA: true), reps); // dcols (CKK, N OHW) = w^T dy_cat
                Console.WriteLine($"   dw gemm {m}x{n}x{k}: B^T {nt:F2} ms, B {nn:F2} ms; dx gemm {n}x{k}x{m} A^T {dxg:F2} ms");
                // the forward's batched GEMM alone (y_n (Cout, OHW) = w (Cout, CKK) cols_n (CKK, OHW)), on a cols buffer
                // that is already filled: forward minus this is the im2col's share
                double fg = Time(() => Gemm.Batched(d, Y, W, B.Slice(0, (long)g.N * g.CKK * g.OHW), g.N, g.Cout, g.OHW, g.CKK,
                    (long)g.Cout * g.OHW, 0, (long)g.CKK * g.OHW), reps);
                Console.WriteLine($"   fwd gemm {g.N} x {g.Cout}x{g.OHW}x{g.CKK}: {fg:F2} ms");
            }
        }
        return 0;
    }

    static void Warm(Device d)
    {
        var sw = Stopwatch.StartNew();
        // stride 2, then stride 1 with 64 channels at 16 wide (the stride-1 paths of the wide layers)
        Warm(d, ConvGeom.From([2, 32, 12, 16], [32, 32, 3, 3], null, 2, 1, 1), sw, 1000);
        Warm(d, ConvGeom.From([2, 64, 12, 16], [64, 64, 3, 3], null, 1, 1, 1), sw, 2000);
    }

    static void Warm(Device d, ConvGeom g, Stopwatch sw, int untilMs)
    {
        long nx = (long)g.N * g.Cin * g.HW, ny = (long)g.N * g.Cout * g.OHW, nw = (long)g.Cout * g.CKK;
        using var bx = d.Pool.Rent(nx * 4); using var by = d.Pool.Rent(ny * 4); using var bw = d.Pool.Rent(nw * 4);
        Buf<float> X = new(bx, 0, nx), Y = new(by, 0, ny), W = new(bw, 0, nw);
        X.Span.Clear(); Y.Span.Clear(); W.Span.Clear();
        while (sw.ElapsedMilliseconds < untilMs)
        {
            Convolution.Forward(d, Y, X, W, null, g);
            Convolution.BackwardInput(d, X, Y, W, g);
            Convolution.BackwardWeight(d, W, Y, X, g);
        }
    }

    static double Time(Action a, int reps)
    {
        a();
        var t = new double[reps];
        for (int i = 0; i < reps; i++) { var sw = Stopwatch.StartNew(); a(); t[i] = sw.Elapsed.TotalMilliseconds; }
        Array.Sort(t);
        return t[reps / 2];
    }
}
