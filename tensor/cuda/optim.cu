// CUDA kernel of the fused optimizer family ("adam_step"; formulas in tensor/ops/optim.h): one launch updates a
// whole list of tensors (up to kMaxTensors per launch; longer lists take ceil(n / kMaxTensors) launches), in the
// manner of PyTorch's multi_tensor_apply (facts, not code): the launch's table of tensors — their pointers
// (θ, g, m, v, v̂), sizes and the prefix sums of their chunk counts — travels in the kernel-argument struct
// (TensorTable, < 4 KB, so no device buffer and no host→device copy), every tensor is cut into chunks of kChunk
// elements, and the blocks grid-stride over the chunks of the launch:
//   chunk c belongs to tensor j with chunk_begin[j] <= c < chunk_begin[j + 1]   (a short linear scan, uniform
//   across the block), elements [(c − chunk_begin[j])·kChunk, min(that + kChunk, numel_j)) of tensor j, which
//   the block's threads stride over.
// Each element runs optim::adam_update_element, the same host+device code the CPU kernel runs; on the device its
// additions, products, divisions and square roots are the correctly rounded _rn intrinsics (never contracted
// into FMAs), so the result equals the CPU kernel's bit for bit (tests/tensor/test_optim_fused.cpp, [gpu]).
// Elements are independent: no shared memory, no atomics, no synchronisation inside the kernel.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/optim.h"

namespace cxr::tensor::cuda {

namespace {

constexpr int kMaxTensors = 48;     // tensors per launch: the table is 48·(5 pointers + 2 int64) ≈ 2.7 KB
constexpr int kThreads = 256;       // threads per block
constexpr int64_t kChunk = 4096;    // elements per chunk (16 per thread)
constexpr int64_t kMaxBlocks = 65535;

template <class T>
struct TensorTable {
    T* theta[kMaxTensors];
    const T* grad[kMaxTensors];
    T* m[kMaxTensors];
    T* v[kMaxTensors];
    T* vmax[kMaxTensors];  // nullptr without amsgrad
    int64_t numel[kMaxTensors];
    int64_t chunk_begin[kMaxTensors + 1];  // chunk_begin[0] = 0; chunk_begin[count] = chunks of the launch
    int count;
};
// Kernel parameters are limited to 4 KB (before CUDA 12.1's 32 KB): the table and the coefficients must fit.
static_assert(sizeof(TensorTable<double>) + sizeof(optim::AdamCoefficients<double>) <= 4096,
              "adam_multi_tensor_kernel: the parameter table exceeds the 4 KB kernel-parameter limit");

template <class T>
__global__ void adam_multi_tensor_kernel(const TensorTable<T> table, const optim::AdamCoefficients<T> c) {
    const int64_t total = table.chunk_begin[table.count];
    for (int64_t chunk = blockIdx.x; chunk < total; chunk += gridDim.x) {
        int j = 0;  // the tensor holding this chunk (tensors without elements own no chunk and are skipped)
        while (j + 1 < table.count && table.chunk_begin[j + 1] <= chunk) ++j;
        const int64_t begin = (chunk - table.chunk_begin[j]) * kChunk;
        const int64_t end = begin + kChunk < table.numel[j] ? begin + kChunk : table.numel[j];
        T* theta = table.theta[j];
        const T* grad = table.grad[j];
        T* m = table.m[j];
        T* v = table.v[j];
        T* vmax = table.vmax[j];
        for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x)
            optim::adam_update_element<T>(theta[k], grad[k], m[k], v[k], vmax ? vmax + k : nullptr, c);
    }
}

template <class T>
void adam_step_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                     const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                     const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p, cudaStream_t stream) {
    const optim::AdamCoefficients<T> c = optim::adam_coefficients<T>(p);
    TensorTable<T> table{};  // zero-initialised: chunk_begin[0] = 0, count = 0
    auto flush = [&] {
        if (table.count == 0) return;
        const int64_t chunks = table.chunk_begin[table.count];
        const unsigned grid = (unsigned)std::min<int64_t>(std::max<int64_t>(chunks, 1), kMaxBlocks);
        adam_multi_tensor_kernel<T><<<grid, kThreads, 0, stream>>>(table, c);  // the table is copied at launch
        after_launch("adam_multi_tensor_kernel");
        table.count = 0;
    };
    for (size_t i = 0; i < params.size(); ++i) {
        const int64_t n = params[i].numel();
        if (n == 0) continue;
        const int j = table.count;
        table.theta[j] = params[i].data<T>();
        table.grad[j] = grads[i].data<T>();
        table.m[j] = exp_avgs[i].data<T>();
        table.v[j] = exp_avg_sqs[i].data<T>();
        table.vmax[j] = p.amsgrad ? max_exp_avg_sqs[i].data<T>() : nullptr;
        table.numel[j] = n;
        table.chunk_begin[j + 1] = table.chunk_begin[j] + (n + kChunk - 1) / kChunk;
        table.count = j + 1;
        if (table.count == kMaxTensors) flush();
    }
    flush();
}

void adam_step_kernel(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                      const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p) {
    if (params.empty()) return;
    const int dev = params[0].device().index;
    const DeviceGuard device_guard(dev);  // restored on return
    cudaStream_t stream = current_stream(dev);
    switch (params[0].dtype()) {
        case DType::f32:
            adam_step_typed<float>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, p, stream);
            break;
        case DType::f64:
            adam_step_typed<double>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, p, stream);
            break;
        default: CXR_FAIL("adam_step (CUDA): unsupported dtype ", dtype_name(params[0].dtype()), " (f32 and f64 only)");
    }
}

}  // namespace

void register_optim_kernels(KernelRegistry& r) {
    register_kernel<AdamStepKernel>(r, "adam_step", DeviceType::CUDA, adam_step_kernel);
}

}  // namespace cxr::tensor::cuda
