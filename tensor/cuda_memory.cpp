// tensor/cuda_memory.h: forwards to the CUDA backend's caching allocator when the build has one. Like
// tensor/backend.cpp, this registry-side file is allowed to know whether CUDA was compiled in.
#include "tensor/cuda_memory.h"

#ifdef CXR_HAVE_CUDA
#include "tensor/cuda/cuda_backend.h"
#endif

namespace cxr::tensor {

CudaMemoryInfo cuda_memory_info(int device) {
    CudaMemoryInfo info;
#ifdef CXR_HAVE_CUDA
    info.compiled = true;
    info.caching_enabled = cuda::caching_enabled();
    info.stats = cuda::memory_stats(device);
#else
    (void)device;
#endif
    return info;
}

void cuda_empty_cache() {
#ifdef CXR_HAVE_CUDA
    cuda::empty_cache();
#endif
}

}  // namespace cxr::tensor
