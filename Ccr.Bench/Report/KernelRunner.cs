using Ccr.Kernels.Ops;
using Ccr.Kernels;
using Ccr.Nn;
using Ccr.Nn.Contrastive;
using Ccr.Nn.Functional;
using Ccr.Nn.Optim;
using ILGPU.Runtime;
using Device = Ccr.Kernels.Device;

namespace Ccr.Bench.Report;

/// <summary>
/// Times each <see cref="KernelCase"/> on our side. Convolutions and GEMM call the kernel layer
/// (forward, input gradient and weight gradient separately, as cuDNN's three calls); batch norm,
/// resize and cross-entropy go through the functional ops with autograd (forward + backward from a
/// random upstream gradient, as torch.autograd.grad does); Adam is the optimiser's one launch over a
/// flat arena; CCR is the regulariser on one task pair (<see cref="CcrLoss"/> with the paper's
/// gamma, k, negatives and margin, no projector: the projection map is given, as in
/// tools/torch_ccr_baseline.py). A failing case becomes a FAIL row; the others still run.
/// </summary>
public static class KernelRunner
{
    public static void Run(Device d, IReadOnlyList<KernelCase> cases, TimingPlan plan, Action<ResultRow> done)
    {
        foreach (var c in cases)
        {
            var row = new ResultRow { Id = c.Id, Part = c.Op.StartsWith("ccr") ? "ccr" : "kernel", What = c.Label, Shape = c.ShapeText, Precision = c.Precision };
            try
            {
                GC.Collect(); // the previous case's host arrays: no collection inside this one's timing
                row.Ms = Time(d, c, ParsePrecision(c.Precision), plan);
                if (c.Flop > 0) row.Extra["gflops"] = c.Flop / (row.Ms.Value * 1e6);
                if (c.Bytes > 0) row.Extra["gbs"] = c.Bytes / (row.Ms.Value * 1e6);
            }
            catch (Exception e)
            {
                row.Status = ResultRow.Fail(e);
            }
            done(row);
        }
    }

    /// <summary>A case's precision as the device's setting (conv and GEMM of the CUDA variant; the
    /// CPU variant computes fp32 whatever it says).</summary>
    public static MathPrecision ParsePrecision(string p) => p switch
    {
        "fp32" => MathPrecision.Fp32,
        "tf32" => MathPrecision.Tf32,
        _ => throw new ArgumentException($"precision must be fp32 or tf32, got '{p}'"),
    };

