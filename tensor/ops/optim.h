// Fused optimizer updates (the "optim" op family): one Adam/AdamW step over many tensors in one call — one CUDA
// launch for a whole list of parameters, as PyTorch's fused/multi_tensor_apply Adam does conceptually — instead of
// the dozen elementwise ops per parameter of the composed path in nn/optim.cpp.
//
// Adam (Kingma & Ba 2015, Algorithm 1, torch's eps placement) / AdamW (Loshchilov & Hutter 2019), per element,
// with g = ∇ (−∇ when maximize), t the step count (1 at the first update), every line rounded to the tensor dtype
// in this order — the order of torch's _single_tensor_adam and of nn/optim.cpp's composed path:
//   AdamW (λ ≠ 0):  θ ← θ · (1 − lr·λ)                       Adam (λ ≠ 0):  g ← g + θ·λ
//   m ← m + (g − m)·w             when |w| < 0.5, w = 1 − β1     (torch.lerp's two forms)
//   m ← g − (g − m)·(1 − w)       otherwise
//   v ← v·β2 + (g·(1 − β2))·g
//   v̂ ← max(v̂, v) (NaN-propagating, amsgrad; then v̂ replaces v below)
//   denom ← √v / √(1 − β2^t) + ε
//   θ ← θ + (m / denom)·(−lr / (1 − β1^t))
// The scalar factors (1 − lr·λ, w, 1 − β2, √(1 − β2^t), −lr/(1 − β1^t), ...) are computed in double on the host
// and rounded once to the tensor dtype, exactly as the composed path's tensor-scalar ops round them, so for f32 and
// f64 the fused result is bit-identical to the composed one (tests/tensor/test_optim_fused.cpp checks it).
//
// The per-element arithmetic is written ONCE below (adam_update_element, host+device, DESIGN.md §3); the CPU kernel
// (tensor/cpu/optim.cpp) loops over it and the CUDA kernel (tensor/cuda/optim.cu) runs it in a grid. On the device
// every operation is an explicitly rounded intrinsic (__fadd_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn, ...), which the
// compiler never contracts into an FMA, so the GPU rounds exactly as the CPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/macros.h"
#include "tensor/ops/elementwise_functors.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

struct AdamStepParams {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    bool decoupled_weight_decay = false;  // true: AdamW (θ·(1 − lr·λ)); false: Adam (L2 added to the gradient)
    bool amsgrad = false;                 // needs max_exp_avg_sqs
    bool maximize = false;
    int64_t step = 1;  // t: the step count of every tensor of the call AFTER this update (1 at the first)
};

// One Adam/AdamW update, in place, of params[i], exp_avgs[i] (m), exp_avg_sqs[i] (v) and, with amsgrad,
// max_exp_avg_sqs[i] (v̂) from grads[i], for every i (formula above). Lists of equal length; tensor i of every list
// has the shape of params[i]; every tensor f32 or f64 (one dtype for all; grads may be another floating dtype and
// are cast), all on one device; params and state contiguous (they are written in place; grads are made contiguous).
// max_exp_avg_sqs is empty unless amsgrad. No autograd: the update is outside the graph (an optimizer step).
void adam_step_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p);

// ---- kernel signature (the backend seam, "adam_step"): lists validated by adam_step_ (equal lengths, one dtype
// f32/f64, one device, matching shapes, all contiguous, grads already in the param dtype); max_exp_avg_sqs empty
// unless p.amsgrad.
using AdamStepKernel = void(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                            const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p);

