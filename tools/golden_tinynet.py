#!/usr/bin/python3
"""PyTorch golden of a tiny two-head dense-prediction network trained with Adam
(Ccr.Tests/Fixtures/tinynet/tinynet.json, read by Ccr.Tests/Nn/TinyNetTests.cs).

Run with Debian's torch 1.13:  /usr/bin/python3 tools/golden_tinynet.py

Network (names are nn.Sequential's, as Ccr's Sequential names them):
  0 conv3x3 3->8 s1 p1 (no bias), 1 BN(8), 2 ReLU, 3 conv3x3 8->8 s2 p1 (no bias), 4 BN(8), 5 ReLU,
  6 conv1x1 8->5 (bias); bilinear upsample (align_corners=False) back to the input size.
Channels 0..3 are segmentation logits (softmax cross-entropy, ignore_index 255), channel 4 a depth
map (masked L1: pixels whose target is 255 or 0 are invalid, sum / valid count).
Loss = CE + L1. Adam lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight decay 1e-4 (L2, torch.optim.Adam),
training-mode batch norm (momentum 0.1, eps 1e-5).

Convolutions before batch norm have no bias on purpose: batch norm cancels such a bias, so its true
gradient is 0 and its computed one is rounding noise, which Adam's normalisation would turn into
+-lr steps of random sign - not something two implementations can agree on.

Initial weights come from PyTorch's default init under a fixed seed and are rounded to float32;
the input and targets are float32 too. The training itself runs in float64 so that the golden's
own rounding is negligible against the float32 implementation under test.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Ccr.Tests", "Fixtures", "tinynet")
N, CIN, H, W, CLASSES = 2, 3, 12, 16, 4
STEPS_GOLDEN, STEPS_LONG = 5, 50


def make_net():
    return nn.Sequential(
        nn.Conv2d(CIN, 8, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, CLASSES + 1, 1, bias=True))


def masked_l1(pred, target):
    valid = (target != 255) & (target != 0)
    count = valid.sum()
    return ((pred - target).abs() * valid).sum() / count.clamp(min=1)


def loss_of(net, x, labels, depth):
    y = net(x)
    y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
    ce = F.cross_entropy(y[:, :CLASSES], labels, ignore_index=255)
    l1 = masked_l1(y[:, CLASSES:], depth)
    return ce + l1, ce, l1


def j(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def train(net, x, labels, depth, steps):
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    losses, ces, l1s = [], [], []
    for _ in range(steps):
        opt.zero_grad()
        loss, ce, l1 = loss_of(net, x, labels, depth)
        losses.append(float(loss)); ces.append(float(ce)); l1s.append(float(l1))
        loss.backward()
        opt.step()
    return losses, ces, l1s


def main():
    torch.manual_seed(20230207)
    net = make_net()
    # Non-trivial affine parameters, so that a weight/bias mix-up in batch norm shows.
    with torch.no_grad():
        for i in (1, 4):
            net[i].weight.uniform_(0.5, 1.5)
            net[i].bias.uniform_(-0.2, 0.2)
    state0 = {k: v.detach().float().clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}

    g = torch.Generator().manual_seed(7)
    x = torch.randn(N, CIN, H, W, generator=g).float()
    labels = torch.randint(0, CLASSES, (N, H, W), generator=g)
    labels[torch.rand(N, H, W, generator=g) < 0.2] = 255
    depth = (torch.rand(N, 1, H, W, generator=g) * 2.5 + 0.5).float()
    r = torch.rand(N, 1, H, W, generator=g)
    depth[r < 0.1] = 255.0
    depth[(r >= 0.1) & (r < 0.15)] = 0.0

    net64 = make_net().double()
    net64.load_state_dict({k: v.double() for k, v in state0.items()}, strict=False)
    net64.train()
    losses, ces, l1s = train(net64, x.double(), labels, depth.double(), STEPS_GOLDEN)
    params5 = {k: j(v) for k, v in net64.named_parameters()}
    buffers5 = {k: j(v) for k, v in net64.named_buffers() if not k.endswith("num_batches_tracked")}

    # The 50-step run, for the record (the C# test checks its own loss drop, not this trajectory).
    net_long = make_net().double()
    net_long.load_state_dict({k: v.double() for k, v in state0.items()}, strict=False)
    net_long.train()
    long_losses, _, _ = train(net_long, x.double(), labels, depth.double(), STEPS_LONG)

    obj = {
        "input": j(x), "labels": j(labels), "depth": j(depth),
        "params0": {k: j(v) for k, v in state0.items() if "running" not in k},
        "buffers0": {k: j(v) for k, v in state0.items() if "running" in k},
        "loss": losses, "ce": ces, "l1": l1s,
        "params5": params5, "buffers5": buffers5,
        "loss_long": long_losses,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tinynet.json"), "w") as f:
        json.dump(obj, f)
    print("wrote tinynet.json; losses", ["%.5f" % v for v in losses],
          "50-step first/last-5 mean %.4f / %.4f" % (long_losses[0], sum(long_losses[-5:]) / 5))


if __name__ == "__main__":
    main()
