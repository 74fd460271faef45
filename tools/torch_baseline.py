#!/usr/bin/env python3
"""PyTorch timings of the ops that Ccr.Bench benchmarks, at the same shapes, for docs/PERFORMANCE.md.

Run on the same machine (and card) as Ccr.Bench, in the same session:
    /usr/bin/python3 tools/torch_baseline.py [--device cpu|cuda] [--threads N]
Prints one line per op: median milliseconds over the timed repetitions and GFLOP/s or GB/s.
"""
import argparse
import time

import torch
import torch.nn.functional as F


def bench(fn, device, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    dev = a.device
    torch.set_num_threads(a.threads)
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
    main()
