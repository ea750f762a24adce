#!/bin/sh
# Runs a command against a real `splitwire serve` on loopback: makes a key
# pair for it (unless the serve arguments say --insecure), starts the server
# with it, waits until it listens, runs CMD with every argument "@SERVER@"
# replaced by its address and "@SERVER_PUB@" by its public key file, stops
# it, and exits with CMD's exit code (1 if the server failed to start or to
# stop cleanly).
#
#   with_server.sh SPLITWIRE [SERVE ARGS...] -- CMD [ARGS...]
set -u
cli=$1; shift
serve_args=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  serve_args="$serve_args $1"; shift
done
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || { echo "with_server.sh: no command given" >&2; exit 2; }
keys=$(mktemp -d)
case " $serve_args " in
  *" --insecure "*) ;;
  *)
    "$cli" keygen "$keys/server" >/dev/null 2>&1 || { echo "with_server.sh: keygen failed"; exit 1; }
    serve_args="$serve_args --key $keys/server.key" ;;
esac
# Ports are picked from the pid; one another process holds is retried.
log=$(mktemp)
try=0
while :; do
  port=$((30000 + ($$ + try * 7919) % 20000))
  addr=127.0.0.1:$port
  # shellcheck disable=SC2086 # the serve arguments are plain words
  "$cli" serve $serve_args --listen "$addr" 2>"$log" &
  srv=$!
  i=0
  until grep -q 'serving on' "$log" || ! kill -0 $srv 2>/dev/null || [ $i -gt 300 ]; do
    i=$((i + 1)); sleep 0.1
  done
  grep -q 'serving on' "$log" && break
  kill -TERM $srv 2>/dev/null; wait $srv 2>/dev/null
  try=$((try + 1))
  if [ $try -ge 5 ]; then
    cat "$log"; rm -f "$log"; rm -rf "$keys"
    echo "with_server.sh: the server did not start"; exit 1
  fi
done
n=$#
while [ $n -gt 0 ]; do
  a=$1; shift
  [ "$a" = "@SERVER@" ] && a=$addr
  [ "$a" = "@SERVER_PUB@" ] && a=$keys/server.pub
  set -- "$@" "$a"
  n=$((n - 1))
done
"$@"
rc=$?
kill -TERM $srv
wait $srv
src=$?
cat "$log"; rm -f "$log"; rm -rf "$keys"
if [ $src -ne 0 ]; then
  echo "with_server.sh: the server exited with $src"
  [ $rc -eq 0 ] && rc=1
fi
exit $rc
