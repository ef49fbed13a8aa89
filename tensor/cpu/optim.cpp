// CPU kernel of the fused optimizer family ("adam_step"; formulas in tensor/ops/optim.h): a plain loop over every
// element of every tensor of the list, running the single-source per-element update optim::adam_update_element —
// the very arithmetic the CUDA kernel (tensor/cuda/optim.cu) runs. For f32/f64 it rounds exactly as the composed
// path of nn/optim.cpp (one elementwise op per line of the formula), which tests/tensor/test_optim_fused.cpp checks
// bit for bit. Large tensors are split over OpenMP threads; elements are independent, so the result does not
// depend on the thread count.
//
// Bit-identity with the composed path needs every a·b + c rounded twice, never contracted into one FMA. The build
// does not target FMA hardware by default, but GCC contracts under -march=native with its default
// -ffp-contract=fast; the pragma below switches contraction off for this file whatever the target (Clang's default
// contracts only within one expression, and every operation here is its own function call).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cstdint>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/optim.h"

namespace cxr::tensor::cpu {

namespace {

constexpr int64_t kParallelWork = 1 << 15;  // elements below which a single thread is faster

template <class T>
void adam_step_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                     const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                     const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p) {
    const optim::AdamCoefficients<T> c = optim::adam_coefficients<T>(p);
    for (size_t i = 0; i < params.size(); ++i) {
        const int64_t n = params[i].numel();
        T* theta = params[i].data<T>();
        const T* g = grads[i].data<T>();
        T* m = exp_avgs[i].data<T>();
        T* v = exp_avg_sqs[i].data<T>();
        T* vmax = p.amsgrad ? max_exp_avg_sqs[i].data<T>() : nullptr;
#pragma omp parallel for if (n >= kParallelWork) schedule(static)
        for (int64_t k = 0; k < n; ++k)
            optim::adam_update_element<T>(theta[k], g[k], m[k], v[k], vmax ? vmax + k : nullptr, c);
    }
}

void adam_step_kernel(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                      const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p) {
    if (params.empty()) return;
    switch (params[0].dtype()) {
        case DType::f32: adam_step_typed<float>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, p); break;
        case DType::f64: adam_step_typed<double>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, p); break;
        default: CXR_FAIL("adam_step: unsupported dtype ", dtype_name(params[0].dtype()), " (f32 and f64 only)");
    }
}

}  // namespace

void register_optim_kernels(KernelRegistry& r) {
    register_kernel<AdamStepKernel>(r, "adam_step", DeviceType::CPU, adam_step_kernel);
}

}  // namespace cxr::tensor::cpu
