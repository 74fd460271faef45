#!/usr/bin/env python3
"""PyTorch eager timing of one CCR evaluation of one task pair at the paper's scale, vectorised the
way a PyTorch user would write it, to set beside Ccr.Bench's CcrBenchmarks on the same machine:
batch 4, 128-channel unit-norm projection maps of 120x160, 192 anchors per image (gamma 0.01),
k 128, 16 semi-hard negatives, margin 0.2; hardest positive, semi-hard negatives, triplet loss.

    /usr/bin/python3 tools/torch_ccr_baseline.py [--device cpu|cuda] [--threads 2]
"""
import argparse
import time

import torch

N, D, H, W, A, K, C, M = 4, 128, 120, 160, 192, 128, 16, 0.2
HW = H * W


def ccr_forward(proj, lab, valid, anchors, kind):
    """proj (N, D, HW) unit norm; lab (N, L, HW); valid (N, HW) bool; anchors (N, A) pixel ids."""
    losses = []
    for b in range(N):
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
                u = la.t() / la.norm(dim=0)[:, None]
                v = lab[b] / lab[b].norm(dim=0).clamp_min(1e-12)
                ld = torch.acos((u @ v).clamp(-1, 1))
            ld = ld.masked_fill(~valid[b][None, :], float("nan"))
            near = torch.topk(ld.nan_to_num(float("inf")), K, dim=1, largest=False).indices
            far = torch.topk(ld.nan_to_num(float("-inf")), K, dim=1, largest=True).indices
            pos = torch.zeros_like(fd, dtype=torch.bool).scatter_(1, near, True)
            neg = torch.zeros_like(fd, dtype=torch.bool).scatter_(1, far, True) & ~pos
        pos[torch.arange(A), anchors[b]] = False
        dp = fd.masked_fill(~pos, float("-inf")).max(dim=1).values          # hardest positive
        semi = neg & (fd > dp[:, None])
        dn, _ = torch.topk(fd.masked_fill(~semi, float("inf")), C, dim=1, largest=False)
        ok = torch.isfinite(dn) & torch.isfinite(dp)[:, None]
        hinge = torch.relu(dp[:, None] - dn + M)
        losses.append(hinge[ok])
    allh = torch.cat(losses)
    return allh.mean() if allh.numel() else proj.sum() * 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = a.device
    g = torch.Generator().manual_seed(0)
    proj = torch.randn(N, D, HW, generator=g)
    proj = (proj / proj.norm(dim=1, keepdim=True)).to(dev)
    print(f"torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads")
    for kind in ["semseg", "depth", "normals"]:
        L = 3 if kind == "normals" else 1
        if kind == "semseg":
            lab = torch.randint(0, 40, (N, 1, HW), generator=g).float()
        elif kind == "depth":
            lab = torch.rand(N, 1, HW, generator=g) * 9.5 + 0.5
        else:
            lab = torch.randn(N, 3, HW, generator=g)
        valid = torch.rand(N, HW, generator=g) > 0.1
        lab, valid = lab.to(dev), valid.to(dev)
        anchors = torch.stack([torch.nonzero(valid[b]).flatten()[torch.randperm(int(valid[b].sum()), generator=g)[:A].to(dev)]
                               for b in range(N)])
        times, cpu = [], []
        for r in range(a.reps + 1):
            t, c = time.perf_counter(), time.process_time()
            with torch.no_grad():
                ccr_forward(proj, lab, valid, anchors, kind)
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
