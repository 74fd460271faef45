#!/usr/bin/env python3
"""The paper model's training step in PyTorch eager, to set beside Ccr.Bench's report (same card, same run).

Model, as Ccr.Train's MultiTaskModel builds it (Ccr.Training/MultiTask/Decoders.cs):
- backbone: timm's hrnet_w18_small_v2, features_only, feature_location="" (the branch outputs:
  18 / 36 / 72 / 144 channels at strides 4 / 8 / 16 / 32), from scratch;
- one FPN neck shared by the tasks: a lateral 1x1 conv (bias) per level to 256 channels, top-down
  nearest upsampling added into the finer level, a 3x3 output conv (bias) per level;
- per task a Semantic FPN decoder: level i (stride 4 * 2^i) through max(1, i) steps of
  conv3x3 (no bias) + BN + ReLU to 128 channels, each step above stride 4 followed by a bilinear
  resize (align_corners False) to the next finer level's size; the four maps summed (the task's
  feature map, where CCR acts); a 1x1 conv (bias) to the task's channels; bilinear to the input size;
- CCR (with --ccr rows): per target task a projector Conv1x1(128, 128) + ReLU + Conv1x1(128, 128) +
  BN(128), L2-normalised per pixel; each step one source task drawn per target; the source's labels
  downsampled (nearest) to 120x160; 1% of the valid pixels as anchors; tools/torch_ccr_baseline.py's
  pair loss (hardest positive, 16 semi-hard negatives, k 128, margin 0.2), lambda 1.
Losses (the nyud-hrnet18 preset): cross-entropy (ignore 255) x 1, masked L1 on depth x 1, masked L1 on
the L2-normalised normals x 10, + CCR. Adam lr 2e-4, weight decay 1e-4. The loss is read every step,
as our trainer reads it. fp32 rows turn TF32 off in cuBLAS and cuDNN; tf32 rows turn it on.

    python3 tools/torch_step_baseline.py --data OUT/data/nyud-synthetic --json OUT/torch_step.json [--device cuda]
    python3 tools/torch_step_baseline.py --count-params --json FILE [--backbone-listing STATE_DICT.txt]

The batch is every sample of --data (NYUD layout, as Ccr.Bench report writes it). Without timm the
step rows are skipped with a message; --standin-backbone then runs the decoders, losses and CCR on a
small stand-in backbone of the same feature shapes (a CPU check of this script, not a comparison).
--count-params writes the parameter counts and shapes of each part (the golden that
Ccr.Tests/Train/PaperModelParityTests.cs compares ours with); the backbone's count comes from timm
or, without it, from timm's state-dict listing (--backbone-listing).
"""
import argparse
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    # what this run will import, checked before torch loads: numpy and torch always; scikit-image to
    # read --data; timm for the paper's backbone (not with --standin-backbone or --count-params)
    import torch_requires
    _need = ["torch", "numpy"]
    if "--count-params" not in sys.argv:
        _need.append("skimage")
        if "--standin-backbone" not in sys.argv:
            _need.append("timm")
    torch_requires.require("torch_step_baseline.py", _need)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_ccr_baseline as ccr  # noqa: E402
import torch_requires  # noqa: E402
import torch_timing  # noqa: E402

LEVELS = [18, 36, 72, 144]
TASKS = [("semseg", 40), ("depth", 1), ("normals", 3)]
LOSS_WEIGHTS = {"semseg": 1.0, "depth": 1.0, "normals": 10.0}
FPN, HEAD, PROJ = 256, 128, 128  # the published widths; --fpn / --head / --proj change them
MIN_ANCHORS = 0  # ccr.min_anchors: a floor on anchors per image (0: gamma alone, the paper's rule)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def timm_backbone():
    import timm
    return timm.create_model("hrnet_w18_small_v2", pretrained=False, features_only=True,
                             feature_location="", out_indices=(1, 2, 3, 4))


