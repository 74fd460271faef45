#!/usr/bin/python3
"""A small PASCAL-Context set with the awkward cases, its labels as the reference loaders read
them, MTL-style saved predictions, and the reference evaluations of those predictions.

Labels follow Multi-Task-Learning-PyTorch's data/pascal_context.py (and ATRC's, which reads them
the same way): _preprocess_parts / has_human_parts, _load_human_parts, _load_normals_distilled
(valid LabelMap classes from the repositories' db_info JSON files), _load_edge, _load_sal_distilled,
then AddIgnoreRegions (MTL's rule and ATRC's rule are both applied and must agree). Predictions are
written as MTL's save_model_predictions does (PNG; a parts PNG only where the label is not all 255;
NYUD depth as .mat with variable 'depth') and scored with our re-implementations of MTL's
eval_human_parts / eval_semseg / eval_sal / eval_normals / eval_depth and ATRC's MaxF (beta^2 0.3).
Predictions read through PIL (palette PNGs give their raw indices). A second prediction folder
holds half-size saliency and semseg maps: their expected scores come from torch's
interpolate (bilinear, align_corners=False / nearest) back to the label size, which is what
`score --resize` promises.

Run:  /usr/bin/python3 tools/golden_pascal_labels.py   (python3-numpy, -scipy, -pil, -opencv,
-skimage, -torch). The JSON files of db_info come from the reference repositories:
    --db-info DIR  (a folder holding nyu_classes.json and context_classes.json; default
                    /tmp/ref/mtl_db_info)
Writes data/fixtures/pascal-mix/ (the dataset), data/fixtures/pascal-mix-pred/ and
pascal-mix-pred-small/ (predictions), data/fixtures/nyud-mtl-pred/depth/*.mat, and
Ccr.Tests/Fixtures/pascal/mix_expected.mat + mix_expected.json. Tests never run Python.
"""
import argparse
import json
import os
import shutil

import cv2
import numpy as np
import scipy.io as sio
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.morphology import thin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data", "fixtures", "pascal-mix")
PRED = os.path.join(ROOT, "data", "fixtures", "pascal-mix-pred")
PRED_SMALL = os.path.join(ROOT, "data", "fixtures", "pascal-mix-pred-small")
NYUD = os.path.join(ROOT, "data", "fixtures", "nyud")
NYUD_PRED = os.path.join(ROOT, "data", "fixtures", "nyud-mtl-pred")
EXPECT = os.path.join(ROOT, "Ccr.Tests", "Fixtures", "pascal")
H, W = 30, 40
PERSON = 15
# MTL's HUMAN_PART[6]: part name -> class
PART6 = {'hair': 1, 'head': 1, 'lear': 1, 'lebrow': 1, 'leye': 1, 'lfoot': 6, 'lhand': 4, 'llarm': 4,
         'llleg': 6, 'luarm': 3, 'luleg': 5, 'mouth': 1, 'neck': 2, 'nose': 1, 'rear': 1, 'rebrow': 1,
         'reye': 1, 'rfoot': 6, 'rhand': 4, 'rlarm': 4, 'rlleg': 6, 'ruarm': 3, 'ruleg': 5, 'torso': 2}
rng = np.random.default_rng(2024)


def mk(*p):
    os.makedirs(os.path.join(*p), exist_ok=True)
    return os.path.join(*p)


def box(y0, y1, x0, x1):
    m = np.zeros((H, W), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def voc_palette():
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def save_palette_png(path, idx, palette):
    im = Image.fromarray(idx.astype(np.uint8), mode="P")
    im.putpalette(palette)
    im.save(path)


# ------------------------------------------------------------------ the dataset
OBJ_DT = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]


