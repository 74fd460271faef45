#!/usr/bin/python3
"""Golden fixture for CCR's nearest downsampling of source labels (Ccr.Tests/Fixtures/ccr/nearest.json),
made with Debian's torch:
    /usr/bin/python3 tools/golden_ccr_nearest.py
For each (H, W) -> (h, w), F.interpolate(mode='nearest') of a map whose value is the flat source
index y * W + x (float64: exact) gives the source pixel PyTorch picks for every output pixel; the
fixture stores the picked source row of every output row and source column of every output column
(nearest is separable; the script checks that), so the C# test can compare CcrLabels.Prepare pixel
by pixel without Python. The sizes include the issue's 560x336 -> 120x160 in both orientations,
exact factors, odd sizes, upsampling and the exact-doubling special case."""
import json, os
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "ccr", "nearest.json")
SIZES = [((560, 336), (120, 160)), ((336, 560), (120, 160)), ((480, 640), (120, 160)), ((425, 560), (120, 160)),
         ((17, 23), (5, 7)), ((5, 7), (17, 23)), ((7, 9), (14, 18)), ((100, 30), (30, 100)), ((3, 1000), (1, 333))]


def main():
    cases = []
    for (H, W), (h, w) in SIZES:
        idx = torch.arange(H * W, dtype=torch.float64).reshape(1, 1, H, W)
        out = F.interpolate(idx, size=(h, w), mode="nearest")[0, 0].long()
        rows, cols = (out // W)[:, 0], (out % W)[0, :]
        assert torch.equal(out, rows[:, None] * W + cols[None, :]), "nearest is not separable?"
        cases.append(dict(in_h=H, in_w=W, out_h=h, out_w=w, rows=rows.tolist(), cols=cols.tolist()))
        print(f"{H}x{W} -> {h}x{w}: rows {rows[:6].tolist()}..., cols {cols[:6].tolist()}...")
    with open(OUT, "w") as f:
        json.dump(dict(torch=torch.__version__, cases=cases), f)


if __name__ == "__main__":
    main()
