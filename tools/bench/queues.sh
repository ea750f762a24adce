#!/bin/sh
# Images per second of a DPDK `splitwire serve` with 1 and with 2 queue pairs
# (one worker each) over net_memif, side by side in one run: one client
# process sending on as many pairs, 8 requests in flight, the same images.
#
#   tools/bench/queues.sh [BUNDLE] [IMAGES]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
SPW_CLI=$root/build/splitwire
. "$root/tests/spw_procs.sh"
bundle=${1:-$root/models/default}
count=${2:-48}
shared=${SPLITWIRE_SHARED:-$root/../shared}
pmd=${SPW_DPDK_PMD_DIR:-$(ls -d /usr/lib/*/dpdk/pmds-* | head -1)}
# Spread over the classes: every k-th file of the sorted list.
images=$(ls -d "$shared"/data/imagenette2-224/val/*/* |
  awk -v n="$count" '{ f[NR] = $0 } END { k = int(NR / n); for (i = 1; i <= n; i++) print f[i * k] }')
dir=$(mktemp -d)
spw_keys "$dir" || exit 1
sock=/tmp/spw-bench-queues-$$.sock
trap 'rm -rf "$dir" "$sock"' EXIT
eal() {
  echo "--no-huge -m 1024 --no-pci --no-telemetry --file-prefix $2$$ -d $pmd/librte_mempool_ring.so" \
    "-d $pmd/librte_net_memif.so --vdev=net_memif0,role=$1,socket=$sock,socket-abstract=no"
}
echo "queue_pairs,images,seconds,images_per_s,answered_per_pair"
for q in 1 2; do
  : >"$dir/srv.log"
  spw_serve --bundle "$bundle" --models "${SPW_MODEL_DIR:-$root/build/models}" --transport dpdk --queues $q --workers 1 \
    --listen 127.0.98.2:7878 --eal "$(eal server bqs$q)" 2>"$dir/srv.log" &
  srv=$!
  until grep -q 'serving on' "$dir/srv.log"; do
    kill -0 $srv 2>/dev/null || { cat "$dir/srv.log" >&2; exit 1; }
    sleep 0.1
  done
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086 # a list of paths without spaces
  (spw_classify --transport dpdk --queues $q --server 127.0.98.2:7878 --bind 127.0.98.1:7879 \
    --eal "$(eal client bqc$q)" --bundle "$bundle" --inflight 8 --timeout-ms 60000 --quiet \
    $images) >"$dir/cli.log" 2>&1 || { cat "$dir/cli.log" >&2; echo "queues.sh: the client failed" >&2; }
  t1=$(date +%s.%N)
  kill -TERM $srv
  wait $srv
  per=$(sed -n 's/^splitwire server: [0-9]* requests, \([0-9]*\) results.*/\1/p' "$dir/srv.log" | paste -sd/)
  n=$(echo "$images" | wc -l)
  awk -v q="$q" -v n="$n" -v a="$t0" -v b="$t1" -v per="$per" \
    'BEGIN { printf "%d,%d,%.2f,%.1f,%s\n", q, n, b - a, n / (b - a), per }'
done
