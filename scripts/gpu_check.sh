#!/usr/bin/env bash
# `make gpu-check`: build with CUDA, run every [gpu] test, run compute-sanitizer (memcheck) on the GPU tests,
# run the CUDA op benchmark (bench_cuda_ops -> bench/results/<stamp>-cuda-ops.json) and, where PyTorch imports,
# the same cases in PyTorch (<stamp>-torch.json) joined into <stamp>-side-by-side.md,
# and write a log naming GPU, driver, CUDA version, commit and date under bench/results/. On a machine without a
# GPU it builds the CUDA configuration and says plainly that nothing ran on a GPU.
# Dependency lookup is overridable for machines without the Debian packages: CMAKE_FLAGS="-DCMAKE_PREFIX_PATH=..."
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
# Offline machines (no package registry): Debian packages fetched elsewhere by `scripts/offline_deps.sh download`
# into .deb/ are unpacked into a prefix that the build then searches.
if [ -d .deb ] && ! dpkg-query -W -f='${Status}' nlohmann-json3-dev 2>/dev/null | grep -q "install ok installed"; then
  bash scripts/offline_deps.sh unpack .deb /tmp/cxr-deps
  # shellcheck disable=SC1091
  source /tmp/cxr-deps/env.sh
fi
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
  echo "--- CUDA op benchmark (validated, then timed) and the PyTorch side-by-side"
  build-cuda/bench_cuda_ops --json "bench/results/${stamp}-cuda-ops.json" ||
    { echo "gpu-check: bench_cuda_ops FAILED"; status=1; }
  if python3 -c "import torch" >/dev/null 2>&1; then
    python3 bench/torch_side_by_side.py --json "bench/results/${stamp}-torch.json" ||
      { echo "gpu-check: torch_side_by_side FAILED"; status=1; }
    python3 bench/torch_side_by_side.py --compare "bench/results/${stamp}-cuda-ops.json" \
      "bench/results/${stamp}-torch.json" --out "bench/results/${stamp}-side-by-side.md" ||
      { echo "gpu-check: side-by-side join FAILED"; status=1; }
  else
    echo "gpu-check: PyTorch is not importable here: no side-by-side"
  fi
  echo "gpu-check: status ${status}"
} 2>&1 | tee "$log"
echo "gpu-check: log written to $log"
grep -q "gpu-check: status 0" "$log"
