#!/usr/bin/env bash
# Exports a run as a bundle and measures it: export.py, then `splitwire eval`
# (the C runtime) and torch_eval.py (PyTorch) on the same images, the uncompressed
# backbone on those images too, and card.py to write the numbers into the
# bundle's manifest and model card. The C results are left in
# build-ml/eval/<name>.json and .csv for the rate-accuracy table.
#
#   tools/train/publish.sh RUN_DIR NAME VERSION RATE_INDEX [LIMIT] [-- export.py args]
#
# LIMIT: images spread over Imagenette val (default 1000; 0 = all 3925).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 4 ] || { sed -n 2,10p "$0"; exit 2; }
run=$1 name=$2 version=$3 rate=$4
shift 4
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
"$cli" eval --bundle "$root/models/$name" --data "$data" "${lim[@]}" --fidelity --json --quiet \
    --csv "$out/$name.csv" > "$out/$name.json"
$py "$root/tools/train/torch_eval.py" "$run" --limit "$limit" --json "$out/$name.torch.json"
bb=$out/backbone-$limit.json
[ -s "$bb" ] || "$cli" eval --backbone "$root/build/models/mobilenet_v2_1.0_224.onnx" --data "$data" \
    "${lim[@]}" --json --quiet > "$bb"
$py "$root/tools/train/card.py" "$root/models/$name" --eval "$out/$name.json" \
    --torch "$out/$name.torch.json" --backbone "$bb"
