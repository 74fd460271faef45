using System.Text.Json;

namespace Ccr.Bench.Report;

/// <summary>
/// One kernel-level case both sides time: an op at a shape and a precision. Written to cases.json
/// by <c>Ccr.Bench report</c>, read by tools/torch_baseline.py, so both sides time the same list.
/// Shape by op: conv_fwd / conv_dx / conv_dw [N, Cin, H, W, Cout, K, stride, padding, bias 0|1];
/// gemm [M, N, K]; bn [N, C, H, W] (training forward + backward); resize [N, C, H, W, OH, OW]
/// (bilinear, align_corners false, forward + backward); ce [N, classes, H, W] (cross-entropy,
/// ignore 255, forward + backward); adam [parameters]; copy [floats] (device to device);
/// ccr_fwd / ccr_fwd_bwd [N, D, H, W] with <see cref="Source"/> the label kind (one task pair).
/// <see cref="Flop"/> (compute-bound ops) and <see cref="Bytes"/> (the compulsory traffic of
/// memory-bound ops) turn a time into GFLOP/s or GB/s, by the same formula on both sides.
/// </summary>
public sealed record KernelCase(string Id, string Op, string Label, string Precision, int[] Shape,
                                double Flop, double Bytes, string? Source = null)
{
    public string ShapeText => Op switch
    {
        "conv_fwd" or "conv_dx" or "conv_dw" =>
            $"{Shape[0]}x{Shape[1]}x{Shape[2]}x{Shape[3]} -> {Shape[4]}, k{Shape[5]} s{Shape[6]}",
        "gemm" => $"{Shape[0]}x{Shape[1]}x{Shape[2]}",
        "resize" => $"{Shape[0]}x{Shape[1]}x{Shape[2]}x{Shape[3]} -> {Shape[4]}x{Shape[5]}",
        "adam" => $"{Shape[0]:N0} params",
        "copy" => $"{Shape[0]:N0} floats",
        _ => string.Join("x", Shape),
    };
}

/// <summary>The cases at the paper's shapes (batch 4, 480x640 NYUD crops: HRNet-W18-small-v2's
/// stem at 240x320 and 120x160, branches of 18-144 channels at 120x160 .. 15x20; FPN 256 and
/// Semantic FPN 128 at 120x160 .. 15x20; CCR at 120x160), or tiny versions for the CPU dry run.</summary>
public static class KernelCases
{
    /// <summary>Convolutions of the paper model, named by where they run:
    /// (name, Cin, H, W (input), Cout, K, stride, bias).</summary>
    static readonly (string Name, int Cin, int H, int W, int Cout, int K, int S, bool Bias)[] Convs =
    [
        ("stem.conv1", 3, 480, 640, 64, 3, 2, false),
        ("stem.conv2", 64, 240, 320, 64, 3, 2, false),
        ("layer1.conv1x1.256-64", 256, 120, 160, 64, 1, 1, false),
        ("layer1.conv3x3.64", 64, 120, 160, 64, 3, 1, false),
        ("layer1.conv1x1.64-256", 64, 120, 160, 256, 1, 1, false),
        ("transition1.256-18", 256, 120, 160, 18, 3, 1, false),
        ("branch.18", 18, 120, 160, 18, 3, 1, false),
        ("branch.36", 36, 60, 80, 36, 3, 1, false),
        ("branch.72", 72, 30, 40, 72, 3, 1, false),
        ("branch.144", 144, 15, 20, 144, 3, 1, false),
        ("fuse.down.18-36", 18, 120, 160, 36, 3, 2, false),
        ("fuse.up.36-18", 36, 60, 80, 18, 1, 1, false),
        ("fpn.lateral.18-256", 18, 120, 160, 256, 1, 1, true),
        ("fpn.out.256@120x160", 256, 120, 160, 256, 3, 1, true),
        ("fpn.out.256@60x80", 256, 60, 80, 256, 3, 1, true),
        ("sfpn.256-128@120x160", 256, 120, 160, 128, 3, 1, false),
        ("sfpn.128-128@60x80", 128, 60, 80, 128, 3, 1, false),
        ("head.cls.128-40", 128, 120, 160, 40, 1, 1, true),
        ("ccr.proj.128-128", 128, 120, 160, 128, 1, 1, true),
    ];

