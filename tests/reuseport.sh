#!/bin/sh
# Two `splitwire serve --reuseport 2` processes on one UDP port, 8 clients
# (8 flows) classifying at once, twice:
# - protocol 2 (keys): every request is answered (each client's session
#   stays with one process, which one is random);
# - protocol 1 (--insecure): every request is answered and each server
#   answers at least 30% of them (requests are spread by id).
#
#   reuseport.sh SPLITWIRE BUNDLE MODELS IMAGE...
set -u
SPW_CLI=$1 bundle=$2 models=$3
shift 3
. "$(dirname "$0")/spw_procs.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$SPW_CLI" keygen "$dir/server" >/dev/null 2>&1 || { echo "reuseport.sh: keygen failed"; exit 1; }
port=$((30000 + ($$ * 13) % 20000))
per=$#
want=$((8 * per))

# run MODE: serves and classifies; sets n1 and n2 (requests each answered).
run() {
  if [ "$1" = v2 ]; then
    skeys="--key $dir/server.key" ckeys="--server-pub $dir/server.pub"
  else
    skeys=--insecure ckeys=--insecure
  fi
  shift
  for s in 1 2; do
    SPW_SERVE_EXTRA=$skeys spw_serve --bundle "$bundle" --models "$models" --listen 127.0.0.1:$port \
      --reuseport 2 2>"$dir/srv$s.log" &
    echo $! >"$dir/srv$s.pid"
  done
  for s in 1 2; do
    i=0
    until grep -q 'serving on' "$dir/srv$s.log" || [ $i -gt 300 ]; do i=$((i + 1)); sleep 0.1; done
    grep -q 'serving on' "$dir/srv$s.log" || { cat "$dir/srv$s.log"; echo "reuseport.sh: server $s did not start"; exit 1; }
  done
  for c in 1 2 3 4 5 6 7 8; do
    SPW_CLIENT_EXTRA=$ckeys spw_classify --server 127.0.0.1:$port --bundle "$bundle" --timeout-ms 20000 \
      --quiet "$@" >"$dir/cli$c.log" 2>&1 &
    echo $! >"$dir/cli$c.pid"
  done
  for c in 1 2 3 4 5 6 7 8; do
    wait "$(cat "$dir/cli$c.pid")" || { cat "$dir/cli$c.log"; fail=1; }
  done
  for s in 1 2; do
    kill -TERM "$(cat "$dir/srv$s.pid")"
    wait "$(cat "$dir/srv$s.pid")" || { echo "reuseport.sh: server $s did not stop cleanly"; fail=1; }
  done
  n1=$(sed -n 's/^splitwire server: \([0-9]*\) requests.*/\1/p' "$dir/srv1.log" | tail -1)
  n2=$(sed -n 's/^splitwire server: \([0-9]*\) requests.*/\1/p' "$dir/srv2.log" | tail -1)
  [ -n "$n1" ] && [ -n "$n2" ] || { cat "$dir/srv1.log" "$dir/srv2.log"; exit 1; }
  port=$((port + 1))
}

fail=0
run v2 "$@"
echo "reuseport.sh: protocol 2: server 1 answered $n1, server 2 $n2, of $want requests"
# Each session stays on one process, but a client that fails over (a
# process starved of CPU past its probes) moves to a new flow, which the
# kernel may hash to the other, and the moved request is then counted by
# both. Every client exited 0 (each image answered), checked above.
[ $((n1 + n2)) -ge $want ] || fail=1
run v1 "$@"
echo "reuseport.sh: protocol 1: server 1 answered $n1, server 2 $n2, of $want requests"
[ $fail -eq 0 ] && [ $((n1 + n2)) -eq $want ] &&
  [ $((n1 * 10)) -ge $((want * 3)) ] && [ $((n2 * 10)) -ge $((want * 3)) ]