def objects(items):
    """items: (class_name, class_ind, mask, [(part_name, mask), ...] or None)."""
    objs = np.zeros((1, len(items)), dtype=OBJ_DT)
    for i, (name, ind, m, parts) in enumerate(items):
        objs[0, i]["class"] = name
        objs[0, i]["class_ind"] = np.array([[ind]])
        objs[0, i]["mask"] = m
        if parts:
            a = np.zeros((1, len(parts)), dtype=[("part_name", "O"), ("mask", "O")])
            for j, (pn, pm) in enumerate(parts):
                a[0, j]["part_name"] = pn
                a[0, j]["mask"] = pm
            objs[0, i]["parts"] = a
        else:
            objs[0, i]["parts"] = np.zeros((0, 0))
    return objs


IMAGES = {
    # two persons with parts (overlapping: the later one paints over), a cat with parts (not a person)
    "2008_000010": [("person", PERSON, box(0, 30, 0, 16), [("hair", box(0, 3, 3, 9)), ("head", box(1, 6, 2, 10)),
                                                          ("neck", box(6, 8, 5, 8)), ("torso", box(8, 18, 1, 13)),
                                                          ("luarm", box(8, 13, 13, 16)), ("lhand", box(13, 16, 13, 16)),
                                                          ("rlleg", box(24, 30, 2, 6)), ("luleg", box(18, 24, 1, 7))]),
                    ("cat", 8, box(0, 8, 30, 40), [("head", box(0, 4, 30, 35))]),
                    ("person", PERSON, box(5, 30, 12, 26), [("torso", box(10, 20, 12, 24)), ("ruarm", box(10, 15, 24, 26)),
                                                           ("rfoot", box(27, 30, 14, 18))])],
    # a person without part annotations only: has_human_parts = 1 but nothing painted
    "2008_000011": [("person", PERSON, box(2, 28, 5, 20), None)],
    # a dog with parts, no person: has_human_parts = 0
    "2008_000012": [("dog", 12, box(10, 25, 10, 35), [("head", box(10, 15, 10, 16))])],
    # one small person with parts next to a person without parts
    "2008_000013": [("person", PERSON, box(10, 30, 20, 30), [("head", box(10, 14, 22, 27)), ("torso", box(14, 22, 21, 29)),
                                                            ("llleg", box(22, 30, 22, 25))]),
                    ("person", PERSON, box(0, 20, 0, 10), None)],
    # no objects at all
    "2008_000014": [],
}
IDS = list(IMAGES)


def make_dataset(valid_classes):
    shutil.rmtree(DATA, ignore_errors=True)
    for d in ["JPEGImages", "ImageSets/Context", "semseg/pascal-context", "human_parts", "normals_distill",
              "sal_distill", "pascal-context/trainval"]:
        mk(DATA, d)
    valid = sorted(valid_classes)
    invalid = [c for c in range(1, 460) if c not in valid_classes]
    for k, id_ in enumerate(IDS):
        Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(
            os.path.join(DATA, "JPEGImages", id_ + ".jpg"), quality=95)
        sem = rng.integers(0, 21, size=(H, W)).astype(np.uint8)
        sem[:, :3] = 255
        save_palette_png(os.path.join(DATA, "semseg", "pascal-context", id_ + ".png"), sem, voc_palette())
        sal = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
        sal[:8, :] = 128  # exactly on v / 255 = 0.502 > 0.5
        sal[8:10, :] = 127
        Image.fromarray(sal, mode="L").save(os.path.join(DATA, "sal_distill", id_ + ".png"))
        nrm = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        nrm[2, 2:6] = 0  # (0, 0, 0) decodes to (-1, -1, -1), kept on a valid class
        Image.fromarray(nrm).save(os.path.join(DATA, "normals_distill", id_ + ".png"))
        # LabelMap: blocks of valid classes (wall, floor, person, tvmonitor), invalid classes and 0
        lm = np.zeros((H, W), dtype=np.uint16)
        lm[:, :] = 440
        lm[20:, :] = 158
        lm[5:25, 8:18] = 284
        lm[0:10, 25:40] = rng.choice(invalid)
        lm[12:18, 28:36] = 427
        lm[25:30, 30:40] = rng.choice(invalid)
        lm[0:4, 0:4] = 0
        lm[2, 2:6] = 440
        lm[k % 7::7, 20] = rng.choice(valid)  # a dotted line: thinning corner cases
        sio.savemat(os.path.join(DATA, "pascal-context", "trainval", id_ + ".mat"), {"LabelMap": lm},
                    do_compression=(k % 2 == 0))
        anno = np.zeros((1, 1), dtype=[("imname", "O"), ("objects", "O")])
        anno[0, 0]["imname"] = id_ + ".jpg"
        anno[0, 0]["objects"] = objects(IMAGES[id_]) if IMAGES[id_] else np.zeros((1, 0), dtype=OBJ_DT)
        sio.savemat(os.path.join(DATA, "human_parts", id_ + ".mat"), {"anno": anno}, do_compression=True)
    with open(os.path.join(DATA, "ImageSets", "Context", "val.txt"), "w") as f:
        f.write("\n".join(IDS) + "\n")
    with open(os.path.join(DATA, "ImageSets", "Context", "train.txt"), "w") as f:
        f.write("\n".join(IDS[:2]) + "\n")