class StandInBackbone(nn.Module):
    """Strided convs giving HRNet's feature shapes (18/36/72/144 channels at strides 4..32): lets the
    rest of the step run where timm is not installed. Not the paper's backbone."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, LEVELS[0], 3, stride=4, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(LEVELS, LEVELS[1:]))

    def forward(self, x):
        ys = [F.relu(self.stem(x))]
        for d in self.down:
            ys.append(F.relu(d(ys[-1])))
        return ys


class Fpn(nn.Module):
    def __init__(self, in_channels, channels):
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)

    def forward(self, xs):
        lat = [conv(x) for conv, x in zip(self.lateral_convs, xs)]
        for i in range(len(lat) - 2, -1, -1):
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        return [conv(t) for conv, t in zip(self.fpn_convs, lat)]


class SemanticFpnDecoder(nn.Module):
    def __init__(self, in_channels, channels, out_channels, levels=4):
        super().__init__()
        heads = []
        for i in range(levels):
            layers = []
            for k in range(max(1, i)):
                layers += [nn.Conv2d(in_channels if k == 0 else channels, channels, 3, padding=1, bias=False),
                           nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            heads.append(nn.Sequential(*layers))
        self.scale_heads = nn.ModuleList(heads)
        self.conv_seg = nn.Conv2d(channels, out_channels, 1)

    def features(self, levels):
        total = None
        for i, head in enumerate(self.scale_heads):
            y = levels[i]
            for k in range(len(head) // 3):
                y = head[3 * k + 2](head[3 * k + 1](head[3 * k](y)))
                if i > 0:
                    y = F.interpolate(y, size=levels[i - k - 1].shape[-2:], mode="bilinear", align_corners=False)
            total = y if total is None else total + y
        return total


class MultiTaskModel(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.fpn = Fpn(LEVELS, FPN)
        self.decoders = nn.ModuleDict({t: SemanticFpnDecoder(FPN, HEAD, k) for t, k in TASKS})

    def forward(self, x):
        levels = self.fpn(self.backbone(x))
        out = {}
        for t, _ in TASKS:
            feat = self.decoders[t].features(levels)
            pred = F.interpolate(self.decoders[t].conv_seg(feat), size=x.shape[-2:], mode="bilinear", align_corners=False)
            out[t] = (pred, feat)
        return out


def projector(channels):
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, PROJ, 1), nn.BatchNorm2d(PROJ))


def count(m):
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------- data

def load_batch(root):
    """Every sample listed in gt_sets/train.txt of a NYUD-layout folder, as our NyudDataset reads it,
    as host tensors: images (N, 3, H, W) ImageNet-normalised, semseg (N, H, W) with 255 ignore,
    depth (N, 1, H, W) with 0 invalid, normals (N, 3, H, W) with 0 invalid."""
    from skimage import io
    with open(os.path.join(root, "gt_sets", "train.txt")) as f:
        ids = [l.strip() for l in f if l.strip()]
    imgs, segs, depths, normals = [], [], [], []
    for i in ids:
        img = io.imread(os.path.join(root, "images", i + ".png")).astype(np.float32) / 255.0
        imgs.append(((img - MEAN) / STD).transpose(2, 0, 1))
        seg = io.imread(os.path.join(root, "segmentation", i + ".png")).astype(np.int64)
        segs.append(np.where((seg == 0) | (seg == 255), 255, seg - 1))
        depths.append(np.load(os.path.join(root, "depth", i + ".npy"))[None])
        normals.append(np.load(os.path.join(root, "normals", i + ".npy")).transpose(2, 0, 1))
    t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(np.stack(a))).to(dtype=dt)
    return t(imgs, torch.float32), t(segs, torch.int64), t(depths, torch.float32), t(normals, torch.float32)


# ---------------------------------------------------------------------------------------- losses

def masked_l1(pred, target):
    """L1 summed over channels at valid pixels (no channel 255, not all channels 0) / valid pixels."""
    valid = (target != 255).all(dim=1) & (target != 0).any(dim=1)
    n = valid.sum().clamp_min(1)
    return ((pred - target).abs().sum(dim=1) * valid).sum() / n


def ccr_loss(out, projectors, labels, rng):
    """lambda (1) * sum over targets of the pair loss against one source drawn from the others."""
    total = 0
    for t, _ in TASKS:
        s = rng.choice([u for u, _ in TASKS if u != t])
        feat = out[t][1]
        n, _, h, w = feat.shape
        proj = F.normalize(projectors[t](feat), dim=1).flatten(2)
        lab = F.interpolate(labels[s].float() if labels[s].dim() == 4 else labels[s][:, None].float(),
                            size=(h, w), mode="nearest").flatten(2)
        if s == "semseg":
            valid = lab[:, 0] != 255
        elif s == "depth":
            valid = lab[:, 0] > 0
        else:
            valid = lab.norm(dim=1) > 0
        anchors = ccr.sample_anchors(valid, max(1, int(0.01 * h * w + 1e-4), min(MIN_ANCHORS, h * w)))
        total = total + ccr.pair_loss(proj, lab, valid, anchors, s)
    return total


# ---------------------------------------------------------------------------------------- rows

def kernel_counts(step, device):
    """Kernels (and copies / memsets) one step runs on the GPU, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        step()
        torch.cuda.synchronize()
    kernels = copies = memsets = 0
    for e in p.events():
        if str(getattr(e, "device_type", "")).endswith("CUDA"):
            if e.name.startswith("Memcpy"):
                copies += 1
            elif e.name.startswith("Memset"):
                memsets += 1
            else:
                kernels += 1
    return {"kernels": kernels, "copies": copies, "memsets": memsets}


