#!/bin/sh
# Graceful drain and client failover on loopback: servers A and B, one
# client given both (`--server A,B`); A is sent SIGTERM once the client has
# its first answers. A must answer what it accepted, refuse what came later,
# and exit 0; the client must finish every image exactly once, each with
# the label `classify --local` gives it.
#
#   drain.sh SPLITWIRE BUNDLE MODELS IMAGE...
set -u
SPW_CLI=$1 bundle=$2 models=$3
shift 3
. "$(dirname "$0")/spw_procs.sh"
dir=$(mktemp -d)
spw_keys "$dir" || exit 1
pids=
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "drain.sh: $*"; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }

# 24 distinct files from the images given.
mkdir "$dir/img"
n=0
while [ $n -lt 24 ]; do
  for f in "$@"; do
    [ $n -lt 24 ] && cp "$f" "$dir/img/$n-$(basename "$f")"
    n=$((n + 1))
  done
done

base=$((30000 + ($$ * 17) % 20000))
for s in a b; do
  port=$base
  [ $s = b ] && port=$((base + 1))
  # Batches of one: the same plan as --local, so labels compare exactly. The
  # emulated 10 ms each way keeps requests in flight when A is told to drain
  # (a quiet machine answers all of them in less than the poll below).
  spw_serve --bundle "$bundle" --models "$models" --listen 127.0.0.1:$port --max-batch 1 \
    --link 1000mbit,10ms \
    2>"$dir/srv_$s.log" &
  echo $! >"$dir/srv_$s.pid"
  pids="$pids $!"
done
for s in a b; do
  i=0
  until grep -q 'serving on' "$dir/srv_$s.log" || [ $i -gt 300 ]; do i=$((i + 1)); sleep 0.1; done
  grep -q 'serving on' "$dir/srv_$s.log" || fail "server $s did not start"
done

(spw_classify --local --bundle "$bundle" --models "$models" --json "$dir/img") >"$dir/local.out" \
  2>"$dir/local.log" || fail "classify --local failed"

: >"$dir/remote.out"
spw_classify --server 127.0.0.1:$base,127.0.0.1:$((base + 1)) --bundle "$bundle" --json \
  --inflight 4 --timeout-ms 60000 "$dir/img" >"$dir/remote.out" 2>"$dir/client.log" &
client=$!
pids="$pids $client"
i=0
until [ "$(grep -c '"label"' "$dir/remote.out")" -ge 3 ] || [ $i -gt 1200 ]; do
  i=$((i + 1)); sleep 0.05
done
kill -TERM "$(cat "$dir/srv_a.pid")"
wait "$(cat "$dir/srv_a.pid")" || fail "server A did not exit 0 after SIGTERM"
wait $client || fail "the client failed"
kill -TERM "$(cat "$dir/srv_b.pid")"
wait "$(cat "$dir/srv_b.pid")" || fail "server B did not exit 0"

# Every file once, with the local label.
sed -n 's/^{"file": "\([^"]*\)", "label": \(-*[0-9]*\),.*/\1 \2/p' "$dir/local.out" | sort >"$dir/want"
sed -n 's/^{"file": "\([^"]*\)", "label": \(-*[0-9]*\),.*/\1 \2/p' "$dir/remote.out" | sort >"$dir/got"
[ "$(wc -l <"$dir/want")" -eq 24 ] || fail "classify --local did not label 24 files"
cmp -s "$dir/want" "$dir/got" || { diff "$dir/want" "$dir/got"; fail "results differ from --local"; }

stat_of() {
  sed -n "s/^splitwire server: \([0-9]*\) requests, \([0-9]*\) results, \([0-9]*\) errors, \([0-9]*\) dropped, \([0-9]*\) refused.*/\\$2/p" \
    "$dir/srv_$1.log" | tail -1
}
ra=$(stat_of a 1) resa=$(stat_of a 2) ea=$(stat_of a 3) da=$(stat_of a 4) fa=$(stat_of a 5)
rb=$(stat_of b 1) resb=$(stat_of b 2)
echo "drain.sh: A: $ra requests, $resa answered, $fa refused while draining; B: $rb requests, $resb answered"
[ -n "$ra" ] && [ -n "$rb" ] || fail "no statistics from the servers"
# Nothing A took was lost: each of its requests was answered, refused as
# draining, or refused as overloaded (dropped; the client sends those again).
[ "$ra" -eq $((resa + ea)) ] && [ "$ea" -eq $((fa + da)) ] || fail "server A lost requests"
[ "$resa" -ge 3 ] && [ "$resb" -ge 1 ] || fail "the requests did not move from A to B"
[ $((resa + resb)) -eq 24 ] || fail "answers do not add up to 24 (duplicates or losses)"
echo "drain.sh: all 24 images answered once, as --local labels them"
