// Softmax family along one dim, computed with the maximum subtracted first (no overflow for large inputs).
// Reference: torch.nn.functional.softmax / log_softmax (same definitions, same NaN for a row that is all -inf).
//
//   softmax(x, dim)      y_i = e^(x_i − m) / Σ_j e^(x_j − m),   m = max_j x_j
//                        dx  = y ⊙ (g − Σ_j g_j y_j)
//   log_softmax(x, dim)  y_i = x_i − m − log Σ_j e^(x_j − m)
//                        dx  = g − e^y Σ_j g_j
//
// The CPU kernels (tensor/cpu/softmax.cpp) accumulate the row sums in double; f16/bf16 are read and written in
// their own dtype and computed in double. A 0-d input is treated as one row of one element (dim 0 or -1).
#pragma once

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam) ----
// x contiguous, seen as [outer, n, inner] around `dim` (n = x.size(dim)); out contiguous, x's shape and dtype.
using SoftmaxKernel = void(const Tensor& x, const Tensor& out, int64_t dim, bool log);
// y = the forward output, dy = dL/dy (both contiguous, same shape and dtype); writes dx (contiguous, same shape).
using SoftmaxBackwardKernel = void(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t dim, bool log);
}  // namespace cxr::tensor
