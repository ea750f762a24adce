#!/bin/sh
# DPDK `serve --queues 2` over net_memif between two processes: the client
# (`classify --queues 2`) sends on both queue pairs in turn, and each of the
# server's pairs, served by its own thread, must answer at least 30% of the
# requests; every image must come back with the label `classify --local`
# gives it.
#
#   dpdk_queues.sh SPLITWIRE PMD_DIR BUNDLE MODELS IMAGE...
set -u
SPW_CLI=$1 pmd=$2 bundle=$3 models=$4
shift 4
. "$(dirname "$0")/spw_procs.sh"
dir=$(mktemp -d)
spw_keys "$dir" || exit 1
sock=/tmp/spw-queues-$$.sock
pids=
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$dir" "$sock"
}
trap cleanup EXIT
fail() { echo "dpdk_queues.sh: $*"; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
eal() { # ROLE PREFIX
  echo "--no-huge -m 1024 --no-pci --no-telemetry --file-prefix $2$$ -d $pmd/librte_mempool_ring.so" \
    "-d $pmd/librte_net_memif.so --vdev=net_memif0,role=$1,socket=$sock,socket-abstract=no"
}

mkdir "$dir/img"
n=0
while [ $n -lt 16 ]; do
  for f in "$@"; do
    [ $n -lt 16 ] && cp "$f" "$dir/img/$n-$(basename "$f")"
    n=$((n + 1))
  done
done

: >"$dir/srv.log"
# Batches of one: the same plan as --local, so labels compare exactly.
spw_serve --bundle "$bundle" --models "$models" --transport dpdk --queues 2 --max-batch 1 \
  --listen 127.0.98.2:7878 --eal "$(eal server spwqs)" 2>"$dir/srv.log" &
srv=$!
pids="$pids $srv"
i=0
until grep -q 'serving on' "$dir/srv.log" || ! kill -0 $srv 2>/dev/null || [ $i -gt 600 ]; do
  i=$((i + 1)); sleep 0.1
done
grep -q 'serving on' "$dir/srv.log" || fail "the server did not start"

(spw_classify --local --bundle "$bundle" --models "$models" --json "$dir/img") >"$dir/local.out" \
  2>"$dir/local.log" || fail "classify --local failed"
(spw_classify --transport dpdk --queues 2 --server 127.0.98.2:7878 --bind 127.0.98.1:7879 \
  --eal "$(eal client spwqc)" --bundle "$bundle" --json --inflight 4 --timeout-ms 20000 \
  "$dir/img") >"$dir/remote.out" 2>"$dir/client.log" || fail "the client failed"
kill -TERM $srv
wait $srv || fail "the server did not exit 0"

for w in local remote; do
  sed -n 's/^{"file": "\([^"]*\)", "label": \(-*[0-9]*\),.*/\1 \2/p' "$dir/$w.out" | sort >"$dir/$w.lab"
done
[ "$(wc -l <"$dir/local.lab")" -eq 16 ] || fail "classify --local did not label 16 files"
cmp -s "$dir/local.lab" "$dir/remote.lab" || { diff "$dir/local.lab" "$dir/remote.lab"; fail "results differ"; }
q0=$(sed -n 's/^splitwire server: [0-9]* requests, \([0-9]*\) results.*/\1/p' "$dir/srv.log" | sed -n 1p)
q1=$(sed -n 's/^splitwire server: [0-9]* requests, \([0-9]*\) results.*/\1/p' "$dir/srv.log" | sed -n 2p)
echo "dpdk_queues.sh: queue pair 0 answered ${q0:-?}, pair 1 ${q1:-?}, of 16 requests"
[ -n "$q0" ] && [ -n "$q1" ] || fail "no statistics per queue pair"
[ $((q0 + q1)) -eq 16 ] && [ $((q0 * 10)) -ge 48 ] && [ $((q1 * 10)) -ge 48 ] ||
  fail "the queue pairs did not share the requests"
