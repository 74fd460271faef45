#!/usr/bin/python3
"""Golden fixtures for the CCR loss (Ccr.Tests/Fixtures/ccr/*.json), made with Debian's torch 1.13:
    /usr/bin/python3 tools/golden_ccr.py
An independent PyTorch implementation of the same definition as Ccr.Kernels/Contrastive: per anchor row,
positives are valid pixels of the anchor's class (discrete) or the k nearest valid labels (continuous,
L1 for depth, angle for normals; the anchor excluded), negatives the valid pixels of other classes or
the k farthest of the remaining pixels; the hardest positive has the largest feature distance; the
C_neg semi-hard negatives have the smallest feature distance above the positive's. Ties go to the
lower pixel index (stable sorts over index-ordered candidates). Loss: mean over existing triplets of
[D(a,p) - D(a,n) + m]_+, computed in float64 with autograd for the gradient."""
import json, math, os
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "ccr")
N, D, H, W, A, K, C, M = 2, 8, 6, 7, 4, 6, 4, 0.2
HW = H * W


def label_dist(lab, valid, anc, metric):
    """lab (L, HW), valid (HW,) bool -> (HW,) distances, NaN where invalid."""
    if not valid[anc]:
        return torch.full((HW,), float("nan"), dtype=torch.float64)
    if metric == "discrete":
        d = (lab[0] != lab[0, anc]).double()
    elif metric == "l1":
        d = (lab[0] - lab[0, anc]).abs().double()
    else:
        u = lab[:, anc:anc + 1].double()
        v = lab.double()
        cos = (u * v).sum(0) / (u.norm() * v.norm(dim=0))
        d = torch.acos(cos.clamp(-1, 1))
    d[~valid] = float("nan")
    return d


def mine(fd, ld, anc, metric):
    idx = torch.arange(HW)
    elig = (~torch.isnan(ld)) & (idx != anc)
    if metric == "discrete":
        pos = idx[elig & (ld == 0)]
        neg = idx[elig & (ld != 0)]
    else:
        e = idx[elig]
        order = torch.sort(ld[e], stable=True).indices
        pos = torch.sort(e[order[:K]]).values
        rest = torch.sort(e[order[K:]]).values
        order2 = torch.sort(-ld[rest], stable=True).indices
        neg = torch.sort(rest[order2[:K]]).values
    if len(pos) == 0:
        return -1, []
    p = int(pos[torch.sort(-fd[pos], stable=True).indices[0]])
    cand = neg[fd[neg] > fd[p]]
    chosen = cand[torch.sort(fd[cand], stable=True).indices[:C]]
    return p, sorted(int(x) for x in chosen)


def case(name, metric, labels, valid, seed):
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(N, D, HW, generator=g)
    proj = (proj / proj.norm(dim=1, keepdim=True)).float()
    anchors = []
    for b in range(N):
        v = torch.nonzero(valid[b]).flatten()
        pick = v[torch.randperm(len(v), generator=g)[:A]]
        anchors += [int(x) for x in pick]
    anchors[-1] = -1  # a row without an anchor
    pos_idx, neg_idx = [], []
    for r in range(N * A):
        b, a = r // A, anchors[r]
        if a < 0:
            pos_idx.append(-1); neg_idx += [-1] * C; continue
        fd = (proj[b] - proj[b, :, a:a + 1]).pow(2).sum(0).sqrt()  # float32, as the kernels
        ld = label_dist(labels[b], valid[b], a, metric)
        p, negs = mine(fd, ld, a, metric)
        pos_idx.append(p)
        neg_idx += (negs + [-1] * C)[:C] if p >= 0 else [-1] * C
    x = proj.double().requires_grad_(True)
    terms = []
    for r in range(N * A):
        b, a, p = r // A, anchors[r], pos_idx[r]
        if a < 0 or p < 0:
            continue
        dp = (x[b, :, a] - x[b, :, p]).norm()
        for j in range(C):
            q = neg_idx[r * C + j]
            if q >= 0:
                terms.append(torch.relu(dp - (x[b, :, a] - x[b, :, q]).norm() + M))
    loss = torch.stack(terms).mean() if terms else x.sum() * 0
    dloss = 0.7
    (loss * dloss).backward()
    out = dict(metric=metric, N=N, D=D, H=H, W=W, A=A, K=K, C=C, margin=M, dloss=dloss,
               proj=proj.flatten().tolist(), labels=labels.flatten().tolist(),
               label_channels=labels.shape[1], anchors=anchors, pos_idx=pos_idx, neg_idx=neg_idx,
               triplets=len(terms), loss=float(loss), grad=x.grad.flatten().tolist(),
               torch=torch.__version__)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(out, f)
    print(name, "loss", float(loss), "triplets", len(terms))


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    sem = torch.randint(0, 4, (N, 1, HW), generator=g).float()
    sem[torch.rand(N, 1, HW, generator=g) < 0.15] = 255
    case("semseg", "discrete", sem, sem[:, 0] != 255, 11)
    dep = torch.randint(1, 9, (N, 1, HW), generator=g).float() * 0.25  # exact in float32: ties
    dep[torch.rand(N, 1, HW, generator=g) < 0.15] = 0
    case("depth", "l1", dep, dep[:, 0] > 0, 12)
    nor = torch.randn(N, 3, HW, generator=g)
    nor = nor / nor.norm(dim=1, keepdim=True)
    nor[:, :, torch.rand(HW, generator=g) < 0.1] = 0
    case("normals", "angle", nor, nor.abs().sum(1) > 0, 13)


if __name__ == "__main__":
    main()
