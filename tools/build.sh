#!/usr/bin/env bash
# Configures and builds splitwire into a build directory (default build/).
# Usage: tools/build.sh [BUILD_DIR] [extra cmake args...]
#
# Configures on every call, with SPW_SANITIZE and SPW_FUZZ always explicit
# (OFF unless passed): a directory configured once keeps its cache, so
# build-asan or build-fuzz would otherwise stay unsanitised or empty. A
# directory made with another C compiler ($CC, e.g. clang for the fuzz
# build) is wiped first, as CMake cannot switch compilers in place.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
jobs=$(nproc 2>/dev/null || echo 2)

cc=$(command -v "${CC:-cc}" || true)
if [ -f "$dir/CMakeCache.txt" ]; then
  old=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
  if [ -n "$cc" ] && [ -n "$old" ] && [ "$(readlink -f "$old")" != "$(readlink -f "$cc")" ]; then
    echo "build.sh: C compiler changed ($old -> $cc): wiping $dir"
    rm -rf "$dir"
  fi
fi
shared=()
[ -n "${SPLITWIRE_SHARED:-}" ] && shared=(-DSPW_SHARED_DIR="$SPLITWIRE_SHARED")
# Later -D arguments win, so "$@" overrides these defaults.
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPW_SANITIZE=OFF -DSPW_FUZZ=OFF -DSPW_TSAN=OFF "${shared[@]}" "$@" >/dev/null
cmake --build "$dir" -j "$jobs"
