// Memory statistics of the CUDA caching allocator (tensor/caching_allocator.h), readable from any code without
// CUDA headers: `cxr backends` prints them, training logs and benchmarks can record them. In a CPU-only build,
// or before any CUDA allocation, every number is zero.
#pragma once

#include "tensor/caching_allocator.h"

namespace cxr::tensor {

struct CudaMemoryInfo {
    bool compiled = false;         // the build has the CUDA backend
    bool caching_enabled = false;  // false when CXR_CUDA_CACHE=0 (or no CUDA backend)
    CachingAllocatorStats stats;   // of the device asked for
};

CudaMemoryInfo cuda_memory_info(int device = 0);
// Returns the cached (unused) blocks of every device to the driver; a no-op without CUDA.
void cuda_empty_cache();

}  // namespace cxr::tensor
