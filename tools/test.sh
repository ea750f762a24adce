#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, converts the MobileNetV2
# backbone, runs every cmocka test through ctest, then again under
# AddressSanitizer + UndefinedBehaviorSanitizer, the threaded tests under
# ThreadSanitizer, then runs each libFuzzer target briefly from its seed
# corpus.
#
# No silent skips: after each ctest stage the skipped tests are listed, and the
# run fails when one skipped that is not in tests/may_skip.txt (or the list
# SPW_MAY_SKIP names). An empty stage (no test matched) fails too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
may_skip=${SPW_MAY_SKIP:-$root/tests/may_skip.txt}
py=/usr/bin/python3
[ -x "$py" ] || py=python3

# run_ctest DIR [ctest args...]: ctest, then the skip check on its JUnit report.
run_ctest() {
  local dir=$1 rc=0 skips=0
  shift
  local junit=$root/$dir/ctest-junit.xml
  rm -f "$junit"
  ctest --test-dir "$dir" --no-tests=error --output-on-failure -j "$jobs" \
    --output-junit "$junit" "$@" || rc=$?
  "$py" tools/check_skips.py "$junit" "$may_skip" "$dir${*:+ $*}" || skips=$?
  [ "$rc" -eq 0 ] && [ "$skips" -eq 0 ]
}

echo "== format (.clang-format)"
bash tools/format.sh --check

echo "== build (RelWithDebInfo)"
bash tools/build.sh build
# eval_mobilenet_v2 needs the float backbone: converted from the shared TFLite
# model, offline, in well under a second. Without ../shared this fails and the
# tests that need it skip, which the skip check then reports.
echo "== backbone"
bash tools/models/fetch_backbone.sh || echo "test.sh: no converted backbone (see above)"
echo "== ctest"
run_ctest build

echo "== build (ASan + UBSan)"
bash tools/build.sh build-asan -DSPW_SANITIZE=ON
echo "== ctest (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest build-asan

# ThreadSanitizer over the tests that run the library's own threads (server
# workers, the codec pool; ctest label 'threads'), on the reference backend:
# cpu-fast's thread pool and the Vulkan driver are uninstrumented libraries
# whose synchronisation the sanitizer cannot see. DPDK stays out of this
# build (its EAL threads are uninstrumented too, and no threaded test uses it).
echo "== build (ThreadSanitizer)"
bash tools/build.sh build-tsan -DSPW_TSAN=ON -DSPW_WITH_DPDK=OFF
echo "== ctest (ThreadSanitizer, -L threads)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" SPW_DISABLE_BACKENDS=vulkan,cpu-fast \
  run_ctest build-tsan -L threads

echo "== fuzz targets (time-boxed runs)"
CC=clang bash tools/build.sh build-fuzz -DSPW_FUZZ=ON
run_ctest build-fuzz -L fuzz