# ------------------------------------------------------------------ labels, as the reference loaders read them
def has_human_parts(id_):
    """_preprocess_parts: categories of objects with area > 0; has_human_parts: 15 among them."""
    objs = sio.loadmat(os.path.join(DATA, "human_parts", id_ + ".mat"))["anno"][0][0][1][0]
    cats = [int(o[1]) if np.sum(o[2]) > 0 else -1 for o in objs]
    return PERSON in cats


def load_human_parts(id_, shape):
    if not has_human_parts(id_):
        return np.zeros(shape, dtype=np.float32)
    target = None
    for o in sio.loadmat(os.path.join(DATA, "human_parts", id_ + ".mat"))["anno"][0][0][1][0]:
        if o[1][0][0] == PERSON and len(o[3]) != 0:
            if target is None:
                target = np.zeros(o[2].shape)
            for j in range(len(o[3][0])):
                target[o[3][0][j][1].astype(bool)] = PART6[str(o[3][0][j][0][0])]
    return np.zeros(shape, dtype=np.float32) if target is None else target.astype(np.float32)


def ignore_regions_parts(t):
    mtl = 255 * np.ones(t.shape, t.dtype) if (t == 0).all() else t
    atrc = np.full(t.shape, 255, t.dtype) if ((t == 0) | (t == 255)).all() else t
    assert np.array_equal(mtl, atrc)
    return atrc


def load_normals(id_, valid_classes):
    tmp = np.array(Image.open(os.path.join(DATA, "normals_distill", id_ + ".png"))).astype(np.float32)
    tmp = 2.0 * tmp / 255.0 - 1.0
    labels = sio.loadmat(os.path.join(DATA, "pascal-context", "trainval", id_ + ".mat"))["LabelMap"]
    n = np.zeros(tmp.shape, dtype=np.float64)
    for x in np.unique(labels):
        if x in valid_classes:
            n[labels == x, :] = tmp[labels == x, :]
    return n


def load_edge(id_):
    lm = sio.loadmat(os.path.join(DATA, "pascal-context", "trainval", id_ + ".mat"))["LabelMap"]
    return thin(np.abs(cv2.Laplacian(lm, cv2.CV_64F)) > 0).astype(np.float32)


def load_sal(id_):
    s = np.array(Image.open(os.path.join(DATA, "sal_distill", id_ + ".png"))).astype(np.float32) / 255.
    return (s > 0.5).astype(np.float32)


def load_semseg(id_):
    return np.array(Image.open(os.path.join(DATA, "semseg", "pascal-context", id_ + ".png"))).astype(np.float32)


