#!/usr/bin/env bash
# `make gpu-check`: build with CUDA, run every [gpu] test, run compute-sanitizer (memcheck) on the GPU tests,
# and write a log naming GPU, driver, CUDA version, commit and date under bench/results/. On a machine without a
# GPU it builds the CUDA configuration and says plainly that nothing ran on a GPU.
# Dependency lookup is overridable for machines without the Debian packages: CMAKE_FLAGS="-DCMAKE_PREFIX_PATH=..."
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
make build BUILD=build-cuda CXR_CUDA=ON CMAKE_FLAGS="${CMAKE_FLAGS:-}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no GPU on this machine — the CUDA backend was built (compile and link only); no [gpu] test ran."
  exit 0
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="bench/results/gpu-check-${stamp}.log"
mkdir -p bench/results
status=0
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  nvcc --version | tail -n 2
  # every step runs even when an earlier one fails, so one short GPU session shows everything that is wrong
  echo "--- [gpu] tests"
  build-cuda/cxr_tests "[gpu]" --durations yes || { echo "gpu-check: [gpu] tests FAILED"; status=1; }
  echo "--- all tests on the CUDA build"
  build-cuda/cxr_tests || { echo "gpu-check: tests on the CUDA build FAILED"; status=1; }
  if command -v compute-sanitizer >/dev/null 2>&1; then
    echo "--- compute-sanitizer memcheck on the [gpu] tests"
    compute-sanitizer --tool memcheck --error-exitcode 1 build-cuda/cxr_tests "[gpu]" ||
      { echo "gpu-check: compute-sanitizer FAILED"; status=1; }
  fi
  echo "gpu-check: status ${status}"
} 2>&1 | tee "$log"
echo "gpu-check: log written to $log"
grep -q "gpu-check: status 0" "$log"
