#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the sample model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
bash tools/build.sh build
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./build/splitwire model inspect models/sample/encoder.onnx
echo
./build/splitwire model run models/sample/encoder.onnx --input models/sample/input.npy \
  --output "$out/latent.npy" --repeat 3