# ------------------------------------------------------------------ evaluations (MTL / ATRC definitions)
def seg_miou(pairs, n_classes):
    """eval_human_parts / eval_semseg: skip labels that are only 0 or only 255; tp/fp/fn over valid."""
    tp, fp, fn = [np.zeros(n_classes) for _ in range(3)]
    used = 0
    for gt, mask in pairs:
        u = np.unique(gt)
        if len(u) == 1 and (u[0] == 255 or u[0] == 0):
            continue
        used += 1
        valid = gt != 255
        for c in range(n_classes):
            g, p = gt == c, mask == c
            tp[c] += np.sum(g & p & valid)
            fp[c] += np.sum(~g & p & valid)
            fn[c] += np.sum(g & ~p & valid)
    jac = tp / np.maximum(tp + fp + fn, 1e-8)
    return float(np.mean(jac)), used


def mtl_eval_sal(pairs):
    """eval_sal with mask_thres = np.linspace(0.2, 0.9, 15): per-image jaccard, precision, recall."""
    thr = np.linspace(0.2, 0.9, 15)
    jac = np.zeros((len(pairs), len(thr))); prec = np.zeros_like(jac); rec = np.zeros_like(jac)
    for i, (gt, mask) in enumerate(pairs):
        g = gt.astype(bool)
        for j, t in enumerate(thr):
            p = (mask > t)
            if np.isclose(np.sum(g), 0) and np.isclose(np.sum(p), 0):
                jac[i, j] = 1
            else:
                jac[i, j] = np.sum(g & p) / np.sum(g | p, dtype=np.float32)
            tp = (p & g).sum(); fn = (~p & g).sum(); fp = (p & ~g).sum()
            prec[i, j] = tp / (tp + fp + 1e-12)
            rec[i, j] = tp / (tp + fn + 1e-12)
    mp, mr = prec.mean(0), rec.mean(0)
    f = 2 * mp * mr / (mp + mr + 1e-12)
    return float(np.max(f)), float(np.max(jac.mean(0))), [float(v) for v in thr]


def atrc_maxf(pairs):
    """ATRC's MaxF: thresholds torch.arange(0.05, 1, 0.05) (float32), preds >= t, counts over the set."""
    thr = torch.arange(0.05, 1, 0.05)
    tp = torch.zeros(len(thr)); pp = torch.zeros(len(thr)); ap = torch.zeros(len(thr))
    for gt, prob in pairs:
        g = torch.from_numpy(gt).long(); p = torch.from_numpy(prob.astype(np.float32))
        valid = g != 255
        for k, t in enumerate(thr):
            fp_ = torch.masked_select((p >= t).long(), valid); ft = torch.masked_select(g, valid)
            tp[k] += torch.sum(fp_ * ft); pp[k] += torch.sum(fp_); ap[k] += torch.sum(ft)
    prec = tp.float() / pp; recall = tp.float() / ap
    f = (1 + 0.3) * prec * recall / (0.3 * prec + recall)
    f[torch.isnan(f)] = 0
    return float(f.max())


