#!/usr/bin/env bash
# `make gpu-check`: build with CUDA, run every [gpu] test (then the whole suite on the CUDA build), compute-sanitizer
# (memcheck) on the GPU tests, the CUDA op benchmark (bench_cuda_ops -> bench/results/<stamp>-cuda-ops.json), the
# same cases in PyTorch where it imports (<stamp>-torch.json, joined into <stamp>-side-by-side.md), and the metrics
# benchmark on CPU and GPU (<stamp>-metrics.json, beside scikit-learn when it imports), and Stable Diffusion 1.5's
# components at 512 px (bench_diffusion, seconds per call in the log). Writes a log naming GPU,
# driver, CUDA version, commit and date under bench/results/. On a machine without a GPU it builds the CUDA
# configuration and says plainly that nothing ran on a GPU.
#
# Made for short GPU sessions (a few minutes, each command limited):
#   GPU_CHECK_STAGES="tests sanitizer bench"  the stages to run (default all; "build" alone only builds). Every
#                                             stage runs even when an earlier one failed, so one session shows all
#                                             that is wrong; a later call can run the remaining stages on the
#                                             same build folder.
#   GPU_CHECK_OUT=DIR                         also copy the log and result files there as they are written (e.g.
#                                             the device tool's $OUT).
#   GPU_CHECK_TIMEOUT=S                       limit of each step in seconds (default 420); a step over it fails.
# The CUDA architecture is the present GPU's (nvidia-smi compute_cap) unless CMAKE_FLAGS names one; without a GPU
# the build's default list (80, 90). Dependency lookup is overridable for machines without the Debian packages:
# CMAKE_FLAGS="-DCMAKE_PREFIX_PATH=...", or a .deb folder (scripts/offline_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
stages=${GPU_CHECK_STAGES:-tests sanitizer bench}
limit=${GPU_CHECK_TIMEOUT:-420}
out=${GPU_CHECK_OUT:-}
# Offline machines (no package registry): Debian packages fetched elsewhere by `scripts/offline_deps.sh download`
# into .deb/ are unpacked into a prefix that the build then searches.
if [ -d .deb ] && ! dpkg-query -W -f='${Status}' nlohmann-json3-dev 2>/dev/null | grep -q "install ok installed"; then
  bash scripts/offline_deps.sh unpack .deb /tmp/cxr-deps
  # shellcheck disable=SC1091
  source /tmp/cxr-deps/env.sh
fi

have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then have_gpu=1; fi
flags=${CMAKE_FLAGS:-}
if [ "$have_gpu" = 1 ] && [[ "$flags" != *CMAKE_CUDA_ARCHITECTURES* ]]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
  [ -n "$cap" ] && flags="$flags -DCMAKE_CUDA_ARCHITECTURES=$cap"
fi
make build BUILD=build-cuda CXR_CUDA=ON CMAKE_FLAGS="$flags"

if [ "$have_gpu" = 0 ]; then
  echo "gpu-check: no GPU on this machine — the CUDA backend was built (compile and link only); no [gpu] test ran."
  exit 0
fi
[ "$stages" = build ] && { echo "gpu-check: built build-cuda (stages: build)"; exit 0; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="bench/results/gpu-check-${stamp}.log"
mkdir -p bench/results
[ -n "$out" ] && mkdir -p "$out"
publish() {  # copies result files to GPU_CHECK_OUT as soon as they exist
  [ -n "$out" ] || return 0
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$out/"; done
  return 0
}
has_stage() { [[ " $stages " == *" $1 "* ]]; }
status=0
step() {  # step NAME COMMAND...: runs under the time limit; a failure is logged and remembered, never fatal
  local name=$1
  shift
  echo "--- ${name}"
  local t0=$SECONDS
  if timeout "$limit" "$@"; then
    echo "gpu-check: ${name} passed ($((SECONDS - t0)) s)"
  else
    echo "gpu-check: ${name} FAILED (exit $?, $((SECONDS - t0)) s; 124 = over the ${limit} s limit)"
    status=1
  fi
}
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --verify -q HEAD || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "stages: ${stages}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  nvcc --version | tail -n 2
  if has_stage tests; then
    # CXR_SYNC=1: a CUDA error names the kernel that raised it
    step "[gpu] tests (CXR_SYNC=1)" env CXR_SYNC=1 build-cuda/cxr_tests "[gpu]" --durations yes
    step "all tests on the CUDA build" build-cuda/cxr_tests
  fi
  if has_stage sanitizer; then
    if command -v compute-sanitizer >/dev/null 2>&1; then
      step "compute-sanitizer memcheck on the [gpu] tests" \
        compute-sanitizer --tool memcheck --error-exitcode 1 build-cuda/cxr_tests "[gpu]"
      # shared-memory races and barrier misuse in the cp.async / ldmatrix pipelines (memcheck cannot see them), on
      # small cases: racecheck is slow
      # shellcheck disable=SC2016  # $tool expands in the inner shell
      step "compute-sanitizer racecheck and synccheck on the tensor-core attention and GEMM" bash -c '
        for tool in racecheck synccheck; do
          compute-sanitizer --tool $tool --error-exitcode 1 build-cuda/cxr_tests \
            "cuda attention: CXR_ATTN_TC=ON really selects the tensor-core forward" || exit 1
          compute-sanitizer --tool $tool --error-exitcode 1 build-cuda/cxr_tests \
            "cuda attention: the tensor-core forward reads inputs that are not 16-byte aligned*" || exit 1
          compute-sanitizer --tool $tool --error-exitcode 1 build-cuda/cxr_tests \
            "cuda tensor-core GEMM: unaligned base pointer and strided rows" || exit 1
        done'
    else
      echo "gpu-check: compute-sanitizer not found: no memcheck"
    fi
  fi
  if has_stage bench; then
    step "CUDA op benchmark (validated, then timed)" build-cuda/bench_cuda_ops --json "bench/results/${stamp}-cuda-ops.json"
    publish "bench/results/${stamp}-cuda-ops.json"
    if python3 -c "import torch" >/dev/null 2>&1; then
      step "PyTorch side-by-side" python3 bench/torch_side_by_side.py --json "bench/results/${stamp}-torch.json"
      step "side-by-side join" python3 bench/torch_side_by_side.py --compare "bench/results/${stamp}-cuda-ops.json" \
        "bench/results/${stamp}-torch.json" --out "bench/results/${stamp}-side-by-side.md"
      publish "bench/results/${stamp}-torch.json" "bench/results/${stamp}-side-by-side.md"
    else
      echo "gpu-check: PyTorch is not importable here: no side-by-side"
    fi
    step "Stable Diffusion 1.5 components at 512 px on the GPU (seconds per call)" \
      build-cuda/bench_diffusion --device cuda --size 512 --repeat 3
    step "metrics benchmark, CPU and GPU" build-cuda/bench_metrics --json "bench/results/${stamp}-metrics.json"
    publish "bench/results/${stamp}-metrics.json"
    if python3 -c "import sklearn" >/dev/null 2>&1; then
      step "scikit-learn on the same sizes" python3 bench/compare_metrics_sklearn.py \
        --json "bench/results/${stamp}-sklearn.json"
      publish "bench/results/${stamp}-sklearn.json"
    fi
  fi
  echo "gpu-check: status ${status}"
} 2>&1 | tee "$log" ${out:+"$out/$(basename "$log")"}  # written to GPU_CHECK_OUT as it goes, too
echo "gpu-check: log written to $log"
grep -q "gpu-check: status 0" "$log"
