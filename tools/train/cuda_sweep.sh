#!/usr/bin/env bash
# Several train.py runs side by side on one CUDA device, for a fixed
# wall-clock budget each (a GPU machine held for a fixed time: no resume
# across machines, so the schedule is bound to the clock, see train.py
# --minutes).
#
#   cuda_sweep.sh --work DIR --out DIR --minutes M [--device D] NAME:LAMBDA:INIT ... [-- TRAIN_ARGS...]
#
# Data and backbone come from $SPLITWIRE_SHARED (the ../shared layout: data/
# imagenette2-224/{classes.tsv,train/<wnid>/*.JPEG}, models/pretrained/*.tflite);
# the train set is whatever is there. Each run: train.py --device cuda --cosine
# --name NAME --lmbda LAMBDA --init INIT TRAIN_ARGS; then keep.py --half puts
# it in OUT/NAME/ (ckpt_last.pt, args.json, train.log) with its console log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
work="" out="" minutes="" device=cuda
runs=()
while [ $# -gt 0 ]; do
  case $1 in
    --work) work=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;  # cpu: try the script here
    --) shift; break ;;
    *:*:*) runs+=("$1"); shift ;;
    *) echo "cuda_sweep: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$work" ] || [ -z "$out" ] || [ -z "$minutes" ] || [ ${#runs[@]} = 0 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$work" "$out"

# Decode the JPEGs once, before the runs start, so they do not race to.
t0=$(date +%s)
PYTHONPATH="$here/../.." "$py" -c '
import sys
import numpy as np
from tools.train import data
p, _ = data.build_cache(sys.argv[1], "train")
print("cuda_sweep: train cache", np.load(p, mmap_mode="r").shape)
' "$work" || exit 1
echo "cuda_sweep: cache in $(( $(date +%s) - t0 )) s"

pids=()
for r in "${runs[@]}"; do
  IFS=: read -r name lmbda init <<<"$r"
  "$py" "$here/train.py" --device "$device" --cosine --minutes "$minutes" --epochs 100000 \
    --work "$work" --name "$name" --lmbda "$lmbda" --init "$init" "$@" \
    >"$work/$name.out" 2>&1 &
  pids+=($!)
  echo "cuda_sweep: $name (lambda $lmbda, from $init) pid $!"
done
fail=0
for i in "${!runs[@]}"; do
  IFS=: read -r name _ _ <<<"${runs[$i]}"
  if wait "${pids[$i]}"; then echo "cuda_sweep: $name done"; else echo "cuda_sweep: $name FAILED"; fail=1; fi
  tail -n 3 "$work/$name.out"
  if [ -f "$work/runs/$name/ckpt_last.pt" ]; then
    "$py" "$here/keep.py" --half "$work/runs/$name" "$out/$name" || fail=1
  fi
  mkdir -p "$out/$name"
  cp "$work/$name.out" "$out/$name/console.log"
done
exit $fail
