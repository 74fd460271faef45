#!/usr/bin/python3
"""PyTorch goldens for the norm family (batch norm 2d, bilinear and nearest resize).

Run with Debian's torch:  /usr/bin/python3 tools/golden_norm.py
Writes Ccr.Tests/Fixtures/norm/*.json: each file maps a tensor name to {"shape": [...], "data": [...]}
(float32 values, row-major NCHW). The C# tests read these; they never need Python.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "norm")


def t2j(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def save(name, tensors):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({k: t2j(v) for k, v in tensors.items()}, f)
    print("wrote", name)


def batch_norm():
    g = torch.Generator().manual_seed(1)
    n, c, h, w = 2, 3, 5, 7
    x = (torch.randn(n, c, h, w, generator=g) * 2.0 + 0.5)
    weight = torch.rand(c, generator=g) + 0.5
    bias = torch.randn(c, generator=g)
    rm0 = torch.randn(c, generator=g) * 0.1
    rv0 = torch.rand(c, generator=g) + 0.5
    dy = torch.randn(n, c, h, w, generator=g)

    xg = x.clone().requires_grad_(True)
    wg = weight.clone().requires_grad_(True)
    bg = bias.clone().requires_grad_(True)
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(xg, rm, rv, wg, bg, training=True, momentum=0.1, eps=1e-5)
    y.backward(dy)

    xe = x.clone().requires_grad_(True)
    we = weight.clone().requires_grad_(True)
    be = bias.clone().requires_grad_(True)
    ye = F.batch_norm(xe, rm0.clone(), rv0.clone(), we, be, training=False, momentum=0.1, eps=1e-5)
    ye.backward(dy)

    save("batchnorm.json", {
        "x": x, "weight": weight, "bias": bias, "running_mean0": rm0, "running_var0": rv0, "dy": dy,
        "y_train": y, "dx_train": xg.grad, "dweight_train": wg.grad, "dbias_train": bg.grad,
        "running_mean1": rm, "running_var1": rv,
        "y_eval": ye, "dx_eval": xe.grad, "dweight_eval": we.grad, "dbias_eval": be.grad,
    })


def batch_norm_add_relu():
    """relu(batch_norm(x) + residual) (HRNet's block tail) at batch 1 with odd H, W, training and
    eval, with dx, dweight, dbias, dresidual and the running statistics after one step."""
    g = torch.Generator().manual_seed(7)
    n, c, h, w = 1, 4, 5, 3
    x = torch.randn(n, c, h, w, generator=g) * 1.5 - 0.3
    r = torch.randn(n, c, h, w, generator=g)
    weight = torch.rand(c, generator=g) + 0.5
    bias = torch.randn(c, generator=g) * 0.5
    rm0 = torch.randn(c, generator=g) * 0.1
    rv0 = torch.rand(c, generator=g) + 0.5
    dy = torch.randn(n, c, h, w, generator=g)
    out = {"x": x, "residual": r, "weight": weight, "bias": bias, "running_mean0": rm0, "running_var0": rv0, "dy": dy}
    for tag, training in (("train", True), ("eval", False)):
        xg, rg = x.clone().requires_grad_(True), r.clone().requires_grad_(True)
        wg, bg = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        rm, rv = rm0.clone(), rv0.clone()
        y = F.relu(F.batch_norm(xg, rm, rv, wg, bg, training=training, momentum=0.1, eps=1e-5) + rg)
        y.backward(dy)
        out.update({f"y_{tag}": y, f"dx_{tag}": xg.grad, f"dresidual_{tag}": rg.grad,
                    f"dweight_{tag}": wg.grad, f"dbias_{tag}": bg.grad,
                    f"running_mean_{tag}": rm, f"running_var_{tag}": rv})
    save("batchnorm_add_relu.json", out)


def resize(name, mode, shape, out_hw, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g).requires_grad_(True)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    y = F.interpolate(x, size=out_hw, mode=mode, **kw)
    dy = torch.randn(*y.shape, generator=g)
    y.backward(dy)
    save(name, {"x": x, "y": y, "dy": dy, "dx": x.grad})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    batch_norm()
    batch_norm_add_relu()
    resize("bilinear_up.json", "bilinear", (1, 2, 5, 7), (9, 12), 2)
    resize("bilinear_down.json", "bilinear", (2, 1, 11, 13), (4, 5), 3)
    resize("nearest_up.json", "nearest", (1, 2, 5, 7), (9, 12), 4)
    resize("nearest_down.json", "nearest", (2, 1, 11, 13), (4, 5), 5)
    resize("nearest_odd.json", "nearest", (1, 1, 7, 10), (3, 23), 6)