    public static List<KernelCase> For(bool dry, long adamParameters)
    {
        // dry: batch 1 and 1/8 of each side (the stem's 480x640 becomes 60x80), small GEMM
        int n = dry ? 1 : 4, div = dry ? 8 : 1;
        int Sz(int v) => Math.Max(4, v / div);
        var r = new List<KernelCase>();
        foreach (var precision in new[] { "fp32", "tf32" })
        {
            foreach (var c in Convs)
            {
                int h = Sz(c.H), w = Sz(c.W), pad = c.K / 2;
                int oh = (h + 2 * pad - c.K) / c.S + 1, ow = (w + 2 * pad - c.K) / c.S + 1;
                double flop = 2.0 * n * c.Cout * oh * ow * c.Cin * c.K * c.K;
                int[] shape = [n, c.Cin, h, w, c.Cout, c.K, c.S, pad, c.Bias ? 1 : 0];
                foreach (var (op, pass) in new[] { ("conv_fwd", "fwd"), ("conv_dx", "dx"), ("conv_dw", "dw") })
                    r.Add(new KernelCase($"conv.{c.Name}.{pass}.{precision}", op, $"conv {pass} {c.Name}", precision, shape, flop, 0));
            }
            foreach (var (m, nn, k) in dry ? new[] { (128, 128, 128) } : new[] { (4096, 4096, 4096), (512, 512, 512) })
                r.Add(new KernelCase($"gemm.{m}x{nn}x{k}.{precision}", "gemm", "gemm", precision, [m, nn, k], 2.0 * m * nn * k, 0));
        }
        const double F = 4; // bytes per float
        foreach (var (c, h, w) in new[] { (18, 120, 160), (64, 120, 160), (144, 15, 20), (128, 120, 160), (256, 120, 160) })
        {
            int hh = Sz(h), ww = Sz(w);
            double numel = (double)n * c * hh * ww;
            // forward: read x for the statistics, read x and write y; backward: read dy and x for
            // the reductions, read dy and x and write dx
            r.Add(new KernelCase($"bn.{c}@{h}x{w}", "bn", "batch norm fwd+bwd (train)", "fp32", [n, c, hh, ww], 0, 8 * numel * F));
        }
        foreach (var (c, h, w, oh, ow) in new[] { (128, 60, 80, 120, 160), (40, 120, 160, 480, 640) })
        {
            int[] s = [n, c, Sz(h), Sz(w), Sz(oh), Sz(ow)];
            double small = (double)n * c * s[2] * s[3], big = (double)n * c * s[4] * s[5];
            r.Add(new KernelCase($"resize.bilinear.{c}@{h}x{w}-{oh}x{ow}", "resize", "bilinear resize fwd+bwd", "fp32", s, 0, 2 * (small + big) * F));
        }
        {
            int[] s = [n, 40, Sz(480), Sz(640)];
            double numel = (double)s[0] * s[1] * s[2] * s[3];
            r.Add(new KernelCase("ce.40@480x640", "ce", "cross-entropy fwd+bwd", "fp32", s, 0, 3 * numel * F));
        }
        r.Add(new KernelCase("adam.model", "adam", "Adam step (the paper model's parameters)", "fp32",
                             [checked((int)adamParameters)], 0, 28.0 * adamParameters));
        {
            int floats = n * 256 * Sz(120) * Sz(160);
            r.Add(new KernelCase("copy.256@120x160", "copy", "device-to-device copy", "fp32", [floats], 0, 2.0 * floats * F));
        }
        int ch = Sz(120), cw = Sz(160);
        foreach (var src in new[] { "semseg", "depth", "normals" })
        {
            r.Add(new KernelCase($"ccr.fwd.{src}", "ccr_fwd", $"CCR one pair, forward ({src} labels)", "fp32", [n, 128, ch, cw], 0, 0, src));
            r.Add(new KernelCase($"ccr.fwd_bwd.{src}", "ccr_fwd_bwd", $"CCR one pair, fwd+bwd ({src} labels)", "fp32", [n, 128, ch, cw], 0, 0, src));
        }
        return r;
    }

    public static void Save(string path, IReadOnlyList<KernelCase> cases) =>
        File.WriteAllText(path, JsonSerializer.Serialize(new { cases }, ResultFile.Json));
}
