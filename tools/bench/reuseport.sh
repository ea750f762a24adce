#!/bin/sh
# Images per second of 1 and 2 `splitwire serve` processes (one worker each)
# sharing a UDP port, measured side by side in one run: 8 clients classify
# the same images at once against each setting.
#
#   tools/bench/reuseport.sh [BUNDLE] [IMAGES_PER_CLIENT]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
SPW_CLI=$root/build/splitwire
. "$root/tests/spw_procs.sh"
bundle=${1:-$root/models/default}
per=${2:-8}
shared=${SPLITWIRE_SHARED:-$root/../shared}
images=$(ls -d "$shared"/data/imagenette2-224/val/*/* | awk -v n="$per" 'NR % 97 == 1 && c < n { print; c++ }')
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$SPW_CLI" keygen "$dir/server" >/dev/null 2>&1
port=$((30000 + ($$ * 17) % 20000))
echo "processes,clients,images,seconds,images_per_s"
for procs in 1 2; do
  for s in $(seq "$procs"); do
    spw_serve --bundle "$bundle" --listen 127.0.0.1:$port --reuseport "$procs" \
      --workers 1 --key "$dir/server.key" 2>"$dir/srv$s.log" &
    echo $! >"$dir/srv$s.pid"
  done
  for s in $(seq "$procs"); do
    until grep -q 'serving on' "$dir/srv$s.log"; do sleep 0.1; done
  done
  t0=$(date +%s.%N)
  for c in 1 2 3 4 5 6 7 8; do
    # shellcheck disable=SC2086 # a list of paths without spaces
    spw_classify --server 127.0.0.1:$port --server-pub "$dir/server.pub" --bundle "$bundle" --timeout-ms 60000 --quiet \
      $images >"$dir/cli$c.log" 2>&1 &
    echo $! >"$dir/cli$c.pid"
  done
  for c in 1 2 3 4 5 6 7 8; do
    wait "$(cat "$dir/cli$c.pid")" || { cat "$dir/cli$c.log" >&2; echo "reuseport.sh: client $c failed" >&2; }
  done
  t1=$(date +%s.%N)
  for s in $(seq "$procs"); do kill -TERM "$(cat "$dir/srv$s.pid")"; wait "$(cat "$dir/srv$s.pid")"; done
  n=$((8 * per))
  awk -v p="$procs" -v n="$n" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%d,8,%d,%.2f,%.1f\n", p, n, b - a, n / (b - a) }'
  port=$((port + 1))
done
