#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every cmocka test
# through ctest, then again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then runs each libFuzzer target briefly from its seed corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo)"
bash tools/build.sh build
echo "== ctest"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== build (ASan + UBSan)"
bash tools/build.sh build-asan -DSPW_SANITIZE=ON
echo "== ctest (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

if [ -f tests/fuzz/CMakeLists.txt ]; then
  echo "== fuzz targets (time-boxed runs)"
  CC=clang bash tools/build.sh build-fuzz -DSPW_FUZZ=ON
  ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$jobs"
fi
