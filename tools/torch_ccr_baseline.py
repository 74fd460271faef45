#!/usr/bin/env python3
"""PyTorch eager timing of one CCR evaluation of one task pair at the paper's scale, vectorised the
way a PyTorch user would write it, to set beside Ccr.Bench's CcrBenchmarks on the same machine:
batch 4, 128-channel unit-norm projection maps of 120x160, 192 anchors per image (gamma 0.01),
k 128, 16 semi-hard negatives, margin 0.2; hardest positive, semi-hard negatives, triplet loss.

    /usr/bin/python3 tools/torch_ccr_baseline.py [--device cpu|cuda] [--threads 2]

`pair_loss` and `sample_anchors` are also the CCR of tools/torch_step_baseline.py (the training step)
and of tools/torch_baseline.py --cases (the report's ccr.* rows).
"""
import argparse
import os
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_requires
    torch_requires.require("torch_ccr_baseline.py", ["torch"])

import torch  # noqa: E402

N, D, H, W, A, K, C, M = 4, 128, 120, 160, 192, 128, 16, 0.2
HW = H * W


def pair_loss(proj, lab, valid, anchors, kind, k=K, negs=C, margin=M):
    """Mean triplet loss of one (target, source) pair.
    proj (N, D, HW) unit norm; lab (N, L, HW) source labels; valid (N, HW) bool; anchors (N, A) pixel
    ids; kind: semseg (positives share the class) or depth / normals (positives: the k nearest labels,
    L1 / angle; negatives: the k farthest). Hardest positive, then the `negs` nearest negatives that are
    farther than it (semi-hard), hinge with `margin`, mean over the valid triplets."""
    n, a = anchors.shape
    losses = []
    for b in range(n):
        f = proj[b].t()                                   # (HW, D)
        fa = f[anchors[b]]                                # (A, D)
        fd = torch.cdist(fa, f)                           # (A, HW) feature distances
        la = lab[b][:, anchors[b]]                        # (L, A)
        if kind == "semseg":
            same = la[0][:, None] == lab[b][0][None, :]
            pos = same & valid[b][None, :]
            neg = ~same & valid[b][None, :]
        else:
            if kind == "depth":
                ld = (la[0][:, None] - lab[b][0][None, :]).abs()
            else:
                u = la.t() / la.norm(dim=0).clamp_min(1e-12)[:, None]
                v = lab[b] / lab[b].norm(dim=0).clamp_min(1e-12)
                ld = torch.acos((u @ v).clamp(-1, 1))
            ld = ld.masked_fill(~valid[b][None, :], float("nan"))
            kk = min(k, ld.shape[1])
            near = torch.topk(ld.nan_to_num(float("inf")), kk, dim=1, largest=False).indices
            far = torch.topk(ld.nan_to_num(float("-inf")), kk, dim=1, largest=True).indices
            pos = torch.zeros_like(fd, dtype=torch.bool).scatter_(1, near, True) & valid[b][None, :]
            neg = torch.zeros_like(fd, dtype=torch.bool).scatter_(1, far, True) & ~pos & valid[b][None, :]
        pos[torch.arange(a, device=fd.device), anchors[b]] = False
        dp = fd.masked_fill(~pos, float("-inf")).max(dim=1).values          # hardest positive
        semi = neg & (fd > dp[:, None])
        dn, _ = torch.topk(fd.masked_fill(~semi, float("inf")), min(negs, fd.shape[1]), dim=1, largest=False)
        ok = torch.isfinite(dn) & torch.isfinite(dp)[:, None]
        hinge = torch.relu(dp[:, None] - dn + margin)
        losses.append(hinge[ok])
    allh = torch.cat(losses)
    return allh.mean() if allh.numel() else proj.sum() * 0


def sample_anchors(valid, count):
    """(N, count) pixel ids drawn uniformly without replacement among each image's valid pixels,
    on the device (no host round trip)."""
    return torch.multinomial(valid.float(), count, replacement=False)


def make_inputs(kind, n, d, h, w, device, generator):
    """A unit-norm projection map and random labels of one kind (~10% invalid), as Ccr.Bench's
    report (KernelRunner.TimeCcrPair) makes them."""
    hw = h * w
    proj = torch.randn(n, d, hw, generator=generator)
    proj = proj / proj.norm(dim=1, keepdim=True)
    if kind == "semseg":
        lab = torch.randint(0, 40, (n, 1, hw), generator=generator).float()
        inval = torch.rand(n, 1, hw, generator=generator) < 0.1
        lab[inval] = 255
        valid = lab[:, 0] != 255
    elif kind == "depth":
        lab = torch.rand(n, 1, hw, generator=generator) * 9.5 + 0.5
        lab[torch.rand(n, 1, hw, generator=generator) < 0.1] = 0
        valid = lab[:, 0] > 0
    else:
        lab = torch.randn(n, 3, hw, generator=generator)
        valid = lab.norm(dim=1) > 0
    return proj.to(device), lab.to(device), valid.to(device)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    import torch_requires
    torch_requires.require_device("torch_ccr_baseline.py", a.device)
    torch.set_num_threads(a.threads)
    dev = a.device
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads")
    for kind in ["semseg", "depth", "normals"]:
        proj, lab, valid = make_inputs(kind, N, D, H, W, dev, g)
        anchors = sample_anchors(valid, A)
        times, cpu = [], []
        for r in range(a.reps + 1):
            t, c = time.perf_counter(), time.process_time()
            with torch.no_grad():
                pair_loss(proj, lab, valid, anchors, kind)
            if dev == "cuda":
                torch.cuda.synchronize()
            if r > 0:
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
        times.sort()
        cpu.sort()
        print(f"ccr forward, {kind} labels: {times[len(times) // 2] * 1e3:.1f} ms wall, "
              f"{cpu[len(cpu) // 2] * 1e3:.1f} ms process CPU time")


if __name__ == "__main__":
    main()
