#!/usr/bin/env bash
# The GPU report in one command: everything issue 11 asks a GPU machine to measure, in one run on one
# card, written under OUT (docs/guide/GPU.md says how to run it with the device tool):
#   verify            Ccr.Bench verify on the card (every kernel against its float64 reference)
#   ours_kernels      Ccr.Bench report --parts model,kernels: parameter counts, kernel cases at the
#                     paper's shapes (cases.json), the CCR pair
#   ours_step         Ccr.Bench report --parts step: the training step (CCR off / on, fp32 / TF32; fp32
#                     also with CUDA graphs off; peak memory; launches); a separate process, so a
#                     CUDA fault in one part spares the other
#   torch_kernels     tools/torch_baseline.py --cases: the same cases in PyTorch
#   torch_step        tools/torch_step_baseline.py: the same model, step, batch and precision in PyTorch
#   memcheck          Ccr.Bench verify --small under compute-sanitizer --tool memcheck
#   racecheck         Ccr.Bench verify --small under compute-sanitizer --tool racecheck
#   table             Ccr.Bench report-table: OUT/report.md and OUT/report.json (ours, PyTorch, ratio)
# A part that fails or runs out of time is a row of the table; the other parts still run. The whole run
# keeps to a budget (CCR_REPORT_BUDGET_S, default 450 s): each part gets at most its own cap and what is
# left of the budget, and is skipped when too little is left.
#
#   bash tools/gpu_report.sh OUT            on a GPU machine, with the published binary in .gpu/; exits 3
#                                           at once, with one line saying why, unless Ccr.Bench sees CUDA
#   bash tools/gpu_report.sh OUT --cpu      the same wiring on a CPU at tiny shapes (a check, not a timing)
#
# Binary: $CCR_BENCH, else .gpu/Ccr.Bench/Ccr.Bench (tools/publish-gpu.sh), else the
# Release build (dotnet Ccr.Bench/bin/Release/net10.0/Ccr.Bench.dll). Python: $PYTHON, else the first of
# python3, /usr/bin/python3 that imports torch.
set -u
OUT=${1:?usage: tools/gpu_report.sh OUT [--cpu]}
MODE=gpu
[ "${2:-}" = "--cpu" ] && MODE=cpu
BUDGET=${CCR_REPORT_BUDGET_S:-450}
RESERVE=20                      # seconds kept for the table at the end
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
: > "$OUT/parts.tsv"

if [ -n "${CCR_BENCH:-}" ]; then BENCH=($CCR_BENCH)
elif [ -x .gpu/Ccr.Bench/Ccr.Bench ]; then BENCH=(.gpu/Ccr.Bench/Ccr.Bench)
elif [ -f Ccr.Bench/bin/Release/net10.0/Ccr.Bench.dll ]; then BENCH=(dotnet Ccr.Bench/bin/Release/net10.0/Ccr.Bench.dll)
else echo "no Ccr.Bench binary: run tools/publish-gpu.sh (or dotnet build -c Release)" >&2; exit 2
fi
# Host code fully optimised from its first call: under tiered compilation a report that keeps meeting
# new code times unoptimised host code (a CPU cross-entropy ran 30x slower after 60 other cases).
export DOTNET_TieredCompilation=0
# GPU mode demands a CUDA device before anything long: without one (no driver ILGPU can load, no
# card, CCR_DEVICE=cpu) every part would time the CPU accelerator for minutes and call it the GPU
if [ "$MODE" = gpu ]; then
  PROBE=$(timeout -k 5 60 "${BENCH[@]}" device --require cuda 2>&1); rc=$?
  printf '%s\n' "$PROBE" > "$OUT/device.txt"
  if [ "$rc" != 0 ]; then
    why=$(printf '%s\n' "$PROBE" | grep '^device:' | sed 's/^device: //' | tr '\n' ' ')
    echo "gpu_report.sh: no CUDA device, nothing measured (Ccr.Bench device --require cuda: exit $rc): ${why:-$(printf '%s' "$PROBE" | tail -n 1)}" >&2
    exit 3
  fi
  printf '%s\n' "$PROBE"
fi
PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch" >/dev/null 2>&1; then PY=$p; break; fi
done

# part NAME CAP_SECONDS COMMAND...: runs COMMAND with its output in OUT/NAME.log, time-boxed, and
# records "name, exit code, seconds, log, note" in OUT/parts.tsv.
part() {
  local name=$1 cap=$2; shift 2
  local left=$(( BUDGET - RESERVE - ($(date +%s) - START) ))
  local t=$(( cap < left ? cap : left ))
  if [ "$t" -lt 20 ]; then
    printf '%s\t-\t0\t%s.log\tskipped: out of the time budget (%s s)\n' "$name" "$name" "$BUDGET" >> "$OUT/parts.tsv"
    echo "== $name: skipped (out of the time budget)"; return
  fi
  echo "== $name (at most $t s): $*"
  local t0=$(date +%s)
  timeout -k 10 "$t" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local secs=$(( $(date +%s) - t0 ))
  local note=""
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && note="timed out after $t s"
  printf '%s\t%s\t%s\t%s.log\t%s\n' "$name" "$rc" "$secs" "$name" "$note" >> "$OUT/parts.tsv"
  tail -n 3 "$OUT/$name.log" | sed 's/^/   /'
  echo "   exit $rc after $secs s"
}
skip() { printf '%s\t-\t0\t-\tskipped: %s\n' "$1" "$2" >> "$OUT/parts.tsv"; echo "== $1: skipped ($2)"; }

