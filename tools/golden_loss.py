#!/usr/bin/python3
"""PyTorch goldens for the task losses and optimisers (Ccr.Tests/Fixtures/loss/*.json).

Run with Debian's torch 1.13: /usr/bin/python3 tools/golden_loss.py
Inputs are float32 values; losses and gradients are computed in float64 from them. The edge loss is
ATRC / InvPT's BalancedBinaryCrossEntropyLoss with a fixed pos_weight, written out as they write it.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "loss")
g = torch.Generator().manual_seed(1234)


def f32(t):
    return t.float().double()


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f)
    print("wrote", name)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def cross_entropy(weighted):
    N, C, H, W = 2, 5, 3, 4
    x = f32(torch.randn(N, C, H, W, generator=g) * 2).requires_grad_()
    y = torch.randint(0, C, (N, H, W), generator=g)
    y[0, 0, :3] = 255
    y[1, 2, 1] = 255
    w = f32(torch.rand(C, generator=g) + 0.2) if weighted else None
    loss = F.cross_entropy(x, y, weight=w, ignore_index=255, reduction="mean")
    loss.backward()
    obj = {"shape": [N, C, H, W], "logits": flat(x), "labels": [int(v) for v in y.reshape(-1).tolist()],
           "loss": loss.item(), "grad": flat(x.grad)}
    if weighted:
        obj["weights"] = flat(w)
    dump("ce_weighted.json" if weighted else "ce_ignore.json", obj)


def masked_l1():
    N, C, H, W = 2, 3, 3, 5
    p = f32(torch.randn(N, C, H, W, generator=g)).requires_grad_()
    t = f32(torch.randn(N, C, H, W, generator=g))
    t[0, 1, 0, 0] = 255    # one ignored channel invalidates the pixel
    t[1, :, 2, 3] = 255
    t[0, :, 1, 2] = 0      # all-zero target: invalid (depth 0, zero normal)
    t[1, 0, 0, 1] = 0      # a single zero channel stays valid
    mask = (t != 255).all(dim=1, keepdim=True) & (t != 0).any(dim=1, keepdim=True)
    mask = mask.expand_as(t)
    n_valid = mask[:, 0].sum().item()
    loss = F.l1_loss(torch.masked_select(p, mask), torch.masked_select(t, mask), reduction="sum") / max(n_valid, 1)
    loss.backward()
    dump("masked_l1.json", {"shape": [N, C, H, W], "pred": flat(p), "target": flat(t), "loss": loss.item(),
                            "grad": flat(p.grad)})


def balanced_bce():
    N, H, W = 2, 4, 5
    w = 0.95
    x = f32(torch.randn(N, 1, H, W, generator=g) * 3).requires_grad_()
    t = (torch.rand(N, 1, H, W, generator=g) > 0.7).double()
    t[0, 0, 0, :2] = 255
    t[1, 0, 3, 4] = 255
    # ATRC / InvPT BalancedBinaryCrossEntropyLoss(pos_weight=w).forward, reduction='mean'
    mask = t != 255
    ml, mo = torch.masked_select(t, mask), torch.masked_select(x, mask)
    wt = torch.as_tensor(w, dtype=torch.float64)
    factor = 1.0 / (1 - wt)
    loss = F.binary_cross_entropy_with_logits(mo, ml, pos_weight=wt * factor, reduction="mean") / factor
    loss.backward()
    dump("balanced_bce.json", {"shape": [N, 1, H, W], "pos_weight": w, "logits": flat(x), "target": flat(t),
                               "loss": loss.item(), "grad": flat(x.grad)})


def optimisers():
    n, steps = 7, 5
    p0 = f32(torch.randn(n, generator=g))
    grads = [f32(torch.randn(n, generator=g)) for _ in range(steps)]
    cases = {
        "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
        "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, weight_decay=1e-3, nesterov=True),
    }
    obj = {"p0": flat(p0), "grads": [flat(gr) for gr in grads]}
    for name, make in cases.items():
        p = torch.nn.Parameter(p0.clone())
        opt = make([p])
        traj = []
        for s in range(steps):
            p.grad = grads[s].clone()
            opt.step()
            traj.append(flat(p))
        obj[name] = traj
    dump("optim.json", obj)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    cross_entropy(False)
    cross_entropy(True)
    masked_l1()
    balanced_bce()
    optimisers()
