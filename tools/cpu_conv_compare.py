#!/usr/bin/env python3
"""Every conv shape of the paper network's CPU step (batch 8 x 3x96x128, HRNet-W18-small-v2 + FPN 256 +
Semantic FPN 128, NYUD's four tasks), ours beside oneDNN through PyTorch, pass by pass, weighted by the
calls a step makes (issue 20's per-op table):

    PYTHON=/usr/bin/python3 python3 tools/cpu_conv_compare.py [--rounds 2] [--reps 9] [--threads 2]

Ours: `Ccr.Bench conv-passes REPS SHAPES` (CPU variant: forward, input gradient, weight gradient timed apart,
median of REPS after a warm-up); PyTorch: tools/torch_conv_baseline.py --device cpu on the same shapes
(mkldnn_convolution / convolution_backward with one output each, median of REPS). The rounds alternate the
two sides; each cell is the median over rounds. The calls per step are the step-profile's groups
(`Ccr.Bench step-profile`); the last row sums calls x ms over every shape.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

# (calls per step, "N,Cin,H,W/Cout,k/stride,padding"): every convolution of the CCR-off step (176), by step-profile's
# groups, the heaviest first
SHAPES = [
    (3, "8,256,24,32/128,3/1,1"), (1, "8,256,24,32/256,3/1,1"), (3, "8,256,12,16/128,3/1,1"),
    (6, "8,128,12,16/128,3/1,1"), (24, "8,18,24,32/18,3/1,1"), (1, "8,256,12,16/256,3/1,1"),
    (24, "8,36,12,16/36,3/1,1"), (20, "8,72,6,8/72,3/1,1"), (1, "8,256,24,32/18,3/1,1"),
    (3, "8,256,6,8/128,3/1,1"), (2, "8,64,24,32/64,3/1,1"), (8, "8,144,3,4/144,3/1,1"),
    (1, "8,256,24,32/36,3/2,1"), (3, "8,64,24,32/256,1/1,0"), (1, "8,64,48,64/64,3/2,1"),
    (1, "8,256,6,8/256,3/1,1"), (3, "8,128,6,8/128,3/1,1"), (3, "8,256,3,4/128,3/1,1"),
    (1, "8,3,96,128/64,3/2,1"), (6, "8,18,24,32/36,3/2,1"), (7, "8,18,24,32/18,3/2,1"),
    (1, "8,256,24,32/64,1/1,0"), (1, "8,18,24,32/256,1/1,0"), (1, "8,256,3,4/256,3/1,1"),
    (6, "8,36,12,16/72,3/2,1"), (3, "8,72,6,8/144,3/2,1"), (6, "8,36,12,16/18,1/1,0"),
    (5, "8,18,12,16/72,3/2,1"), (1, "8,128,24,32/1,1/1,0"), (1, "8,128,24,32/40,1/1,0"), (1, "8,64,24,32/64,1/1,0"),
    (1, "8,128,24,32/3,1/1,0"), (1, "8,36,12,16/256,1/1,0"), (5, "8,72,6,8/36,1/1,0"), (2, "8,36,12,16/36,3/2,1"),
    (2, "8,36,6,8/144,3/2,1"), (5, "8,72,6,8/18,1/1,0"), (2, "8,18,6,8/144,3/2,1"), (1, "8,72,6,8/256,1/1,0"),
    (2, "8,18,12,16/18,3/2,1"), (2, "8,144,3,4/36,1/1,0"), (1, "8,144,3,4/256,1/1,0"), (2, "8,144,3,4/72,1/1,0"),
    (2, "8,144,3,4/18,1/1,0"),
]


def ours(reps, shapes):
    out = subprocess.run(["dotnet", "run", "--project", "Ccr.Bench", "-c", "Release", "--no-build", "--", "conv-passes",
                          str(reps), *shapes], check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] in shapes:
            res[f[0]] = tuple(float(v) for v in f[1:])
    return res


def torch_side(python, reps, threads, shapes):
    out = subprocess.run([python, "tools/torch_conv_baseline.py", "--device", "cpu", "--threads", str(threads),
                          "--reps", str(reps), *shapes], check=True, capture_output=True, text=True).stdout
    res = {}
    for m in re.finditer(r"conv (\S+) (forward|dx|dw) \(cudnn.benchmark off\): ([0-9.]+) ms", out):
        res.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
    return {s: (v["forward"], v["dx"], v["dw"]) for s, v in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    python = os.environ.get("PYTHON", "python3")
    subprocess.run(["dotnet", "build", "Ccr.Bench", "-c", "Release", "-v", "q"], check=True, capture_output=True)
    shapes = [s for _, s in SHAPES]
    o_runs, t_runs = [], []
    for r in range(a.rounds):
        o_runs.append(ours(a.reps, shapes))
        t_runs.append(torch_side(python, a.reps, a.threads, shapes))
        print(f"round {r + 1} of {a.rounds} done", file=sys.stderr)

    def med(runs, s, i):
        return statistics.median(run[s][i] for run in runs)
    print("| conv (batch 8; N,Cin,H,W/Cout,k/s,p) | calls | ours fwd / dx / dw ms | oneDNN fwd / dx / dw ms | ours / oneDNN per pass |"
          " step ms, ours / oneDNN |")
    print("|---|---:|---|---|---|---:|")
    tot_o = tot_t = 0.0
    tot_p = [[0.0, 0.0] for _ in range(3)]
    for calls, s in SHAPES:
        o = [med(o_runs, s, i) for i in range(3)]
        t = [med(t_runs, s, i) for i in range(3)]
        so, st = calls * sum(o), calls * sum(t)
        tot_o += so
        tot_t += st
        for i in range(3):
            tot_p[i][0] += calls * o[i]
            tot_p[i][1] += calls * t[i]
        ratio = " / ".join(f"{x / y:.2f}" for x, y in zip(o, t))
        print(f"| {s} | {calls} | {o[0]:.2f} / {o[1]:.2f} / {o[2]:.2f} | {t[0]:.2f} / {t[1]:.2f} / {t[2]:.2f} | {ratio} |"
              f" {so:.1f} / {st:.1f} |")
    per = " / ".join(f"{p[0]:.0f} vs {p[1]:.0f}" for p in tot_p)
    print(f"| **all {sum(c for c, _ in SHAPES)} convs of a step** | | | | fwd / dx / dw: {per} ms | "
          f"**{tot_o:.0f} / {tot_t:.0f} = {tot_o / tot_t:.2f}x** |")


if __name__ == "__main__":
    main()
