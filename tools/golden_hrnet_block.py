"""Golden for Ccr's HRNet building blocks: a two-branch HighResolutionModule (one BasicBlock per
branch, fuse layers with nearest upsampling and a stride-2 conv3x3 downsampling) built with the
same module names as timm's hrnet.py, in eval mode with non-trivial batch-norm statistics.

Run with Debian's torch 1.13:  /usr/bin/python3 tools/golden_hrnet_block.py
Writes Ccr.Tests/Fixtures/models/hrnet_block_weights.safetensors (the state dict, incl. int64
num_batches_tracked) and hrnet_block_io.safetensors (inputs x0, x1 and outputs y0, y1), using a
hand-written safetensors writer (the safetensors package is not installed here).
"""
import json
import os
import struct

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(__file__), "..", "Ccr.Tests", "Fixtures", "models")


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + x)


class HrModule(nn.Module):
    """timm's HighResolutionModule for 2 branches of widths c0, c1 (one block each)."""

    def __init__(self, c0, c1):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(BasicBlock(c0)), nn.Sequential(BasicBlock(c1))])
        self.fuse_layers = nn.ModuleList([
            nn.ModuleList([nn.Identity(),
                           nn.Sequential(nn.Conv2d(c1, c0, 1, 1, 0, bias=False), nn.BatchNorm2d(c0),
                                         nn.Upsample(scale_factor=2, mode="nearest"))]),
            nn.ModuleList([nn.Sequential(nn.Sequential(nn.Conv2d(c0, c1, 3, 2, 1, bias=False), nn.BatchNorm2d(c1))),
                           nn.Identity()]),
        ])

    def forward(self, xs):
        xs = [b(x) for b, x in zip(self.branches, xs)]
        outs = []
        for row in self.fuse_layers:
            y = None
            for j, f in enumerate(row):
                y = f(xs[j]) if y is None else y + f(xs[j])
            outs.append(torch.relu(y))
        return outs


DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dt, fmt = DTYPES[t.dtype]
        flat = t.reshape(-1).tolist()
        data = struct.pack("<%d%s" % (len(flat), fmt[-2:].replace("f4", "f").replace("i8", "q")), *flat) if flat else b""
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(1234)
    c0, c1 = 4, 8
    m = HrModule(c0, c1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(7)
    m.eval()
    x0 = torch.randn(2, c0, 6, 8)
    x1 = torch.randn(2, c1, 3, 4)
    with torch.no_grad():
        y0, y1 = m([x0, x1])
    os.makedirs(OUT, exist_ok=True)
    save_safetensors(os.path.join(OUT, "hrnet_block_weights.safetensors"), m.state_dict())
    save_safetensors(os.path.join(OUT, "hrnet_block_io.safetensors"), {"x0": x0, "x1": x1, "y0": y0, "y1": y1})
    print("state dict:", ", ".join(m.state_dict().keys()))
    print("y0", tuple(y0.shape), float(y0.abs().mean()), "y1", tuple(y1.shape), float(y1.abs().mean()))


if __name__ == "__main__":
    main()
