#!/usr/bin/env bash
# Installs the Debian packages cxr builds with, when any is missing: cmake, g++, libstb-dev, nlohmann-json3-dev,
# catch2 (v2 API), zlib1g-dev. The CUDA toolkit is not installed here (it comes from NVIDIA's packages on GPU machines);
# without nvcc cxr builds and runs on the CPU only.
set -euo pipefail
# CXR_SKIP_DEPS=1: the dependencies come from elsewhere (scripts/offline_deps.sh unpack, or a module system).
if [ "${CXR_SKIP_DEPS:-0}" = 1 ]; then
  echo "install_deps: skipped (CXR_SKIP_DEPS=1; dependency lookup: CMAKE_FLAGS=${CMAKE_FLAGS:-})"
  exit 0
fi

packages=(cmake g++ make libstb-dev nlohmann-json3-dev catch2 zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all build dependencies present (${packages[*]})"
  exit 0
fi

echo "install_deps: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install_deps: not root and no sudo; ask an administrator to run:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_deps: installed ${missing[*]}"
