// The CUDA backend's entry points, seen only by tensor/backend.cpp (the one place that knows CUDA is compiled in).
#pragma once

#include "tensor/backend.h"
#include "tensor/caching_allocator.h"

namespace cxr::tensor::cuda {

Backend& backend();
void register_all_kernels(KernelRegistry& r);
void register_random_kernels(KernelRegistry& r);  // tensor/cuda/random.cu
// The caching allocator behind allocate/deallocate (tensor/caching_allocator.h), for tensor/cuda_memory.h.
CachingAllocatorStats memory_stats(int device);
void empty_cache();
bool caching_enabled();
void register_reduce_kernels(KernelRegistry& r);   // tensor/cuda/reduce.cu
void register_softmax_kernels(KernelRegistry& r);  // tensor/cuda/softmax.cu
void register_norm_kernels(KernelRegistry& r);     // tensor/cuda/norm.cu
void register_matmul_kernels(KernelRegistry& r);   // tensor/cuda/matmul.cu
void register_conv_kernels(KernelRegistry& r);     // tensor/cuda/conv.cu
void register_pool_kernels(KernelRegistry& r);     // tensor/cuda/pool.cu
void register_resize_kernels(KernelRegistry& r);   // tensor/cuda/resize.cu
void register_index_kernels(KernelRegistry& r);    // tensor/cuda/index.cu
void register_attention_kernels(KernelRegistry& r);  // tensor/cuda/attention.cu (fused attention)
void register_optim_kernels(KernelRegistry& r);      // tensor/cuda/optim.cu (fused Adam/AdamW)

}  // namespace cxr::tensor::cuda
