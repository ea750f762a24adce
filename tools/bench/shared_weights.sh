#!/usr/bin/env bash
# What a server's shared weights save: peak resident memory (VmHWM) of
# `splitwire serve` after start-up for 1 worker x max-batch 1 and 4 workers x
# max-batch 8 (plus the two in between), and plan creation for the first
# batch size of a model against the second (`splitwire bench plans`), all in
# one run, as one JSON object on stdout.
#
# Environment: BUILD (build dir, default build), BUNDLE (models/default),
# BACKEND (cpu-fast), THREADS (backend threads per plan, default 1),
# SPW_MODEL_DIR (the backbone, default build/models).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BUNDLE=${BUNDLE:-models/default}
BACKEND=${BACKEND:-cpu-fast}
THREADS=${THREADS:-1}
export SPW_MODEL_DIR=${SPW_MODEL_DIR:-build/models}
bin=$BUILD/splitwire
[ -x "$bin" ] || { echo "shared_weights: $bin not built" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# Peak RSS in kB of a server with $1 workers and max-batch $2, once it serves.
hwm() {
  local port=$((20000 + RANDOM % 20000))
  "$bin" serve --bundle "$BUNDLE" --backend "$BACKEND" --threads "$THREADS" --workers "$1" \
    --max-batch "$2" --listen "127.0.0.1:$port" >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -q "serving on" "$tmp/log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; exit 1; }
    sleep 0.1
  done
  awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"
  kill -INT "$pid"
  wait "$pid" || true
  pid=
}

declare -A kb
for cfg in "1 1" "1 8" "4 1" "4 8"; do
  kb[$cfg]=$(hwm $cfg)
done
plans=$("$bin" bench plans --bundle "$BUNDLE" --backend "$BACKEND" --threads "$THREADS" --json)
printf '{"bundle":"%s","backend":"%s","threads":%s,"serve_vmhwm_kb":{"1x1":%s,"1x8":%s,"4x1":%s,"4x8":%s},"4x8_over_1x1":%s,"plans":%s}\n' \
  "$BUNDLE" "$BACKEND" "$THREADS" "${kb[1 1]}" "${kb[1 8]}" "${kb[4 1]}" "${kb[4 8]}" \
  "$(awk -v a="${kb[4 8]}" -v b="${kb[1 1]}" 'BEGIN {printf "%.2f", a / b}')" "$plans"