    static double Time(Device d, KernelCase c, MathPrecision precision, TimingPlan plan)
    {
        var rng = new Rng(7);
        using var scope = new TensorScope();
        Tensor Rand(params int[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = rng.Uniform(-1f, 1f);
            return Tensor.FromArray(d, a, shape);
        }
        var s = c.Shape;
        switch (c.Op)
        {
            case "conv_fwd" or "conv_dx" or "conv_dw":
            {
                int n = s[0], cin = s[1], h = s[2], w = s[3], cout = s[4], k = s[5], stride = s[6], pad = s[7];
                bool bias = s[8] != 0;
                var g = ConvGeom.From([n, cin, h, w], [cout, cin, k, k], bias ? cout : null, stride, pad, 1);
                // only what the pass reads and writes: random inputs cost host time at these sizes
                var wt = Rand(cout, cin, k, k);
                Action op;
                if (c.Op == "conv_fwd")
                {
                    var x = Rand(n, cin, h, w);
                    var b = bias ? Rand(cout) : null;
                    var y = Tensor.Empty(d, n, cout, g.OH, g.OW);
                    op = () => Convolution.Forward(d, y.Data, x.Data, wt.Data, b?.Data, g, precision: precision);
                }
                else if (c.Op == "conv_dx")
                {
                    var dy = Rand(n, cout, g.OH, g.OW);
                    var dx = Tensor.Empty(d, n, cin, h, w);
                    op = () => Convolution.BackwardInput(d, dx.Data, dy.Data, wt.Data, g, precision: precision);
                }
                else
                {
                    var dy = Rand(n, cout, g.OH, g.OW);
                    var x = Rand(n, cin, h, w);
                    var dw = Tensor.Empty(d, cout, cin, k, k);
                    op = () => Convolution.BackwardWeight(d, dw.Data, dy.Data, x.Data, g, precision: precision);
                }
                return Timing.MedianMs(op, d.Synchronize, plan);
            }
            case "gemm":
            {
                int m = s[0], n = s[1], k = s[2];
                var a = Rand(m, k);
                var b = Rand(k, n);
                var cc = Tensor.Empty(d, m, n);
                return Timing.MedianMs(() => Gemm.Run(d, cc.Data, a.Data, b.Data, m, n, k, precision: precision), d.Synchronize, plan);
            }
            case "bn":
            {
                var x = Rand(s); x.RequiresGrad = true;
                var dy = Rand(s);
                var w = Tensor.Full(d, 1f, s[1]); w.RequiresGrad = true;
                var b = Tensor.Zeros(d, s[1]); b.RequiresGrad = true;
                var rm = Tensor.Zeros(d, s[1]);
                var rv = Tensor.Full(d, 1f, s[1]);
                return Timing.MedianMs(() =>
                {
                    using var step = new TensorScope();
                    F.BatchNorm2d(x, w, b, rm, rv, training: true).Backward(dy);
                }, d.Synchronize, plan);
            }
            case "resize":
            {
                var x = Rand(s[0], s[1], s[2], s[3]); x.RequiresGrad = true;
                var dy = Rand(s[0], s[1], s[4], s[5]);
                return Timing.MedianMs(() =>
                {
                    using var step = new TensorScope();
                    F.ResizeBilinear(x, s[4], s[5]).Backward(dy);
                }, d.Synchronize, plan);
            }
            case "ce":
            {
                var logits = Rand(s); logits.RequiresGrad = true;
                var lab = new int[s[0] * s[2] * s[3]];
                for (int i = 0; i < lab.Length; i++) lab[i] = rng.NextFloat() < 0.1f ? 255 : rng.NextInt(s[1]);
                var labels = Tensor.FromLabels(d, lab, s[1], [s[0], s[2], s[3]]);
                return Timing.MedianMs(() =>
                {
                    using var step = new TensorScope();
                    F.CrossEntropy(logits, labels).Backward();
                }, d.Synchronize, plan);
            }
            case "adam":
            {
                var p = Rand(s[0]); p.RequiresGrad = true;
                using var arena = new ParameterArena([p]);
                var grads = new float[s[0]];
                for (int i = 0; i < grads.Length; i++) grads[i] = rng.Uniform(-1e-2f, 1e-2f);
                arena.Grads.Data.CopyFrom(grads);
                using var adam = new Adam(arena, 2e-4f, weightDecay: 1e-4f);
                return Timing.MedianMs(adam.Update, d.Synchronize, plan);
            }
            case "copy":
            {
                var x = Rand(s[0]);
                var y = Tensor.Empty(d, s[0]);
                return Timing.MedianMs(() => { var dst = y.Data.View; x.Data.View.CopyTo(d.Stream, in dst); }, d.Synchronize, plan);
            }
            case "ccr_fwd" or "ccr_fwd_bwd":
                return TimeCcrPair(d, c, precision, plan, rng);
            default:
                throw new ArgumentException($"unknown op '{c.Op}' in case {c.Id}");
        }
    }

    /// <summary>One CCR task pair: the target's unit-norm projection map (N, D, H, W) against the
    /// source's labels at the same size (random classes / depths / normals, ~10% invalid; the same
    /// recipe as tools/torch_ccr_baseline.py).</summary>
    static double TimeCcrPair(Device d, KernelCase c, MathPrecision precision, TimingPlan plan, Rng rng)
    {
        int n = c.Shape[0], dim = c.Shape[1], h = c.Shape[2], w = c.Shape[3], hw = h * w;
        string source = c.Source ?? throw new ArgumentException($"{c.Id}: no label kind");
        string target = source == "semseg" ? "depth" : "semseg";
        var p = new float[n * dim * hw];
        for (int i = 0; i < p.Length; i++) p[i] = (float)rng.NextGaussian();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++)
            {
                double ss = 0;
                for (int k = 0; k < dim; k++) ss += (double)p[(b * dim + k) * hw + i] * p[(b * dim + k) * hw + i];
                float inv = (float)(1 / Math.Sqrt(ss));
                for (int k = 0; k < dim; k++) p[(b * dim + k) * hw + i] *= inv;
            }
        var proj = Tensor.FromArray(d, p, n, dim, h, w);
        bool backward = c.Op == "ccr_fwd_bwd";
        proj.RequiresGrad = backward;
        int l = source == "normals" ? 3 : 1;
        var lab = new float[n * l * hw];
        for (int i = 0; i < lab.Length; i++)
            lab[i] = source switch
            {
                "semseg" => rng.NextFloat() < 0.1f ? 255f : rng.NextInt(40),
                "depth" => rng.NextFloat() < 0.1f ? 0f : rng.Uniform(0.5f, 10f),
                _ => (float)rng.NextGaussian(),
            };
        using var labels = TaskLabels.Create(d, source, lab, n, h, w);
        var cfg = new CcrConfig { Sharing = ProjectorSharing.None, RampEpochs = 0 };
        var ccr = new CcrLoss(d, new Rng(3), cfg, [(target, dim), (source, dim)]);
        ccr.To(precision); // its projectors' convs, as the training session sets them
        var features = new Dictionary<string, Tensor> { [target] = proj };
        var labelMap = new Dictionary<string, TaskLabels> { [source] = labels };
        // the step's host part once (as the trainer does before each step): the pair and lambda's upload
        List<(string, string)> pairs = [(target, source)];
        ccr.SetLambda(1.0);
        ccr.Scalars.Upload();
        try
        {
            return Timing.MedianMs(() =>
            {
                using var step = new TensorScope();
                if (backward)
                {
                    var (loss, _) = ccr.Forward(features, labelMap, pairs, 1.0);
                    loss.Backward();
                }
                else
                {
                    using var ng = new NoGrad();
                    ccr.Forward(features, labelMap, pairs, 1.0);
                }
            }, d.Synchronize, plan);
        }
        finally { ccr.DisposeTensors(); }
    }
}
