#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the end-to-end demo:
# a server and a client (DPDK net_memif between two processes, or kernel UDP
# where DPDK cannot start) classify Imagenette val images from ../shared.
# Extra arguments go to `splitwire demo` (see `splitwire demo --help`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
bash tools/build.sh build >/dev/null
# A trained bundle needs its backbone, converted from the shared TFLite model.
if [ -f models/default/manifest.json ]; then
  bash tools/models/fetch_backbone.sh >/dev/null
fi
exec ./build/splitwire demo "$@"
