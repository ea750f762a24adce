#!/bin/sh
# Two `splitwire serve --reuseport 2` processes on one UDP port, 8 clients
# (8 flows) classifying at once: every request must be answered and each
# server must answer at least 30% of them (requests are spread by id).
#
#   reuseport.sh SPLITWIRE BUNDLE MODELS IMAGE...
set -u
cli=$1 bundle=$2 models=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$cli" keygen "$dir/server" >/dev/null 2>&1 || { echo "reuseport.sh: keygen failed"; exit 1; }
port=$((30000 + ($$ * 13) % 20000))
for s in 1 2; do
  "$cli" serve --bundle "$bundle" --models "$models" --listen 127.0.0.1:$port \
    --reuseport 2 --key "$dir/server.key" 2>"$dir/srv$s.log" &
  echo $! >"$dir/srv$s.pid"
done
for s in 1 2; do
  i=0
  until grep -q 'serving on' "$dir/srv$s.log" || [ $i -gt 300 ]; do i=$((i + 1)); sleep 0.1; done
  grep -q 'serving on' "$dir/srv$s.log" || { cat "$dir/srv$s.log"; echo "reuseport.sh: server $s did not start"; exit 1; }
done
fail=0
for c in 1 2 3 4 5 6 7 8; do
  "$cli" classify --server 127.0.0.1:$port --server-pub "$dir/server.pub" --bundle "$bundle" --timeout-ms 20000 --quiet "$@" \
    >"$dir/cli$c.log" 2>&1 &
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
want=$((8 * $#))
echo "reuseport.sh: server 1 answered ${n1:-?}, server 2 ${n2:-?}, of $want requests"
[ -n "$n1" ] && [ -n "$n2" ] || { cat "$dir/srv1.log" "$dir/srv2.log"; exit 1; }
[ $fail -eq 0 ] && [ $((n1 + n2)) -eq $want ] &&
  [ $((n1 * 10)) -ge $((want * 3)) ] && [ $((n2 * 10)) -ge $((want * 3)) ]
