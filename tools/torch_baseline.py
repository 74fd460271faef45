#!/usr/bin/env python3
"""PyTorch timings of the ops that Ccr.Bench benchmarks, at the same shapes, for docs/notes/PERFORMANCE.md.

Run on the same machine (and card) as Ccr.Bench, in the same session:
    /usr/bin/python3 tools/torch_baseline.py [--device cpu|cuda] [--threads N]
Prints one line per op: median milliseconds over the timed repetitions and GFLOP/s or GB/s.

The GPU report (tools/gpu_report.sh) runs it with the case list our side wrote:
    python3 tools/torch_baseline.py --cases OUT/cases.json --json OUT/torch_kernels.json [--dry]
which times every case (conv forward / input gradient / weight gradient, GEMM, batch norm, resize,
cross-entropy, Adam, copy, the CCR pair) in its precision (tf32: TF32 allowed in cuBLAS and cuDNN;
fp32: both off) by the rule of tools/torch_timing.py, and writes one result row per case.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    import torch_requires
    torch_requires.require("torch_baseline.py", ["torch", "numpy"])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_requires  # noqa: E402
import torch_timing  # noqa: E402


bench = torch_timing.simple_median_ms


def case_op(c, dev, g):
    """The op of one case of cases.json (Ccr.Bench/Report/KernelCases.cs) as a closure over its inputs."""
    op, s = c["op"], c["shape"]

    def rnd(*shape):
        return (torch.rand(*shape, generator=g) * 2 - 1).to(dev)

    if op in ("conv_fwd", "conv_dx", "conv_dw"):
        n, cin, h, w, cout, k, stride, pad, bias = s
        x, wt = rnd(n, cin, h, w), rnd(cout, cin, k, k)
        b = rnd(cout) if bias else None
        if op == "conv_fwd":
            return lambda: F.conv2d(x, wt, b, stride, pad)
        dy = rnd(*F.conv2d(x, wt, b, stride, pad).shape)
        mask = [op == "conv_dx", op == "conv_dw", False]
        return lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, [stride, stride], [pad, pad], [1, 1],
                                                           False, [0, 0], 1, mask)
    if op == "gemm":
        m, n, k = s
        a, b, c_ = rnd(m, k), rnd(k, n), torch.empty(m, n, device=dev)
        return lambda: torch.mm(a, b, out=c_)
    if op == "bn":
        x, dy = rnd(*s).requires_grad_(), rnd(*s)
        w = torch.ones(s[1], device=dev, requires_grad=True)
        b = torch.zeros(s[1], device=dev, requires_grad=True)
        rm, rv = torch.zeros(s[1], device=dev), torch.ones(s[1], device=dev)
        return lambda: torch.autograd.grad(F.batch_norm(x, rm, rv, w, b, training=True), (x, w, b), dy)
    if op == "resize":
        n, c_, h, w, oh, ow = s
        x, dy = rnd(n, c_, h, w).requires_grad_(), rnd(n, c_, oh, ow)
        return lambda: torch.autograd.grad(F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False), (x,), dy)
    if op == "ce":
        n, k, h, w = s
        logits = rnd(n, k, h, w).requires_grad_()
        labels = torch.randint(0, k, (n, h, w), generator=g)
        labels[torch.rand(n, h, w, generator=g) < 0.1] = 255
        labels = labels.to(dev)
        return lambda: torch.autograd.grad(F.cross_entropy(logits, labels, ignore_index=255), (logits,))
    if op == "adam":
        p = rnd(s[0]).requires_grad_()
        p.grad = rnd(s[0]) * 1e-2
        opt = torch.optim.Adam([p], lr=2e-4, weight_decay=1e-4)
        return opt.step
    if op == "copy":
        x, y = rnd(s[0]), torch.empty(s[0], device=dev)
        return lambda: y.copy_(x)
    if op in ("ccr_fwd", "ccr_fwd_bwd"):
        import torch_ccr_baseline as ccr
        n, d, h, w = s
        kind = c["source"]
        proj, lab, valid = ccr.make_inputs(kind, n, d, h, w, dev, g)
        count = max(1, int(0.01 * h * w + 1e-4))
        if op == "ccr_fwd":
            def fwd():
                with torch.no_grad():
                    ccr.pair_loss(F.normalize(proj, dim=1), lab, valid, ccr.sample_anchors(valid, count), kind)
            return fwd
        proj.requires_grad_()

        def fwd_bwd():
            loss = ccr.pair_loss(F.normalize(proj, dim=1), lab, valid, ccr.sample_anchors(valid, count), kind)
            torch.autograd.grad(loss, (proj,))
        return fwd_bwd
    raise ValueError(f"unknown op {op!r} in case {c['id']}")


def run_cases(a):
    """Times every case of --cases and writes --json (result rows joined with ours by id)."""
    dev, plan = a.device, "dry" if a.dry else "gpu"
    with open(a.cases) as f:
        cases = json.load(f)["cases"]
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
            "cudnn": torch.backends.cudnn.version() if dev == "cuda" else "",
            "cudnn.benchmark": f"on; convolutions also off (ids ending {torch_requires.CUDNN_OFF})",
            "timing": f"tools/torch_timing.py plan {plan}"}
    results = []
    for c in cases:
        part = "ccr" if c["op"].startswith("ccr") else "kernel"
        # cudnn.benchmark only changes convolutions: they are timed with it on (as PyTorch's users
        # run them: cuDNN tries its algorithms once per shape) and off (PyTorch's default heuristics)
        settings = torch_requires.cudnn_settings(dev) if c["op"].startswith("conv") else [True]
        for bench_on in settings:
            rid = c["id"] if bench_on else c["id"] + torch_requires.CUDNN_OFF
            r = torch_timing.row(rid, part, c["label"] + ("" if bench_on else " (cudnn.benchmark off)"), precision=c["precision"])
            try:
                torch.backends.cudnn.benchmark = bench_on
                torch_timing.set_tf32(torch, c["precision"] == "tf32")
                g = torch.Generator().manual_seed(1)
                ms = torch_timing.median_ms(case_op(c, dev, g), sync, plan)
                r["ms"] = ms
                if c["flop"] > 0:
                    r["extra"]["gflops"] = c["flop"] / (ms * 1e6)
                if c["bytes"] > 0:
                    r["extra"]["gbs"] = c["bytes"] / (ms * 1e6)
            except Exception as e:  # one case's failure is its row; the others still run
                r["status"] = torch_timing.fail(e)
            finally:
                torch_timing.set_tf32(torch, False)
                torch.backends.cudnn.benchmark = False
                if dev == "cuda":
                    torch.cuda.empty_cache()
            results.append(r)
            torch_timing.save(a.json, "torch", meta, results)
            print(f"  {rid:<58} {('%11.4f ms' % r['ms']) if 'ms' in r else r['status']}", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", help="cases.json written by Ccr.Bench report: time those and write --json")
    ap.add_argument("--json", help="results file for --cases")
    ap.add_argument("--dry", action="store_true", help="--cases: one call per sample, 3 samples (a CPU wiring check)")
    a = ap.parse_args()
    dev = a.device
    torch_requires.require_device("torch_baseline.py", dev)
    torch.set_num_threads(a.threads)
    if a.cases:
        if not a.json:
            ap.error("--cases needs --json")
        return run_cases(a)
    torch.manual_seed(0)
    print(f"torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads")

    for m, n, k in [(512, 512, 512), (1000, 300, 77)]:
        A, B = torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)
        ms = bench(lambda: A @ B, dev)
        print(f"gemm {m}x{n}x{k}: {ms:.3f} ms, {2 * m * n * k / ms / 1e6:.1f} GFLOP/s")

    for (N, C, H, W), (co, kk), (s, p) in [((4, 18, 120, 160), (18, 3), (1, 1)), ((4, 144, 15, 20), (144, 3), (1, 1)),
                                           ((4, 3, 240, 320), (64, 3), (2, 1)), ((4, 64, 60, 80), (64, 1), (1, 0))]:
        x = torch.randn(N, C, H, W, device=dev, requires_grad=True)
        w = torch.randn(co, C, kk, kk, device=dev, requires_grad=True)
        b = torch.randn(co, device=dev, requires_grad=True)
        y = F.conv2d(x, w, b, s, p)
        flops = 2 * y.numel() * C * kk * kk
        fwd = bench(lambda: F.conv2d(x, w, b, s, p), dev)
        g = torch.randn_like(y)
        both = bench(lambda: torch.autograd.grad(F.conv2d(x, w, b, s, p), (x, w, b), g), dev)
        print(f"conv {N},{C},{H},{W}/{co},{kk}/{s},{p}: forward {fwd:.3f} ms ({flops / fwd / 1e6:.1f} GFLOP/s), "
              f"forward+backward {both:.3f} ms ({3 * flops / both / 1e6:.1f} GFLOP/s)")

    for shape in [(4, 18, 120, 160), (4, 144, 15, 20)]:
        x = torch.randn(*shape, device=dev, requires_grad=True)
        bn = torch.nn.BatchNorm2d(shape[1]).to(dev)
        g = torch.randn(*shape, device=dev)
        ms = bench(lambda: torch.autograd.grad(bn(x), (x,) + tuple(bn.parameters()), g), dev)
        print(f"batchnorm fwd+bwd {'x'.join(map(str, shape))}: {ms:.3f} ms")

    p = torch.zeros(4_000_000, device=dev, requires_grad=True)
    p.grad = torch.randn_like(p)
    opt = torch.optim.Adam([p], lr=1e-3, weight_decay=1e-4)
    ms = bench(opt.step, dev)
    print(f"adam step 4M params: {ms:.3f} ms, {4_000_000 * 4 * 7 / ms / 1e6:.1f} GB/s (7 float streams)")

    logits = torch.randn(4, 40, 120, 160, device=dev, requires_grad=True)
    labels = torch.randint(0, 40, (4, 120, 160), device=dev)
    ms = bench(lambda: torch.autograd.grad(F.cross_entropy(logits, labels, ignore_index=255), (logits,)), dev)
    print(f"cross entropy fwd+bwd 4x40x120x160: {ms:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
