using BenchmarkDotNet.Attributes;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Ccr;

namespace Ccr.Bench.Benchmarks;

/// <summary>
/// One CCR evaluation of one task pair at the paper's scale: batch 4, 128-channel L2-normalised
/// projection maps of 120x160, gamma 0.01 (192 anchors per image), k 128, 16 semi-hard negatives:
/// distance matrices, mining, triplet loss and its reduction (Forward), and the same plus the
/// backward scatter (ForwardBackward), for each label kind. Anchors are sampled on the host from the
/// validity mask as in training. For reference, PyTorch eager on an H200 spends 1.2-1.5 ms per task
/// pair on the forward of this.
/// </summary>
public class CcrBenchmarks
{
    [Params("semseg", "depth", "normals")]
    public string Source { get; set; } = "semseg";

    const int N = 4, D = 128, H = 120, W = 160;
    Device _d = null!;
    Tensor _proj = null!;
    TaskLabels _labels = null!;
    readonly CcrConfig _cfg = new();
    Rng _rng = null!;

    [GlobalSetup]
    public void Setup()
    {
        _d = Device.Create(verbose: true);
        _rng = new Rng(1);
        var p = new float[N * D * H * W];
        for (int i = 0; i < p.Length; i++) p[i] = (float)_rng.NextGaussian();
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
        int l = Source == "normals" ? 3 : 1;
        var lab = new float[N * l * H * W];
        for (int i = 0; i < lab.Length; i++)
            lab[i] = Source switch
            {
                "semseg" => _rng.NextFloat() < 0.1f ? 255f : _rng.NextInt(40),
                "depth" => _rng.NextFloat() < 0.1f ? 0f : _rng.Uniform(0.5f, 10f),
                _ => (float)_rng.NextGaussian(),
            };
        _labels = TaskLabels.Create(_d, Source, lab, N, H, W);
        _ = _labels.DeviceValues; _ = _labels.DeviceValid; // uploaded once, as a step's labels are
        Forward(); ForwardBackward(); // load kernels
    }

    [Benchmark]
    public float Forward()
    {
        using var scope = new TensorScope();
        var anchors = CcrOps.SampleAnchors(_rng, _labels, _cfg.AnchorsPerImage(H, W));
        using (new NoGrad()) CcrOps.PairLoss(_proj, _labels, anchors, _cfg, _rng.NextUInt(), out _);
        _d.Synchronize();
        return 0;
    }

    [Benchmark]
    public float ForwardBackward()
    {
        using var scope = new TensorScope();
        var anchors = CcrOps.SampleAnchors(_rng, _labels, _cfg.AnchorsPerImage(H, W));
        var loss = CcrOps.PairLoss(_proj, _labels, anchors, _cfg, _rng.NextUInt(), out _);
        loss.Backward();
        _proj.ZeroGrad();
        _d.Synchronize();
        return 0;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _labels.Dispose();
        _proj.Dispose();
        _d.Dispose();
    }
}
