#!/usr/bin/python3
"""PyTorch golden for the one nearest-neighbour rule of label maps.

torch.nn.functional.interpolate(mode='nearest') on a map whose values are their own flat
indices shows which source pixel each output pixel takes. The rule is separable, so the file
stores, per case, the source row of every output row and the source column of every output
column (the script checks that the full output is exactly their outer combination).

Run with Debian's torch:  /usr/bin/python3 tools/golden_nearest_labels.py
Writes Ccr.Tests/Fixtures/norm/nearest_label_tables.json. The C# tests read it; they never run Python.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "norm")

# (in_h, in_w, out_h, out_w): the 560x336 -> 120x160 (float scale arithmetic picks
# different pixels from exact integer floor(dst * in / out) there), PASCAL's 375x500 to a
# stride-4 map of a 512 crop, exact 2x, identity, and awkward up/down factors.
CASES = [(560, 336, 120, 160), (375, 500, 94, 125), (512, 512, 128, 128), (448, 576, 112, 144),
         (97, 31, 13, 29), (10, 12, 20, 24), (7, 5, 7, 11), (3, 1000, 7, 999), (1000, 3, 999, 7)]


def main():
    cases = []
    for ih, iw, oh, ow in CASES:
        # float64 holds every index exactly
        x = torch.arange(ih * iw, dtype=torch.float64).reshape(1, 1, ih, iw)
        y = F.interpolate(x, size=(oh, ow), mode="nearest")[0, 0].to(torch.int64)
        rows = (y[:, 0] // iw).tolist()
        cols = (y[0, :] % iw).tolist()
        full = torch.tensor(rows)[:, None] * iw + torch.tensor(cols)[None, :]
        assert torch.equal(full, y), "nearest is not separable?"
        # how many pixels exact integer arithmetic would pick differently (for the record)
        exact = (torch.arange(oh)[:, None] * ih // oh) * iw + (torch.arange(ow)[None, :] * iw // ow)
        differ = int((exact != y).sum())
        cases.append({"in": [ih, iw], "out": [oh, ow], "rows": rows, "cols": cols, "integer_rule_differs": differ})
        print(f"{ih}x{iw} -> {oh}x{ow}: integer floor(dst*in/out) differs on {differ} of {oh * ow} pixels")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "nearest_label_tables.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main()
