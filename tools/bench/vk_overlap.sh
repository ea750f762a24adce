#!/bin/sh
# Batches in flight on Vulkan: `splitwire serve --backend vulkan` with
# several workers under load from several clients, then the server's
# per-stage profile (upload, compute, download) and how many transfers ran
# while another worker's batch computed. Every client's answers are
# compared with a local run on the CPU reference (no result lost or changed).
#
#   tools/bench/vk_overlap.sh [BUNDLE [MODELS]]
#   env: WORKERS (3), CLIENTS (4), PER (images per client, 16), BATCH (4),
#        IMAGES (a directory to take the images from; default a spread of
#        Imagenette's validation set under ../shared), SPW_CLI (the binary)
#
# The default bundle is the committed tiny one, so that a CPU Vulkan
# implementation (lavapipe) serves it quickly.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
SPW_CLI=${SPW_CLI:-$root/build/splitwire}
. "$root/tests/spw_procs.sh"
bundle=${1:-$root/tests/vectors/bundle/tiny}
models=${2:-$root/tests/vectors/bundle/models}
workers=${WORKERS:-3}
clients=${CLIENTS:-4}
per=${PER:-16}
batch=${BATCH:-4}
shared=${SPLITWIRE_SHARED:-$root/../shared}
if [ -n "${IMAGES:-}" ]; then
  images=$(find "$IMAGES" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort | head -n "$per")
else
  images=$(ls -d "$shared"/data/imagenette2-224/val/*/* | awk -v n="$per" 'NR % 97 == 1 && c < n { print; c++ }')
fi
[ -n "$images" ] || { echo "vk_overlap.sh: no images (IMAGES or $shared/data)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
spw_keys "$dir" 2>/dev/null
port=$((30000 + ($$ * 13) % 20000))

# The reference answers: both halves in this process on cpu-ref.
# shellcheck disable=SC2086 # a list of paths without spaces
"$SPW_CLI" classify --local --backend cpu-ref --bundle "$bundle" --models "$models" $images \
  2>/dev/null | awk '$4 ~ /%$/ { print $1, $2, $3, $4 }' | sort >"$dir/want.txt"

# One server with $1 workers, $clients clients at once; prints its profile
# and images/s, and sets bad when an answer differs.
bad=0
run() {
  w=$1
  spw_serve --bundle "$bundle" --models "$models" --backend vulkan --workers "$w" \
    --max-batch "$batch" --listen 127.0.0.1:$port 2>"$dir/srv.log" &
  srv=$!
  until grep -q 'serving on' "$dir/srv.log"; do
    kill -0 "$srv" 2>/dev/null || { cat "$dir/srv.log" >&2; exit 1; }
    sleep 0.1
  done
  t0=$(date +%s.%N)
  for c in $(seq "$clients"); do
    # shellcheck disable=SC2086
    spw_classify --server 127.0.0.1:$port --bundle "$bundle" --timeout-ms 60000 --inflight 4 \
      $images >"$dir/cli$c.log" 2>"$dir/cli$c.err" &
    echo $! >"$dir/cli$c.pid"
  done
  for c in $(seq "$clients"); do
    wait "$(cat "$dir/cli$c.pid")" || { cat "$dir/cli$c.err" >&2; bad=1; }
    awk '$4 ~ /%$/ { print $1, $2, $3, $4 }' "$dir/cli$c.log" | sort >"$dir/got$c.txt"
    if ! cmp -s "$dir/want.txt" "$dir/got$c.txt"; then
      echo "vk_overlap.sh: client $c's answers differ from cpu-ref's:" >&2
      diff "$dir/want.txt" "$dir/got$c.txt" >&2 || true
      bad=1
    fi
  done
  t1=$(date +%s.%N)
  kill -TERM "$srv"
  wait "$srv" || bad=1
  echo "--- workers $w"
  grep -E 'splitwire server:|stages ms' "$dir/srv.log"
  n=$((clients * per))
  rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / (b - a) }')
  echo "workers $w, clients $clients: $n images, $rate images/s"
  sed -n 's/.*uploads \([0-9]*\)\/\([0-9]*\), downloads \([0-9]*\)\/.*/overlap: \1 of \2 uploads and \3 of \2 downloads ran during another worker'"'"'s compute/p' "$dir/srv.log"
  port=$((port + 1))
}

# One worker first: the baseline of the same run (nothing to overlap with).
run 1
base=$rate
run "$workers"
awk -v a="$base" -v b="$rate" -v w="$workers" 'BEGIN { printf "images/s with %d workers: %.2fx one worker'"'"'s\n", w, b / a }'
[ "$bad" = 0 ] && echo "answers: all equal to cpu-ref's" || echo "answers: DIFFER or missing"
exit "$bad"
