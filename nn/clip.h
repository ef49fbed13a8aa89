// Gradient clipping as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
//
// clip_grad_norm_(params, max_norm, p): over the gradients g_j of the parameters that have one,
//   total = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p        (= the p-norm of all gradient entries together; p = 2 or ∞)
//   coef  = min(max_norm / (total + 1e-6), 1)
//   g_j  ← coef · g_j                           (in place; every gradient is multiplied, as torch, also when coef = 1)
// and returns total (the norm before clipping). With error_if_nonfinite a NaN/Inf total throws (torch's option);
// otherwise a non-finite total propagates into the gradients as in torch.
// clip_grad_value_(params, c): g ← clamp(g, −c, c).
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

double clip_grad_norm_(const std::vector<tensor::Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

void clip_grad_value_(const std::vector<tensor::Tensor>& params, double clip_value);

}  // namespace cxr::nn
