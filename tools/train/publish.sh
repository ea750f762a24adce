#!/usr/bin/env bash
# Exports a run as a bundle and measures it: export.py, then `splitwire eval`
# (the C runtime) and torch_eval.py (PyTorch) on the same images, the uncompressed
# backbone on those images too, and card.py to write the numbers into the
# bundle's manifest and model card. The C results are left in
# build-ml/eval/<name>.json and .csv for the rate-accuracy table. The run's
# args.json and train.log are recorded in models/runs/<run>/ (committed with
# the bundle); its checkpoint stays in the ignored cache.
#
#   tools/train/publish.sh RUN NAME VERSION RATE_INDEX [LIMIT] [-- export.py args]
#
# RUN: a run directory, or a run name looked up in build-ml/runs/ and then in
# build-ml/kept/ (keep.py, restore_kept.sh).
# LIMIT: images spread over Imagenette val (default 1000; 0 = all 3925).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 4 ] || { sed -n 2,14p "$0"; exit 2; }
run=$1 name=$2 version=$3 rate=$4
shift 4
work=${SPLITWIRE_WORK:-$root/build-ml}
if [ ! -e "$run/ckpt_last.pt" ]; then
    for d in "$work/runs/$run" "$work/kept/$run" "$work/kept/$(basename "$run")"; do
        [ -e "$d/ckpt_last.pt" ] && { run=$d; break; }
    done
fi
[ -e "$run/ckpt_last.pt" ] || { echo "publish: no checkpoint for $run (build-ml/runs, build-ml/kept)" >&2; exit 1; }
limit=1000
if [ $# -gt 0 ] && [ "$1" != "--" ]; then limit=$1; shift; fi
[ "${1:-}" = "--" ] && shift
py=/usr/bin/python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cli=$root/build/splitwire
data=${SPLITWIRE_SHARED:-$root/../shared}/data/imagenette2-224/val
out=$root/build-ml/eval
mkdir -p "$out"
lim=()
[ "$limit" -gt 0 ] && lim=(--limit "$limit")

$py "$root/tools/train/export.py" "$run" --name "$name" --version "$version" --rate-index "$rate" "$@"
# The bundle's own backbone (MobileNetV2, or MobileNetV1 for --backbone mnv1
# runs) is the fidelity reference and the backbone row.
bbid=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["backbone"]["id"])' \
    "$root/models/$name/manifest.json")
bbonnx=$root/build/models/$bbid.onnx
"$cli" eval --bundle "$root/models/$name" --data "$data" "${lim[@]}" --fidelity --json --quiet \
    --backbone "$bbonnx" --csv "$out/$name.csv" > "$out/$name.json"
$py "$root/tools/train/torch_eval.py" "$run" --limit "$limit" --json "$out/$name.torch.json"
bb=$out/backbone-$limit.json
[ "$bbid" = mobilenet_v2_1.0_224 ] || bb=$out/backbone-$bbid-$limit.json
[ -s "$bb" ] || "$cli" eval --backbone "$bbonnx" --data "$data" "${lim[@]}" --json --quiet > "$bb"
$py "$root/tools/train/card.py" "$root/models/$name" --eval "$out/$name.json" \
    --torch "$out/$name.torch.json" --backbone "$bb"
PYTHONPATH="$root" $py - "$run" <<'PY'
import sys
from tools.train import keep
print("publish: run record in %s" % keep.record(sys.argv[1]))
PY
