#!/usr/bin/env bash
# Installs the Debian packages the training and backbone-check tools need
# (not needed to build or test the C runtime).  Idempotent.
set -euo pipefail

packages=(
  python3 python3-numpy python3-torch python3-torchvision python3-pil
  python3-flatbuffers python3-onnx
  python3-pyarmnn libarmnn-cpuref-backend22
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "splitwire train setup: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "splitwire train setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
