#!/usr/bin/env bash
# The paper model's CPU training step, ours beside PyTorch's, in one run (issue 20's table):
#   tools/cpu_step_compare.sh OUT [TIMM_SRC]
# Ours: `Ccr.Bench report --parts step` (the nyud-hrnet18 preset: HRNet-W18-small-v2 + FPN 256 +
# Semantic FPN 128 per task, Adam, from scratch) on a synthetic NYUD batch of 8 x 3x96x128, CCR off
# and on; PyTorch: tools/torch_step_baseline.py --device cpu on the same batch files (timm's HRNet from
# its source: TIMM_SRC is a folder holding timm/, e.g. from github:huggingface/pytorch-image-models;
# Debian's python3-torch, python3-torchvision and python3-skimage). Both sides use every core
# (THREADS to change PyTorch's), the same widths, anchors per image and optimiser; ROUNDS rounds
# alternate the two sides (default 2), STEPS timed steps each (default 8). MIN_ANCHORS sets
# ccr.min_anchors on both sides (default 0: the paper's gamma alone). Prints medians per row and the
# ratio ours / PyTorch; the JSON of every round stays in OUT. PYTHON: the interpreter that has torch.
set -euo pipefail
out=${1:?usage: tools/cpu_step_compare.sh OUT [TIMM_SRC]}
timm=${2:-}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-8}
rounds=${ROUNDS:-2}
anchors=${MIN_ANCHORS:-0}
cd "$(dirname "$0")/.."
mkdir -p "$out"
dotnet build Ccr.Bench -c Release -v q >/dev/null
for r in $(seq 1 "$rounds"); do
  dotnet run --project Ccr.Bench -c Release --no-build -- report --out "$out" --results "ours-$r.json" --parts step \
    --batch 8 --size 96x128 --steps "$steps" --set "ccr.min_anchors=$anchors"
  PYTHONPATH="$timm" "${PYTHON:-python3}" tools/torch_step_baseline.py --data "$out/data/nyud-synthetic" \
    --json "$out/torch-$r.json" --device cpu --threads "$threads" --steps "$steps" --precisions fp32 --min-anchors "$anchors"
done
"${PYTHON:-python3}" - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(side, rid_prefix):
    v = []
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{side}-{r}.json"))["results"]:
            # on the CPU both sides' variants (graphs off, cudnn.benchmark off) run the same step: all are samples
            if row["id"].startswith(rid_prefix) and row.get("ms") and "tf32" not in row["id"]:
                v.append(row["ms"])
    return v
print(f"\n| step (batch 8 x 3x96x128) | ours ms (median, range) | PyTorch ms (median, range) | ours / PyTorch |")
print("|---|---:|---:|---:|")
for name, rid in (("CCR off", "step.base.fp32"), ("CCR on", "step.ccr.fp32")):
    o, t = rows("ours", rid), rows("torch", rid)
    if not o or not t:
        print(f"| {name} | {o} | {t} | |"); continue
    mo, mt = statistics.median(o), statistics.median(t)
    print(f"| {name} | {mo:.0f} ({min(o):.0f}-{max(o):.0f}) | {mt:.0f} ({min(t):.0f}-{max(t):.0f}) | {mo / mt:.2f}x |")
PY
