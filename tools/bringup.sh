#!/usr/bin/env bash
# Hardware bring-up checks from a built tree, for a machine that has the
# accelerator but not the build: device probe, the op conformance suite on
# every backend, Vulkan teardown, per-layer op benchmarks (each backend on its
# own) and an end-to-end classify with Vulkan against one without it; with
# a bundle, models and images also `serve --backend vulkan` with batches in
# flight (tools/bench/vk_overlap.sh) and, last (it changes later plans'
# conv settings), `bench ops --tune` on the bundle's encoder.
#
#   tools/bringup.sh BUILD_DIR OUT_DIR [--bundle DIR] [--models DIR]
#                    [--images DIR] [--iters N] [--step-timeout S]
#
# BUILD_DIR holds splitwire and tests/ (a build of this tree, e.g. one
# configured with -DSPW_WITH_DPDK=OFF to keep its libraries few). Each step
# runs under `timeout`, so a hung driver costs one step. Writes OUT_DIR/
# summary.txt (one line per step: ok/FAIL, seconds) and one file per step.
set -uo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
bin=$(cd "$1" && pwd) || exit 2
out=$2
shift 2
bundle="" models="" images="" iters=20 step_to=120
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) bundle=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --step-timeout) step_to=$2; shift 2 ;;
    *) echo "bringup: unknown option $1" >&2; usage ;;
  esac
done
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"

# step NAME FILE CMD...: runs CMD with stdout+stderr to OUT/FILE, records the
# outcome; never stops the script.
step() {
  local name=$1 file=$2
  shift 2
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout "$step_to" "$@" >"$out/$file" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  printf '%-40s %s rc=%d %.1fs -> %s\n' "$name" "$([ $rc = 0 ] && echo ok || echo FAIL)" \
    "$rc" "$(awk "BEGIN { print $t1 - $t0 }")" "$file" | tee -a "$summary"
}

step "device list" device.txt "$bin/splitwire" device list
step "device list (info log)" device-log.txt env SPW_LOG=info "$bin/splitwire" device list
for t in test_conformance test_vk_teardown test_drm; do
  [ -x "$bin/tests/$t" ] && step "$t" "$t.txt" "$bin/tests/$t"
done

bench() {  # bench LABEL MODEL
  local label=$1 model=$2 be
  [ -f "$model" ] || return 0
  for be in vulkan cpu-fast; do
    step "bench ops $label $be" "bench-$label-$be.json" \
      "$bin/splitwire" bench ops --model "$model" --backend "$be" --iters "$iters" --json
  done
}
if [ -n "$bundle" ]; then
  bench encoder "$bundle/encoder.onnx"
  bench decoder "$bundle/decoder.onnx"
fi
if [ -n "$models" ]; then
  for m in "$models"/*.onnx; do
    [ -f "$m" ] && bench "$(basename "$m" .onnx)" "$m"
  done
fi

if [ -n "$bundle" ] && [ -n "$models" ] && [ -n "$images" ]; then
  # Twice, to compare: the automatic choice (Vulkan, where a GPU is there)
  # and the CPU backends alone (no Vulkan loader).
  step "classify --local (auto backends)" classify-auto.json \
    "$bin/splitwire" classify --local --bundle "$bundle" --models "$models" "$images" --json --reference
  step "classify --local (no vulkan)" classify-cpu.json env SPW_VULKAN_LOADER=/nonexistent \
    "$bin/splitwire" classify --local --bundle "$bundle" --models "$models" "$images" --json --reference
  step "serve --backend vulkan, batches in flight" vk-overlap.txt \
    env SPW_CLI="$bin/splitwire" IMAGES="$images" \
    sh "$(dirname "$0")/bench/vk_overlap.sh" "$bundle" "$models"
  step "bench ops --tune encoder vulkan" tune-encoder.txt \
    "$bin/splitwire" bench ops --tune --model "$bundle/encoder.onnx" --backend vulkan \
    --batch 1 --iters "$iters"
fi
grep -q FAIL "$summary" && exit 1
exit 0
