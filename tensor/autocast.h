// Autocast (automatic mixed precision), following torch.autocast's op lists (PyTorch docs, "Automatic Mixed
// Precision package"): inside an AutocastGuard with dtype bf16 or f16,
//   lower-precision ops — matmul, linear, baddbmm, conv2d, conv_transpose2d, scaled_dot_product_attention — cast
//     their f32 inputs to the autocast dtype and return that dtype (f64 inputs are left alone, as in torch);
//   f32 ops — batch_norm, group_norm, layer_norm, softmax, log_softmax and the losses — cast bf16/f16 inputs up to
//     f32 and return f32;
//   every other op follows the usual type promotion (tensor/dtype.h promote_types).
// Weights stay f32 ("master weights"): the casts are ordinary differentiable ops, so gradients reach the f32
// parameters in f32 and the optimizer updates them in f32. Accumulation inside the reduced-precision kernels is f32
// (cuBLAS/cuDNN compute type on CUDA; the CPU computes f16/bf16 ops in f32 and rounds the result).
// f16 has a narrow exponent range, so training in f16 needs loss scaling (not provided here); bf16 does not.
// The state is per thread (like grad mode); guards nest and restore the previous state; the backward pass always
// runs with autocast off (tensor/autograd.cpp), so gradients keep the dtypes the forward recorded.
#pragma once

#include <optional>

#include "tensor/dtype.h"

namespace cxr::tensor {

class Tensor;

// The calling thread's autocast dtype, or nullopt when autocast is off.
std::optional<DType> autocast_dtype();

// Sets the thread's autocast dtype for a scope (bf16 or f16; nullopt turns autocast off) and restores the previous
// one on exit.
class AutocastGuard {
public:
    explicit AutocastGuard(std::optional<DType> dtype);
    ~AutocastGuard();
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    std::optional<DType> previous_;
};

// For the lower-precision ops: t cast to the autocast dtype when autocast is on and t is f32; t unchanged otherwise
// (including an undefined tensor).
Tensor autocast_lower(const Tensor& t);
// For the f32 ops: t cast to f32 when autocast is on and t is f16/bf16; t unchanged otherwise.
Tensor autocast_f32(const Tensor& t);

}  // namespace cxr::tensor
