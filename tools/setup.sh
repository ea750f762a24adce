#!/usr/bin/env bash
# Installs every Debian package splitwire needs to build, test and run its
# demo, plus any extra packages named as arguments (tools/train/setup.sh uses
# that). Idempotent: does nothing (and prints nothing) when all are present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libcmocka-dev libjpeg62-turbo-dev libpng-dev libjansson-dev
  libxnnpack-dev libpthreadpool-dev
  python3 python3-numpy python3-yaml
  python3-flatbuffers python3-onnx
  libdpdk-dev iproute2 nftables libsodium-dev
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-tools libdrm-dev
  libwebp-dev libavif-dev gnuplot-nox
)

packages+=("$@")
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "splitwire setup: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "splitwire setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
