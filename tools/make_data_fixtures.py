#!/usr/bin/python3
"""Tiny NYUD-v2 and PASCAL-Context fixtures in the layouts of docs/guide/PROTOCOLS.md, for the loader tests.

Run with Debian's python3 (+ python3-numpy, python3-scipy, python3-pil):
    /usr/bin/python3 tools/make_data_fixtures.py
Writes data/fixtures/{nyud,pascal}/ (committed) and the arrays the tests expect to
Ccr.Tests/Fixtures/data/. The .mat files come from scipy.io.savemat, an independent writer of
the MATLAB v5 format, so the C# reader is checked against it (compressed and uncompressed).
"""
import os

import numpy as np
import scipy.io as sio
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..")
NYUD = os.path.join(ROOT, "data", "fixtures", "nyud")
PASCAL = os.path.join(ROOT, "data", "fixtures", "pascal")
EXPECT = os.path.join(ROOT, "Ccr.Tests", "Fixtures", "data")
H, W = 24, 32
rng = np.random.default_rng(7)


def mk(*parts):
    os.makedirs(os.path.join(*parts), exist_ok=True)
    return os.path.join(*parts)


def image(path):
    a = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    Image.fromarray(a).save(path, quality=95)


# ---------------- NYUD ----------------
for d in ["images", "segmentation", "depth", "normals", "edge", "gt_sets"]:
    mk(NYUD, d)
ids = ["0001", "0002", "0003"]
for i, id_ in enumerate(ids):
    image(os.path.join(NYUD, "images", id_ + ".jpg"))
    seg = rng.integers(0, 41, size=(H, W)).astype(np.uint8)  # 0 = unlabelled, 1..40
    Image.fromarray(seg, mode="L").save(os.path.join(NYUD, "segmentation", id_ + ".png"))
    depth = rng.uniform(0.5, 9.0, size=(H, W)).astype(np.float32)
    depth[:2, :] = 0
    np.save(os.path.join(NYUD, "depth", id_ + ".npy"), depth)
    n = rng.normal(size=(H, W, 3))
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    n[0, 0] = 0
    np.save(os.path.join(NYUD, "normals", id_ + ".npy"), n.astype(np.float32 if i != 1 else np.float64))
    edge = (rng.random((H, W)) < 0.1).astype(np.float32)
    np.save(os.path.join(NYUD, "edge", id_ + ".npy"), edge)
with open(os.path.join(NYUD, "gt_sets", "train.txt"), "w") as f:
    f.write("0001\n0002\n")
with open(os.path.join(NYUD, "gt_sets", "val.txt"), "w") as f:
    f.write("0001\n0002\n0003\n")

# ---------------- PASCAL-Context ----------------
for d in ["JPEGImages", "ImageSets/Context", "semseg/pascal-context", "human_parts", "normals_distill",
          "sal_distill", "pascal-context/trainval"]:
    mk(PASCAL, d)
mk(EXPECT)
pids = ["2008_000001", "2008_000002"]
for k, id_ in enumerate(pids):
    image(os.path.join(PASCAL, "JPEGImages", id_ + ".jpg"))
    sem = rng.integers(0, 21, size=(H, W)).astype(np.uint8)
    sem[-1, :] = 255
    Image.fromarray(sem, mode="L").save(os.path.join(PASCAL, "semseg", "pascal-context", id_ + ".png"))
    nrm = rng.integers(1, 256, size=(H, W, 3), dtype=np.uint8)
    nrm[3, 4] = 0
    Image.fromarray(nrm).save(os.path.join(PASCAL, "normals_distill", id_ + ".png"))
    sal = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
    Image.fromarray(sal, mode="L").save(os.path.join(PASCAL, "sal_distill", id_ + ".png"))
    # LabelMap: blocks of context classes (uint16), compressed for the first file only.
    lm = np.zeros((H, W), dtype=np.uint16)
    lm[:, 10:] = 59 + k
    lm[12:, 20:] = 400
    lm[5:9, 3:7] = 7
    sio.savemat(os.path.join(PASCAL, "pascal-context", "trainval", id_ + ".mat"), {"LabelMap": lm},
                do_compression=(k == 0))
    np.save(os.path.join(EXPECT, "labelmap_" + id_ + ".npy"), lm.astype(np.int32))

# Human parts for the first image only: a person (class_ind 15) with head, torso, luarm, rlleg,
# a cat (class_ind 8) with a part that must be ignored, and a second person without parts.
def mask(y0, y1, x0, x1):
    m = np.zeros((H, W), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m

part_dt = [("part_name", "O"), ("mask", "O")]
def parts(items):
    a = np.zeros((1, len(items)), dtype=part_dt)
    for j, (name, m) in enumerate(items):
        a[0, j]["part_name"] = name
        a[0, j]["mask"] = m
    return a

obj_dt = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]
objs = np.zeros((1, 3), dtype=obj_dt)
person_parts = [("head", mask(0, 4, 2, 6)), ("torso", mask(4, 12, 1, 7)), ("luarm", mask(4, 8, 7, 9)),
                ("rlleg", mask(16, 24, 2, 4))]
objs[0, 0]["class"] = "person"; objs[0, 0]["class_ind"] = np.array([[15]]); objs[0, 0]["mask"] = mask(0, 24, 0, 10)
objs[0, 0]["parts"] = parts(person_parts)
objs[0, 1]["class"] = "cat"; objs[0, 1]["class_ind"] = np.array([[8]]); objs[0, 1]["mask"] = mask(0, 5, 20, 30)
objs[0, 1]["parts"] = parts([("head", mask(0, 3, 20, 24))])
objs[0, 2]["class"] = "person"; objs[0, 2]["class_ind"] = np.array([[15]]); objs[0, 2]["mask"] = mask(20, 24, 25, 30)
objs[0, 2]["parts"] = np.zeros((0, 0))
anno = np.zeros((1, 1), dtype=[("imname", "O"), ("objects", "O")])
anno[0, 0]["imname"] = pids[0] + ".jpg"
anno[0, 0]["objects"] = objs
sio.savemat(os.path.join(PASCAL, "human_parts", pids[0] + ".mat"), {"anno": anno}, do_compression=True)
cls = {"head": 1, "torso": 2, "luarm": 3, "rlleg": 6}
target = np.zeros((H, W), dtype=np.int32)
for name, m in person_parts:
    target[m.astype(bool)] = cls[name]
np.save(os.path.join(EXPECT, "parts_" + pids[0] + ".npy"), target)

with open(os.path.join(PASCAL, "ImageSets", "Context", "val.txt"), "w") as f:
    f.write("\n".join(pids) + "\n")
with open(os.path.join(PASCAL, "ImageSets", "Context", "train.txt"), "w") as f:
    f.write(pids[0] + "\n")
print("wrote", NYUD, PASCAL, EXPECT)
