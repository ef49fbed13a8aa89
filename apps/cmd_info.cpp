// `cxr backends` and `cxr version`: what this build contains and what the machine offers.
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "tensor/backend.h"
#include "tensor/cuda_memory.h"

#include "cxr_git_commit.h"  // CXR_GIT_COMMIT, generated at build time (scripts/git_commit.cmake)
#ifndef CXR_BUILD_TYPE
#define CXR_BUILD_TYPE "unknown"
#endif

namespace cxr::apps {

using namespace cxr::tensor;

int cmd_backends(int argc, char** argv) {
    Args args("backends",
              "Lists the compute backends compiled into this build and the devices present.\n"
              "With --tested, prints the one-line summary that ends `make test`: which backends the test run\n"
              "exercised ([gpu] tests skip visibly when no CUDA device is present).",
              {{"tested", "", "print the one-line test summary", ""}});
    if (!args.parse(argc, argv)) return 0;
    const bool cuda_compiled = backend_compiled(DeviceType::CUDA);
    const int cuda_devices = cuda_compiled ? backend_for(DeviceType::CUDA).device_count() : 0;
    if (args.flag("tested")) {
        std::cout << "Backends exercised by the tests: cpu";
        if (!cuda_compiled)
            std::cout << "; cuda NOT exercised (not compiled into this build)\n";
        else if (cuda_devices == 0)
            std::cout << "; cuda NOT exercised (compiled, but no CUDA device on this machine: [gpu] tests skipped)\n";
        else
            std::cout << ", cuda (" << cuda_devices << " device(s))\n";
        return 0;
    }
    std::cout << "cpu: compiled, 1 device\n";
    std::cout << "cuda: " << (cuda_compiled ? "compiled, " + std::to_string(cuda_devices) + " device(s)" : "not compiled")
              << "\n";
    for (const auto& name : compiled_backends())
        std::cout << "kernels on " << name << ": "
                  << kernel_registry().ops(name == "cpu" ? DeviceType::CPU : DeviceType::CUDA).size() << "\n";
    for (int d = 0; d < cuda_devices; ++d) {  // the caching allocator (tensor/cuda_memory.h) of each device
        const CudaMemoryInfo m = cuda_memory_info(d);
        std::cout << "cuda:" << d << " memory: allocated " << format_bytes(m.stats.allocated) << ", reserved "
                  << format_bytes(m.stats.reserved) << ", peak allocated " << format_bytes(m.stats.peak_allocated)
                  << ", peak reserved " << format_bytes(m.stats.peak_reserved) << ", raw allocations "
                  << m.stats.num_raw_allocs << ", cache hits " << m.stats.cache_hits
                  << (m.caching_enabled ? "" : " (caching off: CXR_CUDA_CACHE=0)") << "\n";
    }
    return 0;
}

int cmd_version(int argc, char** argv) {
    Args args("version", "Prints the version, git commit and build configuration.", {});
    if (!args.parse(argc, argv)) return 0;
    std::cout << "cxr 0.1.0\ncommit: " << CXR_GIT_COMMIT << "\nbuild: " << CXR_BUILD_TYPE
              << "\nbackends: ";
    for (const auto& b : compiled_backends()) std::cout << b << " ";
    std::cout << "\n";
    return 0;
}

}  // namespace cxr::apps
