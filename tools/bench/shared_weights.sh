#!/usr/bin/env bash
# What a server's shared weights and small plans save: peak resident memory
# (VmHWM) of `splitwire serve` for 1 worker x max-batch 1 up to 4 workers x
# max-batch 8, once it serves (idle) and again after a load that fills every
# batch (loaded), with the backend's plan batch (sub-batches) and with plans
# as large as max-batch; images per second under that load for both; and
# plan creation for the first batch size of a model against the second
# (`splitwire bench plans`). All in one run, as one JSON object on stdout.
#
# The load: CLIENTS `splitwire classify` processes at once, each sending
# IMAGES images with INFLIGHT in flight; the server waits up to a second for
# a batch to fill, so batches run full (the mean batch size is reported).
#
# Environment: BUILD (build dir, default build), BUNDLE (models/default),
# BACKEND (cpu-fast), THREADS (backend threads per plan, default 1),
# SPW_MODEL_DIR (the backbone, default build/models), CONFIGS (below), CLIENTS (4), INFLIGHT
# (16), IMAGES (48 per client), SHARED (../shared), LOAD (1; 0: idle only).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BUNDLE=${BUNDLE:-models/default}
BACKEND=${BACKEND:-cpu-fast}
THREADS=${THREADS:-1}
CLIENTS=${CLIENTS:-4}
INFLIGHT=${INFLIGHT:-16}
IMAGES=${IMAGES:-48}
LOAD=${LOAD:-1}
SHARED=${SHARED:-../shared}
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

if [ "$LOAD" = 1 ]; then
  # Spread over the classes: every k-th file of the sorted list.
  find "$SHARED"/data/imagenette2-224/val -mindepth 2 -maxdepth 2 2>/dev/null | sort |
    awk -v n="$IMAGES" '{ f[NR] = $0 } END { k = int(NR / n); if (k < 1) k = 1
      for (i = 1; i <= n && i * k <= NR; i++) print f[i * k] }' >"$tmp/images"
  [ -s "$tmp/images" ] || { echo "shared_weights: no images under $SHARED/data" >&2; exit 1; }
fi

# utime + stime of process $1, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One server with $1 workers, max-batch $2, plan batch $3 (0: the
# backend's): prints "idle_kB loaded_kB images_per_s mean_batch
# infer_ms_p50 server_cpu_ms_per_image" (infer: decoder + tail per batch,
# wall time on the server).
run() {
  local port=$((20000 + RANDOM % 20000))
  # Emptied here, not by the server's redirection, which may come after
  # the first look for "serving on".
  : >"$tmp/log"
  "$bin" serve --insecure --bundle "$BUNDLE" --backend "$BACKEND" --threads "$THREADS" \
    --workers "$1" --max-batch "$2" --plan-batch "$3" --max-wait-us 1000000 \
    --listen "127.0.0.1:$port" >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do
    grep -q "serving on" "$tmp/log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; exit 1; }
    sleep 0.1
  done
  local idle loaded=0 ips=0 t0 t1 cpu0 cpu1 cpu=0
  idle=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  cpu0=$(cpu_ticks "$pid")
  if [ "$LOAD" = 1 ]; then
    t0=$(date +%s.%N)
    local cpids=()
    for c in $(seq "$CLIENTS"); do
      # shellcheck disable=SC2046 # paths without spaces
      "$bin" classify --insecure --server "127.0.0.1:$port" --bundle "$BUNDLE" \
        --backend "$BACKEND" --threads 1 --inflight "$INFLIGHT" --timeout-ms 120000 --quiet \
        $(cat "$tmp/images") >"$tmp/client$c" 2>&1 &
      cpids+=($!)
    done
    for c in "${cpids[@]}"; do
      wait "$c" || { cat "$tmp"/client* >&2; echo "shared_weights: a client failed" >&2; }
    done
    t1=$(date +%s.%N)
    loaded=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    cpu1=$(cpu_ticks "$pid")
    ips=$(awk -v n="$((CLIENTS * $(wc -l <"$tmp/images")))" -v a="$t0" -v b="$t1" \
      'BEGIN {printf "%.2f", n / (b - a)}')
    # The server's CPU time per image: what the load cost it, whatever
    # else the machine ran meanwhile.
    cpu=$(awk -v n="$((CLIENTS * $(wc -l <"$tmp/images")))" -v d="$((cpu1 - cpu0))" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", d * 1000 / hz / n}')
  fi
  kill -INT "$pid"
  wait "$pid" || true
  pid=
  local mean infer
  mean=$(sed -n 's/.* batches (mean \([0-9.]*\)).*/\1/p' "$tmp/log" | head -1)
  infer=$(sed -n 's/.*infer(batch) \([0-9.]*\)\/.*/\1/p' "$tmp/log" | head -1)
  echo "$idle $loaded $ips ${mean:-0} ${infer:-0} $cpu"
}

json=""
# CONFIGS: "workers max_batch plan_batch" triples, comma-separated.
IFS=, read -r -a configs <<<"${CONFIGS:-1 1 0,1 8 0,4 1 0,4 8 0,4 8 8}"
for cfg in "${configs[@]}"; do
  # shellcheck disable=SC2086 # three numbers
  read -r idle loaded ips mean infer cpu <<<"$(run $cfg)"
  # shellcheck disable=SC2086
  set -- $cfg
  json+="${json:+,}\"$1x$2/plan$3\":{\"idle_kb\":$idle,\"loaded_kb\":$loaded,\"images_per_s\":$ips,\"mean_batch\":$mean,\"infer_ms_p50\":$infer,\"server_cpu_ms_per_image\":$cpu}"
  eval "idle_$1x$2_$3=$idle loaded_$1x$2_$3=$loaded"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b ? a / b : 0}'; }
plans=null
[ "${PLANS:-1}" = 1 ] && plans=$("$bin" bench plans --bundle "$BUNDLE" --backend "$BACKEND" --threads "$THREADS" --json)
printf '{"bundle":"%s","backend":"%s","threads":%s,"clients":%s,"inflight":%s,"images":%s,' \
  "$BUNDLE" "$BACKEND" "$THREADS" "$CLIENTS" "$INFLIGHT" "$IMAGES"
printf '"load_average":"%s","serve":{%s},' "$(cut -d' ' -f1-3 /proc/loadavg)" "$json"
printf '"4x8_over_1x1":{"idle":%s,"loaded":%s,"idle_plan8":%s,"loaded_plan8":%s},"plans":%s}\n' \
  "$(ratio "${idle_4x8_0:-0}" "${idle_1x1_0:-0}")" "$(ratio "${loaded_4x8_0:-0}" "${loaded_1x1_0:-0}")" \
  "$(ratio "${idle_4x8_8:-0}" "${idle_1x1_0:-0}")" "$(ratio "${loaded_4x8_8:-0}" "${loaded_1x1_0:-0}")" \
  "$plans"
