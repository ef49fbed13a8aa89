# cxr front door. `make` configures and builds into build/; see README.md for every target.
#   make            build (CPU; CUDA too when nvcc is found: CXR_CUDA=AUTO)
#   make test       build and run the test suite (ctest), then name the backends exercised
#   make demo       the main job on built-in data
#   make bench      CPU kernel benchmarks (results in bench/results/)
#   make gpu-check  CUDA build + [gpu] tests + benchmarks on a machine with a GPU ("no GPU" otherwise)
#   make deps       install the Debian build dependencies
BUILD ?= build
CXR_CUDA ?= AUTO
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all configure build test demo bench gpu-check deps clean

all: build

$(BUILD)/CMakeCache.txt:
	@bash scripts/install_deps.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCXR_CUDA=$(CXR_CUDA) $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@$(BUILD)/cxr backends --tested

demo: configure
	cmake --build $(BUILD) -j $(JOBS) --target cxr
	$(BUILD)/cxr demo

bench: build
	$(BUILD)/bench_cpu_kernels --json bench/results/cpu_kernels.json

gpu-check:
	@bash scripts/gpu_check.sh

deps:
	bash scripts/install_deps.sh

clean:
	rm -rf $(BUILD) build-cuda
