#!/usr/bin/env bash
# cpu-fast against PyTorch on the sample encoder, measured back to back in
# the same run: splitwire's `model run --repeat N --json` and
# tools/bench/torch_encoder.py (oneDNN, channels_last, same thread count),
# alternated ROUNDS times so both see the same machine load. Prints each
# measurement as JSON, then the ratio of the medians (splitwire / torch;
# below 1 means splitwire is faster).
#
# Environment: BUILD (build dir, default build), BACKEND (cpu-fast),
# REPEAT (100), ROUNDS (3), BATCHES ("1 8"), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BACKEND=${BACKEND:-cpu-fast}
REPEAT=${REPEAT:-100}
ROUNDS=${ROUNDS:-3}
BATCHES=${BATCHES:-"1 8"}
THREADS=${THREADS:-2}
MODEL=models/sample/encoder.onnx
PY=/usr/bin/python3
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824

[ -x "$BUILD/splitwire" ] || { echo "cpu_vs_torch: $BUILD/splitwire not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for b in $BATCHES; do
  in="$tmp/in$b.npy"
  if [ "$b" = 1 ]; then cp models/sample/input.npy "$in"
  else "$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.tile(np.load('models/sample/input.npy'), ($b, 1, 1, 1)))" "$in"
  fi
  : > "$tmp/sw$b"
  : > "$tmp/th$b"
  for r in $(seq "$ROUNDS"); do
    # The CLI's plans use every online core; the torch side is pinned to THREADS.
    sw=$("$BUILD/splitwire" model run "$MODEL" --input "$in" --output "$tmp/out.npy" \
         --backend "$BACKEND" --repeat "$REPEAT" --json)
    echo "$sw"
    echo "$sw" >> "$tmp/sw$b"
    th=$("$PY" tools/bench/torch_encoder.py --model "$MODEL" --batch "$b" --runs "$REPEAT" \
         --threads "$THREADS")
    echo "$th"
    echo "$th" >> "$tmp/th$b"
  done
  "$PY" - "$tmp/sw$b" "$tmp/th$b" "$b" "$BACKEND" <<'PYEOF'
import json, statistics, sys
sw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
th = [json.loads(l)["results"][0] for l in open(sys.argv[2]) if l.strip()]
s = statistics.median(x["median_ms"] for x in sw)
t = statistics.median(x["median_ms"] for x in th)
tio = statistics.median(x["io_median_ms"] for x in th)
print(json.dumps({"batch": int(sys.argv[3]), "backend": sys.argv[4],
                  "splitwire_median_ms": s, "torch_median_ms": t, "torch_io_median_ms": tio,
                  "ratio": round(s / t, 3), "ratio_io": round(s / tio, 3)}))
PYEOF
done
