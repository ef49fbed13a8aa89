// Small helpers shared by the CUDA kernel files (tensor/cuda/*.cu): the CUDA error check and the per-launch check.
// after_launch(name) checks cudaGetLastError() after every kernel launch and, with CXR_SYNC=1 in the environment,
// synchronises the device so that an asynchronous fault is reported with the name of the kernel that caused it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "tensor/error.h"

namespace cxr::tensor::cuda {

inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) CXR_FAIL("CUDA error in ", what, ": ", cudaGetErrorString(err));
}

inline bool sync_after_kernels() {
    static const bool on = [] {
        const char* v = std::getenv("CXR_SYNC");
        return v && std::string(v) == "1";
    }();
    return on;
}

// Blocks of 256 threads for a grid-stride loop over n elements: ceil(n / 256), at least 1, capped at 8·65535 (the
// loop covers the rest).
inline unsigned grid_blocks(int64_t n) {
    const int64_t b = (n + 255) / 256;
    return (unsigned)(b > 65535 * 8 ? 65535 * 8 : (b < 1 ? 1 : b));
}

inline void after_launch(const char* kernel) {
    check(cudaGetLastError(), kernel);
    if (sync_after_kernels()) check(cudaDeviceSynchronize(), kernel);
}

// True when device `dev` can run `kernel`'s sm_80+ code (tensor cores through mma.sync/WMMA, ldmatrix, cp.async):
// compute capability >= 8.0, and the binary holds sm_80+ code for the kernel — built for older architectures only,
// the kernels' guarded bodies are __trap(). Cached per (kernel, device).
template <class K>
bool runs_sm80_code(K* kernel, int dev, const char* name) {
    static std::mutex mu;
    static std::map<std::pair<const void*, int>, bool> cache;
    std::lock_guard<std::mutex> lock(mu);
    const auto key = std::make_pair((const void*)kernel, dev);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    int major = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
    cudaFuncAttributes fa{};
    check(cudaFuncGetAttributes(&fa, kernel), name);
    return cache[key] = major >= 8 && fa.ptxVersion >= 80 && fa.binaryVersion >= 80;
}

}  // namespace cxr::tensor::cuda