// ---- the single-source per-element arithmetic (host + device) ----
namespace optim {

// Correctly rounded a∘b for T = float or double: plain operators on the host (compiled without FMA contraction, see
// tensor/cpu/optim.cpp), the _rn intrinsics on the device (never contracted into an FMA).
#if defined(__CUDA_ARCH__)
#define CXR_RN_OP(name, expr, f_intrinsic, d_intrinsic)                        \
    template <class T>                                                         \
    CXR_HD_INLINE T name(T a, T b) {                                           \
        if constexpr (std::is_same_v<T, float>) return f_intrinsic(a, b);      \
        else return d_intrinsic(a, b);                                         \
    }
#else
#define CXR_RN_OP(name, expr, f_intrinsic, d_intrinsic) \
    template <class T>                                  \
    CXR_HD_INLINE T name(T a, T b) {                    \
        return expr;                                    \
    }
#endif
CXR_RN_OP(add_rn, a + b, __fadd_rn, __dadd_rn)
CXR_RN_OP(sub_rn, a - b, __fsub_rn, __dsub_rn)
CXR_RN_OP(mul_rn, a * b, __fmul_rn, __dmul_rn)
CXR_RN_OP(div_rn, a / b, __fdiv_rn, __ddiv_rn)
#undef CXR_RN_OP
template <class T>
CXR_HD_INLINE T sqrt_rn(T a) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fsqrt_rn(a);
    else return __dsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

// The scalar factors of one step, computed in double and rounded once to T (as the composed path's
// tensor-scalar ops round their double scalar to the tensor dtype).
template <class T>
struct AdamCoefficients {
    bool decay = false;       // AdamW with λ ≠ 0: θ ← θ·decay_factor
    bool l2 = false;          // Adam with λ ≠ 0:  g ← g + θ·weight_decay
    bool lerp_low = true;     // |w| < 0.5: m ← m + (g − m)·lerp_weight;  else m ← g − (g − m)·lerp_weight
    bool amsgrad = false;
    bool maximize = false;
    T decay_factor = T(1);    // 1 − lr·λ
    T weight_decay = T(0);    // λ
    T lerp_weight = T(0);     // w = 1 − β1 (lerp_low) or 1 − w (otherwise)
    T beta2 = T(0);           // β2
    T one_minus_beta2 = T(0); // 1 − β2
    T bias_correction2_sqrt = T(1);  // √(1 − β2^t)
    T eps = T(0);             // ε
    T neg_step_size = T(0);   // −lr / (1 − β1^t)
};

template <class T>
inline AdamCoefficients<T> adam_coefficients(const AdamStepParams& p) {
    AdamCoefficients<T> c;
    const double t = (double)p.step;
    c.decay = p.weight_decay != 0.0 && p.decoupled_weight_decay;
    c.l2 = p.weight_decay != 0.0 && !p.decoupled_weight_decay;
    c.amsgrad = p.amsgrad;
    c.maximize = p.maximize;
    c.decay_factor = (T)(1.0 - p.lr * p.weight_decay);
    c.weight_decay = (T)p.weight_decay;
    const double w = 1.0 - p.beta1;
    c.lerp_low = std::fabs(w) < 0.5;
    c.lerp_weight = c.lerp_low ? (T)w : (T)(1.0 - w);
    c.beta2 = (T)p.beta2;
    c.one_minus_beta2 = (T)(1.0 - p.beta2);
    const double bias_correction1 = 1.0 - std::pow(p.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(p.beta2, t);
    c.bias_correction2_sqrt = (T)std::sqrt(bias_correction2);
    c.eps = (T)p.eps;
    c.neg_step_size = (T)(-(p.lr / bias_correction1));
    return c;
}

// One element of the update (formula at the top of this file). theta, m, v (and vmax with amsgrad) are read and
// written; grad is the raw gradient in T.
template <class T>
CXR_HD_INLINE void adam_update_element(T& theta, T grad, T& m, T& v, T* vmax, const AdamCoefficients<T>& c) {
    T g = c.maximize ? -grad : grad;
    T th = theta;
    if (c.decay) th = mul_rn(th, c.decay_factor);               // θ·(1 − lr·λ)
    if (c.l2) g = add_rn(g, mul_rn(th, c.weight_decay));        // g + θ·λ
    const T diff = sub_rn(g, m);                                // g − m
    T mm = c.lerp_low ? add_rn(m, mul_rn(diff, c.lerp_weight))  // m + (g − m)·w
                      : sub_rn(g, mul_rn(diff, c.lerp_weight)); // g − (g − m)·(1 − w)
    T vv = add_rn(mul_rn(v, c.beta2), mul_rn(mul_rn(g, c.one_minus_beta2), g));  // v·β2 + (g·(1 − β2))·g
    T second = vv;
    if (c.amsgrad) {
        second = ew::maximum{}(*vmax, vv, EwParams{});  // max(v̂, v), NaN-propagating as torch.maximum
        *vmax = second;
    }
    const T denom = add_rn(div_rn(sqrt_rn(second), c.bias_correction2_sqrt), c.eps);  // √v / √(1 − β2^t) + ε
    th = add_rn(th, mul_rn(div_rn(mm, denom), c.neg_step_size));                       // θ + (m / denom)·(−step)
    theta = th;
    m = mm;
    v = vv;
}

}  // namespace optim
}  // namespace cxr::tensor
