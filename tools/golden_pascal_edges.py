#!/usr/bin/python3
"""Goldens for PASCAL-Context edge labels, made along the reference loaders' code path.

MTL's and ATRC's PASCALContext._load_edge read `LabelMap` with scipy.io.loadmat, take OpenCV's
Laplacian (CV_64F, default 3x3 aperture, reflect-101 border) and thin |Laplacian| > 0 with
scikit-image's morphology.thin. This script does the same with the same libraries (Debian's
python3-scipy, python3-opencv, python3-skimage 0.19.3) on label maps made to look like
PASCAL-Context's (irregular regions, thin poles, speckles, unlabelled 0 areas, borders), at the
dataset's usual 375x500 / 500x375, plus small random maps and random binary images that stress
the thinning itself.

Run:  /usr/bin/python3 tools/golden_pascal_edges.py
Writes Ccr.Tests/Fixtures/pascal/edges_*.mat (zlib-compressed MAT v5: uint16 LabelMap / uint8
inputs and the uint8 expected maps) and thin_luts.json (skimage's two lookup tables). The C# tests
read them; they never run Python.
"""
import json
import os

import cv2
import numpy as np
import scipy.io as sio
import skimage
from skimage.morphology import thin
from skimage.morphology import _skeletonize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "pascal")
rng = np.random.default_rng(9)


def reference_edge(label_map_path):
    """The reference loaders' _load_edge, step by step (our own code, same calls)."""
    lm = sio.loadmat(label_map_path)["LabelMap"]
    lap = cv2.Laplacian(lm, cv2.CV_64F)
    return thin(np.abs(lap) > 0).astype(np.uint8)


def smooth_noise(h, w, amp):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    f = np.zeros((h, w))
    for _ in range(6):
        fy, fx = rng.uniform(0.004, 0.05, 2) * rng.choice([-1, 1], 2)
        f += rng.uniform(0.3, 1.0) * amp * np.sin(fy * ys + fx * xs + rng.uniform(0, 2 * np.pi))
    return f


def realistic_label_map(h, w, regions):
    """Warped Voronoi regions of context classes, then poles, speckles and unlabelled blobs."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    wy, wx = ys + smooth_noise(h, w, 12), xs + smooth_noise(h, w, 12)
    seeds = rng.uniform([0, 0], [h, w], size=(regions, 2))
    classes = rng.integers(1, 460, size=regions)
    best = np.full((h, w), np.inf)
    lm = np.zeros((h, w), dtype=np.uint16)
    for k in range(regions):
        d = (wy - seeds[k, 0]) ** 2 + (wx - seeds[k, 1]) ** 2
        lm[d < best] = classes[k]
        best = np.minimum(best, d)
    for _ in range(6):  # poles and wires, 1-3 px wide, any slope
        c = rng.integers(1, 460)
        y0, x0, y1, x1 = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, w)
        width = rng.integers(1, 4)
        t = np.linspace(0, 1, 2 * (h + w))
        py, px = (y0 + t * (y1 - y0)).astype(int), (x0 + t * (x1 - x0)).astype(int)
        for dy in range(width):
            lm[np.clip(py + dy, 0, h - 1), np.clip(px, 0, w - 1)] = c
    for _ in range(40):  # speckles: single pixels, 2x2 and 3x1 blocks
        y, x = rng.integers(0, h - 3), rng.integers(0, w - 3)
        bh, bw = [(1, 1), (2, 2), (3, 1), (1, 3)][rng.integers(0, 4)]
        lm[y:y + bh, x:x + bw] = rng.integers(0, 460)
    blob = (smooth_noise(h, w, 1.0) > 1.4)  # unlabelled areas
    lm[blob] = 0
    return lm


def save_case(name, variables):
    path = os.path.join(OUT, name)
    sio.savemat(path, variables, do_compression=True)
    print("wrote", name, os.path.getsize(path), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    assert skimage.__version__ == "0.19.3", skimage.__version__
    g123, g123p = _skeletonize._generate_thin_luts()
    assert np.array_equal(g123, _skeletonize.G123_LUT) and np.array_equal(g123p, _skeletonize.G123P_LUT)
    with open(os.path.join(OUT, "thin_luts.json"), "w") as f:
        json.dump({"skimage": skimage.__version__, "G123": [int(v) for v in _skeletonize.G123_LUT],
                   "G123P": [int(v) for v in _skeletonize.G123P_LUT]}, f)

    tmp = os.path.join(OUT, "_labelmap_tmp.mat")
    for name, (h, w, regions) in {"edges_375x500_a.mat": (375, 500, 30), "edges_375x500_b.mat": (375, 500, 60),
                                  "edges_500x375.mat": (500, 375, 20)}.items():
        lm = realistic_label_map(h, w, regions)
        sio.savemat(tmp, {"LabelMap": lm})
        edge = reference_edge(tmp)
        band = (np.abs(cv2.Laplacian(lm, cv2.CV_64F)) > 0).sum()
        print(f"{name}: band {band} px, thinned {edge.sum()} px")
        save_case(name, {"LabelMap": lm, "edge": edge})

    # Small maps: few classes at random per pixel or in blocks (corners, 1-px rows and columns).
    small = {}
    for k in range(24):
        h, w = int(rng.integers(1, 20)), int(rng.integers(1, 24))
        if k % 3 == 0:
            lm = rng.integers(0, 3, size=(h, w))
        else:
            lm = np.kron(rng.integers(0, 4, size=((h + 2) // 3, (w + 1) // 2)), np.ones((3, 2)))[:h, :w]
        lm = lm.astype(np.uint16)
        sio.savemat(tmp, {"LabelMap": lm})
        small[f"lm_{k:02d}"] = lm
        small[f"edge_{k:02d}"] = reference_edge(tmp)
    save_case("edges_small.mat", small)
    os.remove(tmp)

    # Thinning alone on random binary images of several densities and on solid shapes.
    binary = {}
    for k, (h, w, p) in enumerate([(40, 50, 0.3), (41, 37, 0.5), (33, 64, 0.7), (64, 48, 0.9), (1, 9, 0.8), (9, 1, 0.8)]):
        b = (rng.random((h, w)) < p).astype(np.uint8)
        binary[f"bin_{k:02d}"] = b
        binary[f"thin_{k:02d}"] = thin(b).astype(np.uint8)
    disk = np.zeros((60, 70), dtype=np.uint8)
    yy, xx = np.mgrid[0:60, 0:70]
    disk[(yy - 30) ** 2 + (xx - 33) ** 2 < 22 ** 2] = 1
    disk[5:12, 3:68] = 1
    binary["bin_06"] = disk
    binary["thin_06"] = thin(disk).astype(np.uint8)
    save_case("edges_thin_binary.mat", binary)


if __name__ == "__main__":
    main()
