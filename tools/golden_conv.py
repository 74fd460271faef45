#!/usr/bin/python3
"""PyTorch goldens for Ccr's conv2d: forward output and dx, dw, db under a random upstream
gradient, for a few small configs. Run with Debian's torch (/usr/bin/python3 tools/golden_conv.py);
writes Ccr.Tests/Fixtures/conv/conv_goldens.json (float32 values, computed in float64)."""
import json, os
import torch

torch.manual_seed(1234)
# (name, x shape, w shape, bias, stride, padding, dilation)
CONFIGS = [
    ("s2_p1_bias", (2, 3, 7, 6), (4, 3, 3, 3), True, 2, 1, 1),
    ("d2_p2_nobias", (1, 2, 9, 8), (3, 2, 3, 3), False, 1, 2, 2),
    ("k5_s2_p2", (1, 3, 11, 9), (2, 3, 5, 5), True, 2, 2, 1),
    ("pointwise", (2, 4, 5, 3), (5, 4, 1, 1), True, 1, 0, 1),
]

def flat(t):
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]

cases = []
for name, xs, ws, has_b, s, p, d in CONFIGS:
    x = torch.rand(xs, dtype=torch.float32) * 2 - 1
    w = torch.rand(ws, dtype=torch.float32) * 2 - 1
    b = torch.rand(ws[0], dtype=torch.float32) * 2 - 1 if has_b else None
    # compute in float64 from the float32 inputs, so the golden is the exact answer for those inputs
    x64 = x.double().requires_grad_(True)
    w64 = w.double().requires_grad_(True)
    b64 = b.double().requires_grad_(True) if has_b else None
    y = torch.nn.functional.conv2d(x64, w64, b64, stride=s, padding=p, dilation=d)
    dy = torch.rand(y.shape, dtype=torch.float32) * 2 - 1
    y.backward(dy.double())
    cases.append({
        "name": name, "stride": s, "padding": p, "dilation": d,
        "x_shape": list(xs), "w_shape": list(ws), "y_shape": list(y.shape),
        "x": flat(x), "w": flat(w), "b": flat(b) if has_b else None, "dy": flat(dy),
        "y": flat(y), "dx": flat(x64.grad), "dw": flat(w64.grad), "db": flat(b64.grad) if has_b else None,
    })

out = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "conv", "conv_goldens.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")
