using Ccr.Kernels.Contrastive;
using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// One CCR evaluation of one task pair at the paper's scale: batch 4, 128-channel L2-normalised
/// projection maps of 120x160, gamma 0.01 (192 anchors per image), k 128, 16 semi-hard negatives,
/// for each label kind. Each iteration runs what a training step runs for the pair, all on the
/// device: the source labels (on the device at 480x640, as the batch has them) prepared at 120x160
/// (nearest, validity), anchors drawn by the counter-based sampler, distance matrices, mining,
/// triplet loss and its reduction, the counter's advance (Forward); the same plus the
/// deterministic backward (ForwardBackward). Compare with <c>tools/torch_ccr_baseline.py</c> on
/// the same machine (its forward: cdist, masks, topk; PyTorch eager on an H200: 1.2-1.5 ms per pair).
/// </summary>
public class CcrBenchmarks
{
    [Params("semseg", "depth", "normals")]
    public string Source { get; set; } = "semseg";

    const int N = 4, D = 128, H = 120, W = 160, LabelScale = 4;
    Device _d = null!;
    Tensor _proj = null!, _rawLabels = null!, _counter = null!;
    readonly CcrConfig _cfg = new();

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: true);
        var rng = new Rng(1);
        var p = new float[N * D * H * W];
        for (int i = 0; i < p.Length; i++) p[i] = (float)rng.NextGaussian();
        for (int b = 0; b < N; b++) // unit norm per pixel, as the projector outputs
            for (int i = 0; i < H * W; i++)
            {
                double s = 0;
                for (int c = 0; c < D; c++) s += p[(b * D + c) * H * W + i] * p[(b * D + c) * H * W + i];
                float inv = (float)(1 / Math.Sqrt(s));
                for (int c = 0; c < D; c++) p[(b * D + c) * H * W + i] *= inv;
            }
        _proj = Tensor.FromArray(_d, p, N, D, H, W);
        _proj.RequiresGrad = true;
        int l = Source == "normals" ? 3 : 1, lh = H * LabelScale, lw = W * LabelScale;
        if (Source == "semseg")
        {
            var lab = new int[N * lh * lw];
            for (int i = 0; i < lab.Length; i++) lab[i] = rng.NextFloat() < 0.1f ? 255 : rng.NextInt(40);
            _rawLabels = Tensor.FromArray(_d, lab, N, lh, lw);
        }
        else
        {
            var lab = new float[N * l * lh * lw];
            for (int i = 0; i < lab.Length; i++)
                lab[i] = Source == "depth" ? (rng.NextFloat() < 0.1f ? 0f : rng.Uniform(0.5f, 10f)) : (float)rng.NextGaussian();
            _rawLabels = Tensor.FromArray(_d, lab, N, l, lh, lw);
        }
        _counter = Tensor.FromArray(_d, new int[1], 1);
        Forward(); ForwardBackward(); // load kernels
    }

    float Pair(bool backward)
    {
        using var scope = new TensorScope();
        using var labels = TaskLabels.FromDevice(Source, _rawLabels);
        var lab = labels.Resized(H, W);
        var anchors = CcrOps.SampleAnchors(lab, _cfg.AnchorsPerImage(H, W), _counter, 7);
        Tensor loss;
        using (backward ? null : new NoGrad())
            loss = CcrOps.PairLoss(_proj, lab, anchors, _cfg, _counter, 7, out _);
        CcrAnchors.Advance(_d, _counter.IntData);
        if (backward)
        {
            loss.Backward();
            _proj.ZeroGrad();
        }
        _d.Synchronize();
        return 0;
    }

    [Benchmark]
    public float Forward() => Pair(backward: false);

    [Benchmark]
    public float ForwardBackward() => Pair(backward: true);

    /// <summary><c>Ccr.Bench ccr-time [reps]</c>: per label kind, the median over <paramref name="reps"/>
    /// runs of the wall time and of the process's CPU time (all threads) of Forward and
    /// ForwardBackward, beside <c>tools/torch_ccr_baseline.py</c>, which prints both too.</summary>
    public static int TimeAll(int reps)
    {
        Console.WriteLine($"{"labels",-8} {"pass",-16} {"wall ms",9} {"cpu ms",9}");
        foreach (var source in new[] { "semseg", "depth", "normals" })
        {
            var b = new CcrBenchmarks { Source = source };
            b.Setup();
            foreach (var (name, run) in new (string, Func<float>)[] { ("forward", b.Forward), ("forward+backward", b.ForwardBackward) })
            {
                for (int w = 0; w < 3; w++) run(); // warm-up: tiered JIT promotes the loops of this label kind's code
                var wall = new List<double>(); var cpu = new List<double>();
                var proc = System.Diagnostics.Process.GetCurrentProcess();
                for (int r = 0; r < reps; r++)
                {
                    GC.Collect(); // the setup's arrays are not collected inside a timed run
                    GC.WaitForPendingFinalizers();
                    proc.Refresh();
                    var c0 = proc.TotalProcessorTime;
                    var sw = System.Diagnostics.Stopwatch.StartNew();
                    run();
                    wall.Add(sw.Elapsed.TotalMilliseconds);
                    proc.Refresh();
                    cpu.Add((proc.TotalProcessorTime - c0).TotalMilliseconds);
                }
                wall.Sort(); cpu.Sort();
                Console.WriteLine($"{source,-8} {name,-16} {wall[reps / 2],9:F1} {cpu[reps / 2],9:F1}");
            }
            b.Cleanup();
        }
        return 0;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _rawLabels.Dispose();
        _counter.Dispose();
        _proj.Dispose();
        _d.Dispose();
    }
}
