#!/usr/bin/python3
"""Random metric fixtures and their expected values, computed with NumPy from the definitions in
docs/guide/PROTOCOLS.md (independently of the C# code).

Run with Debian's python3 + python3-numpy:  /usr/bin/python3 tools/make_metric_fixtures.py
Writes Ccr.Tests/Fixtures/metrics/*.npy and expected.json. Tests read them; they never run Python.
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "metrics")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20231)
N, H, W = 3, 12, 16
expected = {}


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


# Semantic segmentation: 6 classes, class 5 never appears (absent -> IoU 0), some ignore pixels.
C = 6
gt = rng.integers(0, 5, size=(N, H, W)).astype(np.int32)
pred = gt.copy()
flip = rng.random((N, H, W)) < 0.35
pred[flip] = rng.integers(0, 5, size=flip.sum())
gt[rng.random((N, H, W)) < 0.1] = 255
save("seg_gt", gt)
save("seg_pred", pred)
valid = gt != 255
tp = np.zeros(C); fp = np.zeros(C); fn = np.zeros(C)
for c in range(C):
    tp[c] = np.sum((gt == c) & (pred == c) & valid)
    fp[c] = np.sum((gt != c) & (pred == c) & valid)
    fn[c] = np.sum((gt == c) & (pred != c) & valid)
iou = tp / np.maximum(tp + fp + fn, 1e-8)
expected["seg"] = {"classes": C, "mIoU": float(np.mean(iou)),
                   "pixAcc": float(np.sum((pred == gt) & valid) / np.sum(valid))}

# Depth: zeros in the label are invalid, some negative predictions (clamped to 0).
dgt = rng.uniform(0.5, 8.0, size=(N, H, W)).astype(np.float32)
dgt[rng.random((N, H, W)) < 0.15] = 0
dpred = (dgt + rng.normal(0, 0.5, size=(N, H, W))).astype(np.float32)
dpred[0, 0, :4] = -0.3
save("depth_gt", dgt)
save("depth_pred", dpred)
v = dgt > 0
g = dgt[v].astype(np.float64)
p = np.maximum(dpred[v].astype(np.float64), 0)
ratio = np.maximum(g / np.maximum(p, 1e-9), np.maximum(p, 1e-9) / g)
expected["depth"] = {
    "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
    "log_rmse": float(np.sqrt(np.mean((np.log(np.maximum(p, 1e-9)) - np.log(np.maximum(g, 1e-9))) ** 2))),
    "abs_rel": float(np.mean(np.abs(g - p) / g)),
    "delta1": float(np.mean(ratio < 1.25)),
    "delta2": float(np.mean(ratio < 1.25 ** 2)),
    "delta3": float(np.mean(ratio < 1.25 ** 3)),
}

# Normals (N, 3, H, W): zero label vectors are invalid, one zero prediction (90 degrees).
ngt = rng.normal(size=(N, 3, H, W))
ngt /= np.linalg.norm(ngt, axis=1, keepdims=True)
ngt[rng.random((N, H, W))[:, None, :, :].repeat(3, 1) < 0.1] = 0
npred = ngt + rng.normal(0, 0.4, size=(N, 3, H, W))
npred[0, :, 1, 1] = 0
ngt = ngt.astype(np.float32); npred = npred.astype(np.float32)
save("normals_gt", ngt)
save("normals_pred", npred)
gn = ngt.astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, 3)
pn = npred.astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, 3)
gl = np.linalg.norm(gn, axis=1)
ok = gl > 0
gn = gn[ok] / gl[ok, None]
pl = np.linalg.norm(pn[ok], axis=1)
pn = pn[ok] / np.where(pl > 0, pl, 1)[:, None]
ang = np.degrees(2 * np.arctan2(np.linalg.norm(pn - gn, axis=1), np.linalg.norm(pn + gn, axis=1)))
expected["normals"] = {"mean": float(ang.mean()), "median": float(np.median(ang)),
                       "rmse": float(np.sqrt(np.mean(ang ** 2))), "11.25": float(np.mean(ang < 11.25)),
                       "22.5": float(np.mean(ang < 22.5)), "30": float(np.mean(ang < 30))}

# Saliency: probabilities, label 0/1 with ignore.
sgt = (rng.random((N, H, W)) < 0.4).astype(np.int32)
sprob = np.clip(sgt * 0.3 + rng.random((N, H, W)) * 0.7, 0, 1).astype(np.float32)
sgt[rng.random((N, H, W)) < 0.05] = 255
save("sal_gt", sgt)
save("sal_prob", sprob)
thr = np.arange(1, 20, dtype=np.float64) * 0.05
thr = thr.astype(np.float32)
sv = sgt != 255
best = 0.0
for t in thr:
    pb = (sprob >= t) & sv
    tpos = np.sum(pb & (sgt == 1)); pp = np.sum(pb); ap = np.sum((sgt == 1) & sv)
    P = tpos / pp if pp else np.nan
    R = tpos / ap
    F = 1.3 * P * R / (0.3 * P + R)
    best = max(best, 0.0 if np.isnan(F) else F)
expected["sal"] = {"maxF": float(best)}

# Delta m: multi-task against single-task results (depth, normals lower is better).
mt = {"semseg": {"mIoU": 0.41}, "depth": {"rmse": 0.58}, "normals": {"mean": 20.5}, "edge": {"odsF": 0.77}}
st = {"semseg": {"mIoU": 0.38}, "depth": {"rmse": 0.62}, "normals": {"mean": 20.1}, "edge": {"odsF": 0.78}}
terms = [(0.41 - 0.38) / 0.38, -(0.58 - 0.62) / 0.62, -(20.5 - 20.1) / 20.1, (0.77 - 0.78) / 0.78]
expected["delta_m"] = {"multi": mt, "single": st, "value": float(100 * np.mean(terms))}

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=2)
print("wrote", OUT)