def run_step(a, ccr_on, precision, batch_host, backbone_fn, cudnn_benchmark=True):
    dev = a.device
    torch.manual_seed(0)
    torch_timing.set_tf32(torch, precision == "tf32")
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if dev == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = MultiTaskModel(backbone_fn()).to(dev).train()
    projectors = nn.ModuleDict({t: projector(HEAD) for t, _ in TASKS}).to(dev).train() if ccr_on else None
    params = list(model.parameters()) + (list(projectors.parameters()) if ccr_on else [])
    opt = torch.optim.Adam(params, lr=2e-4, weight_decay=1e-4)
    rng = random.Random(0)

    def step():
        # the batch comes from host memory every step, as our trainer uploads its loader's batch
        images, seg, depth, normals = (t.to(dev) for t in batch_host)
        labels = {"semseg": seg, "depth": depth, "normals": normals}
        opt.zero_grad(set_to_none=True)
        out = model(images)
        loss = LOSS_WEIGHTS["semseg"] * F.cross_entropy(out["semseg"][0], seg, ignore_index=255)
        loss = loss + LOSS_WEIGHTS["depth"] * masked_l1(out["depth"][0], depth)
        loss = loss + LOSS_WEIGHTS["normals"] * masked_l1(F.normalize(out["normals"][0], dim=1), normals)
        if ccr_on:
            loss = loss + ccr_loss(out, projectors, labels, rng)
        loss.backward()
        opt.step()
        return loss.item()  # a host read every step: the step's synchronisation (ours synchronises each timed step too)

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    extra = {"parameters_model": count(model), "parameters_total": count(model) + (count(projectors) if ccr_on else 0)}
    t = time.perf_counter()
    step()
    sync()
    extra["first_step_s"] = time.perf_counter() - t
    warmup = min(torch_timing.PLANS["dry" if a.dry else "gpu"][0], 2)  # after the first step, as StepBench.cs
    for _ in range(warmup):
        step()
    samples = []
    t_timed = time.perf_counter()
    for _ in range(a.steps):  # stops past 15 s with at least 3 samples, as StepBench.cs
        sync()
        t = time.perf_counter()
        step()
        sync()
        samples.append((time.perf_counter() - t) * 1e3)
        if len(samples) >= 3 and time.perf_counter() - t_timed > 15:
            break
    extra["timed_steps"] = len(samples)
    ms = float(np.median(samples))
    extra["min_ms"] = min(samples)
    extra["images_per_s"] = batch_host[0].shape[0] / (ms / 1e3)
    if dev == "cuda":
        extra["peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2 ** 20
        extra["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
        try:
            extra.update(kernel_counts(step, dev))
        except Exception as e:  # the counts are a side figure: the time stands without them
            print(f"  (kernel counts unavailable: {torch_timing.fail(e)})")
    if getattr(a, "profile", False):
        # where PyTorch's step spends its time, op by op (beside `Ccr.Bench step-profile`): aten ops by
        # self time over 2 steps, divided by 2
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                step()
        print(f"  profile ({'CCR on' if ccr_on else 'CCR off'}, {precision}; times are totals of 2 steps):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    torch_timing.set_tf32(torch, False)
    return ms, extra


def part_shapes(m):
    return sorted([list(p.shape) for p in m.parameters()])


def count_params(a):
    """Parameter counts and shapes per part: the golden of our model's parity test."""
    try:
        bb = timm_backbone()
        backbone, source = count(bb), "timm " + __import__("timm").__version__
    except ImportError:
        if not a.backbone_listing:
            print("timm is not installed: give --backbone-listing (timm's state-dict listing)", file=sys.stderr)
            return 2
        backbone, source = listing_count(a.backbone_listing), os.path.basename(a.backbone_listing)
    fpn = Fpn(LEVELS, FPN)
    decoders = {t: SemanticFpnDecoder(FPN, HEAD, k) for t, k in TASKS}
    proj = projector(HEAD)
    doc = {
        "backbone": {"parameters": backbone, "source": source},
        "fpn": {"parameters": count(fpn), "shapes": part_shapes(fpn)},
        "decoders": {t: {"parameters": count(d), "shapes": part_shapes(d)} for t, d in decoders.items()},
        "projector": {"parameters": count(proj), "shapes": part_shapes(proj), "count": len(TASKS)},
    }
    doc["model_parameters"] = backbone + count(fpn) + sum(count(d) for d in decoders.values())
    doc["total_parameters_with_ccr"] = doc["model_parameters"] + len(TASKS) * count(proj)
    import json
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"model {doc['model_parameters']:,} parameters, with CCR {doc['total_parameters_with_ccr']:,} -> {a.json}")
    return 0


def listing_count(path):
    """Trainable parameters of timm's hrnet_w18_small_v2 features_only (feature_location=""), from
    its full state-dict listing: the classifier head (incre_modules, downsamp_modules, final_layer,
    classifier) is not part of the features model, and BN running statistics are buffers."""
    total = 0
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, shape = line.split("\t")[:2]
            if name.split(".")[0] in ("incre_modules", "downsamp_modules", "final_layer", "classifier"):
                continue
            if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            dims = [int(v) for v in shape.strip("()").split(",") if v.strip()]
            total += math.prod(dims)
    return total


def main():
    global FPN, HEAD, PROJ, MIN_ANCHORS
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="NYUD-layout folder (Ccr.Bench report writes OUT/data/nyud-synthetic)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    ap.add_argument("--dry", action="store_true", help="one warm-up step (a CPU wiring check)")
    ap.add_argument("--precisions", default="fp32,tf32")
    ap.add_argument("--standin-backbone", action="store_true", help="without timm: run the step on a stand-in backbone")
    ap.add_argument("--count-params", action="store_true")
    ap.add_argument("--backbone-listing", help="timm's state-dict listing, for --count-params without timm")
    ap.add_argument("--fpn", type=int, default=FPN, help="FPN neck width (model.fpn_channels)")
    ap.add_argument("--head", type=int, default=HEAD, help="each task decoder's width (model.head_channels)")
    ap.add_argument("--proj", type=int, default=PROJ, help="CCR projector width (ccr.proj_dim)")
    ap.add_argument("--profile", action="store_true", help="after timing, print an op-by-op profile of 2 steps (torch.profiler)")
    ap.add_argument("--min-anchors", type=int, default=MIN_ANCHORS, help="ccr.min_anchors")
    a = ap.parse_args()
    FPN, HEAD, PROJ, MIN_ANCHORS = a.fpn, a.head, a.proj, a.min_anchors
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.count_params:
        return count_params(a)
    if not a.data:
        ap.error("--data is required (or --count-params)")
    torch_requires.require_device("torch_step_baseline.py", a.device)

    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
            "cudnn.benchmark": f"on; also off (ids ending {torch_requires.CUDNN_OFF})",
            "step timing": f"median of {a.steps} synchronised steps"}
    results = []
    try:
        import timm
        meta["timm"] = timm.__version__
        backbone_fn, missing = timm_backbone, None
    except ImportError:
        missing = "timm is not installed"
        backbone_fn = StandInBackbone if a.standin_backbone else None
    print(f"torch {torch.__version__} on {a.device}" + (f"; {missing}" + ("; stand-in backbone" if backbone_fn else "") if missing else ""))

    if backbone_fn is not None:
        m = MultiTaskModel(backbone_fn())
        status = "ok" if missing is None else f"skipped: {missing} (stand-in backbone)"
        results.append(torch_timing.row("model.parameters", "model", "parameters (timm backbone + FPN + decoders)",
                                        status=status, extra={"parameters": count(m)}))
        results.append(torch_timing.row("model.parameters_ccr", "model", "parameters with the CCR projectors", status=status,
                                        extra={"parameters": count(m) + len(TASKS) * count(projector(HEAD))}))
        del m
    batch_host = load_batch(a.data)
    shape = "x".join(map(str, batch_host[0].shape))
    # each configuration with cudnn.benchmark on (as PyTorch's users train: cuDNN picks each conv's
    # fastest algorithm in the first step) and off (PyTorch's default); the on rows carry the plain id
    for precision in a.precisions.split(","):
        for ccr_on in (False, True):
            for bench_on in torch_requires.cudnn_settings(a.device):
                rid = f"step.{'ccr' if ccr_on else 'base'}.{precision}" + ("" if bench_on else torch_requires.CUDNN_OFF)
                what = f"training step, {'with CCR' if ccr_on else 'no CCR'}" + ("" if bench_on else " (cudnn.benchmark off)")
                r = torch_timing.row(rid, "step", what, shape, precision)
                if backbone_fn is None:
                    r["status"] = f"skipped: {missing}; the paper model's backbone comes from timm (pip install timm)"
                else:
                    try:
                        ms, extra = run_step(a, ccr_on, precision, batch_host, backbone_fn, cudnn_benchmark=bench_on)
                        r["ms"], r["extra"] = ms, {k: float(v) for k, v in extra.items()}
                        if missing:
                            r["status"] = f"skipped: {missing}; timed with a stand-in backbone, not comparable"
                    except Exception as e:
                        r["status"] = torch_timing.fail(e)
                    finally:
                        torch.backends.cudnn.benchmark = False
                results.append(r)
                torch_timing.save(a.json, "torch", meta, results)
                print(f"  {rid:<31} {('%10.2f ms' % r['ms']) if 'ms' in r else ''} {r['status']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
