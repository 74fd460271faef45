#!/usr/bin/env python3
"""PyTorch (cuDNN on a GPU) timings of conv2d forward, input gradient and weight gradient, each on its own,
at the shapes of Ccr.Bench's ConvPassBenchmarks (the paper's HRNet-W18-small-v2 + FPN decoders at batch 4,
480x640 input), in fp32 or TF32, for docs/notes/PERFORMANCE.md.

Run on the same machine (and card) as Ccr.Bench, in the same session:
    python3 tools/torch_conv_baseline.py --device cuda --precision fp32
    python3 tools/torch_conv_baseline.py --device cuda --precision tf32
    /usr/bin/python3 tools/torch_conv_baseline.py --device cpu --threads 2 --shapes 2,3
    /usr/bin/python3 tools/torch_conv_baseline.py --device cpu --threads 2 8,256,24,32/128,3/1,1   (conv-passes' shapes)
Prints one line per shape, pass and cudnn.benchmark setting (on, as PyTorch's users run convolutions, and
off, PyTorch's default): median milliseconds and TFLOP/s (2 N Cout OH OW Cin k k per pass).
The gradients are timed through aten.convolution_backward with one output each, the op autograd calls.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    import torch_requires
    torch_requires.require("torch_conv_baseline.py", ["torch", "numpy"])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_requires  # noqa: E402
import torch_timing  # noqa: E402

# N, Cin, H, W / Cout, k / stride, padding: the same strings as ConvPassBenchmarks
SHAPES = [
    "4,3,480,640/64,3/2,1",
    "4,64,240,320/64,3/2,1",
    "4,18,120,160/18,3/1,1",
    "4,36,60,80/36,3/1,1",
    "4,144,15,20/144,3/1,1",
    "4,18,120,160/36,3/2,1",
    "4,256,120,160/256,3/1,1",
    "4,128,60,80/128,3/1,1",
]


bench = torch_timing.simple_median_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp32", "tf32"], default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--shapes", default="", help="comma-separated indices into the shape list (default: all)")
    ap.add_argument("shape", nargs="*", help="shapes as Ccr.Bench conv-passes takes them (N,Cin,H,W/Cout,k/stride,padding); "
                    "replace the list")
    a = ap.parse_args()
    dev = a.device
    torch_requires.require_device("torch_conv_baseline.py", dev)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    tf32 = a.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if dev == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}, {a.precision}")
    picked = a.shape or ([SHAPES[int(i)] for i in a.shapes.split(",")] if a.shapes else SHAPES)
    for shape in picked:
        xs, ws, sp = shape.split("/")
        n, c, h, w = map(int, xs.split(","))
        co, k = map(int, ws.split(","))
        s, p = map(int, sp.split(","))
        x = torch.randn(n, c, h, w, device=dev)
        wt = torch.randn(co, c, k, k, device=dev)
        y = F.conv2d(x, wt, None, s, p)
        dy = torch.randn_like(y)
        flops = 2 * y.numel() * c * k * k

        def grad(mask):
            return torch.ops.aten.convolution_backward(dy, x, wt, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)
        for bench_on in torch_requires.cudnn_settings(dev):
            torch.backends.cudnn.benchmark = bench_on
            fwd = bench(lambda: F.conv2d(x, wt, None, s, p), dev, a.reps)
            dx = bench(lambda: grad([True, False, False]), dev, a.reps)
            dw = bench(lambda: grad([False, True, False]), dev, a.reps)
            for label, ms in (("forward", fwd), ("dx", dx), ("dw", dw)):
                print(f"conv {shape} {label} (cudnn.benchmark {'on' if bench_on else 'off'}): {ms:.4f} ms, "
                      f"{flops / ms / 1e9:.3f} TFLOP/s")
        torch.backends.cudnn.benchmark = False


if __name__ == "__main__":
    main()
