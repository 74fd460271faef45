#!/usr/bin/env bash
# Data-parallel scaling of `Ccr.Train train` under mpirun: for each layout (ranks x per-rank batch)
# a short and a long run; the per-step figures are the differences (start-up, JIT, data generation
# and the closing evaluation cancel). Prints wall and CPU seconds (user + sys of mpirun and its
# ranks) per image, and each rank's time in collectives (the run's closing "distributed:" lines).
#
#   dotnet build Ccr.sln -c Release
#   tools/mpi_scaling.sh [CONFIG] [DEVICE]          # defaults: synth-cpu cpu
#   LAYOUTS="1x8 2x4 2x8" SHORT=8 LONG=104 tools/mpi_scaling.sh synth-gpu cuda
#
# On a shared machine the wall figures measure the machine's load as much as Ccr: record `uptime`
# beside them (printed), or compare CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-synth-cpu}
DEVICE=${2:-cpu}
LAYOUTS=${LAYOUTS:-"1x8 2x4 2x8"}
SHORT=${SHORT:-8}
LONG=${LONG:-104}
OUT=${OUT:-$(mktemp -d /tmp/ccr-scaling.XXXX)}
DLL=Ccr.Train/bin/Release/net10.0/Ccr.Train.dll
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 CI=true
COMMON=(train --config "$CONFIG" --device "$DEVICE" --set "data.path=$OUT/data" --set data.train_size=192 --set data.val_size=8
        --set train.epochs=100 --set train.eval_every=0 --set train.log_every=8 --set train.checkpoint_every=0)

run() { # layout steps -> "wall cpu"; one rank runs without mpirun (which would bind it to one core)
  local np=${1%x*} b=${1#*x} st=$2 t launch=()
  [ "$np" -gt 1 ] && launch=(mpirun -np "$np")
  /usr/bin/time -o "$OUT/t" -f "%e %U %S" "${launch[@]}" dotnet "$DLL" "${COMMON[@]}" --set "train.batch_size=$b" \
    --set "train.max_steps=$st" --out "$OUT/r_${1}_$st" > "$OUT/r_${1}_$st.log" 2>&1
  t=$(tail -n 1 "$OUT/t")
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' <<<"$t"
}

echo "config $CONFIG, device $DEVICE, steps $LONG - $SHORT, $(nproc) cores; $(uptime)"
printf "%-8s %12s %14s %14s\n" layout global_batch "wall ms/img" "cpu ms/img"
for layout in $LAYOUTS; do
  read -r w1 c1 <<<"$(run "$layout" "$SHORT")"
  read -r w2 c2 <<<"$(run "$layout" "$LONG")"
  np=${layout%x*}; b=${layout#*x}
  imgs=$(( (LONG - SHORT) * np * b ))
  printf "%-8s %12d %14.1f %14.1f\n" "$layout" $((np * b)) "$(bc -l <<<"1000 * ($w2 - $w1) / $imgs")" "$(bc -l <<<"1000 * ($c2 - $c1) / $imgs")"
  grep "distributed: rank" "$OUT/r_${layout}_$LONG.log" | sed 's/^/    /' || true
done
echo "$(uptime)"