# ---------------------------------------------------------------- where and when
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host=$(hostname)"
  echo "command=bash tools/gpu_report.sh $*"
  echo "mode=$MODE"
  echo "dry=$([ "$MODE" = cpu ] && echo "yes: CPU wiring check at tiny shapes, no figure means anything" || echo no)"
  echo "binary=${BENCH[*]}"
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "card=$(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | head -1)"
    echo "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
    echo "cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
  else
    echo "card=none (no nvidia-smi)"
  fi
  [ -n "$PY" ] && echo "torch=$("$PY" -c 'import torch, sys; print(torch.__version__, "python", sys.version.split()[0])' 2>&1 | tail -1)"
} > "$OUT/meta.txt"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/meta.txt"

# CUPTI (kernel-launch counts of our step): the toolkit's, else the one PyTorch's wheels bring
CUPTI=${CCR_CUPTI:-}
if [ -z "$CUPTI" ] && [ "$MODE" = gpu ]; then
  CUPTI=$(ls /usr/local/cuda*/extras/CUPTI/lib64/libcupti.so* /usr/local/cuda*/lib64/libcupti.so* 2>/dev/null | head -1)
  if [ -z "$CUPTI" ] && [ -n "$PY" ]; then
    CUPTI=$("$PY" -c "import glob, os, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()] + sys.path
hits = [h for d in dirs if os.path.isdir(d) for h in glob.glob(os.path.join(d, 'nvidia', '**', 'libcupti.so*'), recursive=True)]
hits += [h for d in dirs if os.path.isdir(d) for h in glob.glob(os.path.join(d, 'torch', 'lib', 'libcupti*.so*'))]
print(sorted(hits)[0] if hits else '')" 2>/dev/null)
  fi
fi
echo "cupti=${CUPTI:-none found}" >> "$OUT/meta.txt"

# ---------------------------------------------------------------- the parts
if [ "$MODE" = cpu ]; then
  DRY=(--dry); PYDEV=(--device cpu --dry); STEP_EXTRA=(--standin-backbone --steps 2); VERIFY=(verify --small)
else
  DRY=(); PYDEV=(--device cuda); STEP_EXTRA=(--steps 10); VERIFY=(verify)
fi
part verify 120 "${BENCH[@]}" "${VERIFY[@]}"
part ours_kernels 120 "${BENCH[@]}" report --out "$OUT" --results ours_kernels.json --parts model,kernels "${DRY[@]}"
part ours_step 300 "${BENCH[@]}" report --out "$OUT" --results ours_step.json --parts step "${DRY[@]}" ${CUPTI:+--cupti "$CUPTI"}
if [ -z "$PY" ]; then
  skip torch_kernels "no python with torch"; skip torch_step "no python with torch"
else
  if [ -f "$OUT/cases.json" ]; then
    part torch_kernels 120 "$PY" tools/torch_baseline.py --cases "$OUT/cases.json" --json "$OUT/torch_kernels.json" "${PYDEV[@]}"
  else skip torch_kernels "our side wrote no cases.json"; fi
  if [ -d "$OUT/data/nyud-synthetic" ]; then
    part torch_step 150 "$PY" tools/torch_step_baseline.py --data "$OUT/data/nyud-synthetic" --json "$OUT/torch_step.json" "${PYDEV[@]}" "${STEP_EXTRA[@]}"
  else skip torch_step "our side wrote no data/nyud-synthetic"; fi
fi
# the step's batch (20 MB at 480x640) is not worth carrying back; CCR_REPORT_KEEP_DATA=1 keeps it
[ -z "${CCR_REPORT_KEEP_DATA:-}" ] && rm -rf "$OUT/data"
if command -v compute-sanitizer >/dev/null 2>&1; then
  SAN=(--error-exitcode 9 --print-limit 20 --show-backtrace device)
  part memcheck 90 compute-sanitizer --tool memcheck "${SAN[@]}" "${BENCH[@]}" verify --small
  part racecheck 90 compute-sanitizer --tool racecheck "${SAN[@]}" "${BENCH[@]}" verify --small
else
  skip memcheck "compute-sanitizer not found"; skip racecheck "compute-sanitizer not found"
fi

# ---------------------------------------------------------------- the table
echo "total=$(( $(date +%s) - START )) s before the table" >> "$OUT/meta.txt"
"${BENCH[@]}" report-table "$OUT" > "$OUT/table.log" 2>&1
rc=$?
if [ -f "$OUT/report.md" ]; then cat "$OUT/report.md"; else cat "$OUT/table.log"; cat "$OUT/parts.tsv"; fi
echo "report: $OUT/report.md, $OUT/report.json ($(( $(date +%s) - START )) s in all; table exit $rc)"