def mtl_eval_normals(pairs):
    deg = []
    for label, pred_png in pairs:
        label = label.copy()
        if len(np.unique(label)) == 1 and np.unique(label)[0] == 0:
            continue
        pred = 2. * cv2.imread(pred_png).astype(np.float32)[..., ::-1] / 255. - 1
        pred = pred / (np.linalg.norm(pred, ord=2, axis=2)[..., None] + 1e-12)
        valid = np.linalg.norm(label, ord=2, axis=2) != 0
        pred[~valid, :] = 0.
        label[~valid, :] = 0.
        label = label / (np.linalg.norm(label, ord=2, axis=2)[..., None] + 1e-12)
        d = np.rad2deg(np.arccos(np.clip(np.sum(pred * label, axis=2), -1, 1)))
        deg.extend(d[valid])
    return float(np.mean(deg))


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-info", default="/tmp/ref/mtl_db_info")
    args = ap.parse_args()
    with open(os.path.join(args.db_info, "nyu_classes.json")) as f:
        cls_nyu = json.load(f)
    with open(os.path.join(args.db_info, "context_classes.json")) as f:
        cls_context = json.load(f)
    valid_classes = [cls_context[c] for c in cls_nyu if c in cls_context and c != "unknown"]
    valid_classes.append(cls_context["tvmonitor"])

    make_dataset(set(valid_classes))
    expected_arrays, expected = {}, {"ids": IDS, "normals_valid_classes": sorted(set(valid_classes))}
    labels = {}
    for id_ in IDS:
        img_shape = np.array(Image.open(os.path.join(DATA, "JPEGImages", id_ + ".jpg")).convert("RGB")).shape[:2]
        parts = ignore_regions_parts(load_human_parts(id_, img_shape))
        normals = load_normals(id_, valid_classes)
        labels[id_] = {"parts": parts, "normals": normals, "edge": load_edge(id_), "sal": load_sal(id_),
                       "semseg": load_semseg(id_)}
        expected_arrays["parts_" + id_] = parts.astype(np.uint8)
        expected_arrays["normals_" + id_] = normals.astype(np.float32)
        expected_arrays["edge_" + id_] = labels[id_]["edge"].astype(np.uint8)
    expected["parts_annotated"] = [id_ for id_ in IDS if not (labels[id_]["parts"] == 255).all()]
    sio.savemat(os.path.join(EXPECT, "mix_expected.mat"), expected_arrays, do_compression=True)

    # MTL-style predictions
    shutil.rmtree(PRED, ignore_errors=True)
    for t in ["human_parts", "semseg", "sal", "normals"]:
        mk(PRED, t)
    random_palette = [int(v) for v in rng.integers(0, 256, size=768)]
    parts_pairs, sem_pairs, sal_pairs, sal_probs, nrm_pairs = [], [], [], [], []
    for k, id_ in enumerate(IDS):
        L = labels[id_]
        if not (L["parts"] == 255).all():  # save_model_predictions skips all-255 labels
            pred = np.where(rng.random((H, W)) < 0.7, L["parts"], rng.integers(0, 7, (H, W))).astype(np.uint8)
            pred[L["parts"] == 255] = 0
            path = os.path.join(PRED, "human_parts", id_ + ".png")
            if k == 0:
                save_palette_png(path, pred, random_palette)  # another framework's colours
            else:
                Image.fromarray(pred, mode="L").save(path)
        sem = np.where(rng.random((H, W)) < 0.6, np.where(L["semseg"] == 255, 0, L["semseg"]),
                       rng.integers(0, 21, (H, W))).astype(np.uint8)
        sem_path = os.path.join(PRED, "semseg", id_ + ".png")
        if k % 2 == 0:
            save_palette_png(sem_path, sem, random_palette)
        else:
            Image.fromarray(sem, mode="L").save(sem_path)
        sal = np.clip(L["sal"] * 170 + rng.normal(40, 60, (H, W)), 0, 255).astype(np.uint8)
        Image.fromarray(sal, mode="L").save(os.path.join(PRED, "sal", id_ + ".png"))
        # normals: right on the valid classes (the label's own PNG bytes), wrong elsewhere
        src = np.array(Image.open(os.path.join(DATA, "normals_distill", id_ + ".png")))
        wrong = rng.integers(0, 256, size=src.shape, dtype=np.uint8)
        keep = np.linalg.norm(L["normals"], axis=2) != 0
        nrm = np.where(keep[..., None], src, wrong).astype(np.uint8)
        nrm_path = os.path.join(PRED, "normals", id_ + ".png")
        Image.fromarray(nrm).save(nrm_path)
    for id_ in IDS:  # read back as MTL's eval does (PIL)
        L = labels[id_]
        pp = os.path.join(PRED, "human_parts", id_ + ".png")
        u = np.unique(L["parts"])
        if not (len(u) == 1 and u[0] in (0, 255)):
            parts_pairs.append((L["parts"], np.array(Image.open(pp)).astype(np.float32)))
        sem_pairs.append((L["semseg"], np.array(Image.open(os.path.join(PRED, "semseg", id_ + ".png"))).astype(np.float32)))
        prob = np.array(Image.open(os.path.join(PRED, "sal", id_ + ".png"))).astype(np.float32) / 255.
        sal_pairs.append((L["sal"], prob))
        nrm_pairs.append((L["normals"], os.path.join(PRED, "normals", id_ + ".png")))
    expected["human_parts_mIoU"], expected["human_parts_images"] = seg_miou(parts_pairs, 7)
    expected["semseg_mIoU"], _ = seg_miou(sem_pairs, 21)
    expected["sal_maxF_mtl"], expected["sal_mIoU_mtl"], expected["sal_thresholds_mtl"] = mtl_eval_sal(sal_pairs)
    expected["sal_maxF_atrc"] = atrc_maxf(sal_pairs)
    expected["normals_mean"] = mtl_eval_normals(nrm_pairs)
    # what every-pixel-but-(0,0,0) normals (the old reading) would have scored, for the record
    old = [(2.0 * np.array(Image.open(os.path.join(DATA, "normals_distill", i + ".png"))).astype(np.float32) / 255. - 1, p)
           for i, (_, p) in zip(IDS, nrm_pairs)]
    expected["normals_mean_without_mask"] = mtl_eval_normals(old)

    # Half-size predictions; --resize brings them back with torch's rules.
    shutil.rmtree(PRED_SMALL, ignore_errors=True)
    mk(PRED_SMALL, "sal"); mk(PRED_SMALL, "semseg")
    rs_sal, rs_sem = [], []
    for id_ in IDS:
        L = labels[id_]
        sal = np.clip(rng.normal(120, 70, (H // 2, W // 2)) + 60 * cv2.resize(L["sal"], (W // 2, H // 2),
                      interpolation=cv2.INTER_NEAREST), 0, 255).astype(np.uint8)
        Image.fromarray(sal, mode="L").save(os.path.join(PRED_SMALL, "sal", id_ + ".png"))
        sem = rng.integers(0, 21, (H // 2, W // 2)).astype(np.uint8)
        Image.fromarray(sem, mode="L").save(os.path.join(PRED_SMALL, "semseg", id_ + ".png"))
        p = torch.from_numpy(sal.astype(np.float32) / 255.)[None, None]
        up = F.interpolate(p, size=(H, W), mode="bilinear", align_corners=False)[0, 0].numpy()
        rs_sal.append((L["sal"], up))
        s = torch.from_numpy(sem.astype(np.float32))[None, None]
        rs_sem.append((L["semseg"], F.interpolate(s, size=(H, W), mode="nearest")[0, 0].numpy()))
    expected["resized_sal_maxF_atrc"] = atrc_maxf(rs_sal)
    expected["resized_semseg_mIoU"], _ = seg_miou(rs_sem, 21)

    # NYUD depth predictions as MTL saves them (.mat, variable 'depth'), scored as eval_depth does
    shutil.rmtree(NYUD_PRED, ignore_errors=True)
    mk(NYUD_PRED, "depth")
    total, n_valid = 0.0, 0
    with open(os.path.join(NYUD, "gt_sets", "val.txt")) as f:
        nyud_ids = f.read().split()
    for id_ in nyud_ids:
        label = np.load(os.path.join(NYUD, "depth", id_ + ".npy")).astype(np.float32)
        pred = (label + rng.normal(0, 0.4, label.shape)).astype(np.float32)
        pred = np.abs(pred) + 0.05
        sio.savemat(os.path.join(NYUD_PRED, "depth", id_ + ".mat"), {"depth": pred})
        pred = sio.loadmat(os.path.join(NYUD_PRED, "depth", id_ + ".mat"))["depth"].astype(np.float32)
        valid = label != 0
        n_valid += np.sum(valid)
        total += np.sum((label[valid] - pred[valid]) ** 2)
    expected["nyud_depth_rmse"] = float(np.sqrt(total / n_valid))

    with open(os.path.join(EXPECT, "mix_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps({k: v for k, v in expected.items() if not isinstance(v, list)}, indent=1))


if __name__ == "__main__":
    main()
