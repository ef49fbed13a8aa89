// Reductions over a set of dims (empty set = all dims), with keepdim. Floating sums accumulate in double on
// the CPU reference. Formulas:
//   sum    s = Σ x                  d/dx = g (broadcast back)
//   mean   m = Σ x / n              d/dx = g / n
//   var    v = Σ (x - m)² / (n - c) d/dx = g · 2 (x - m) / (n - c),  c = correction (1 = unbiased, as torch)
//   std    σ = √v                   d/dx = g · (x - m) / ((n - c) σ)
//   logsumexp  l = m* + log Σ e^(x - m*), m* = max x   d/dx = g · e^(x - l)
//   amax/amin  gradient split evenly between tied extreme elements (as torch.amax)
//   argmax  first index of the maximum (i64), no gradient
#pragma once

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
inline Tensor max(const Tensor& x, const Shape& dims = {}, bool keepdim = false) { return amax(x, dims, keepdim); }
inline Tensor min(const Tensor& x, const Shape& dims = {}, bool keepdim = false) { return amin(x, dims, keepdim); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signature (the backend seam) ----
// x is contiguous [outer, n]; out is contiguous [outer]. sum: out dtype = x dtype (i64 for integer/bool inputs);
// amax/amin: x dtype; argmax/argmin: i64 (first index of the extreme; NaN counts as the extreme, as torch).
enum class ReduceOp { sum, amax, amin, argmax, argmin };
using ReduceKernel = void(ReduceOp op, const Tensor& x, const Tensor& out);
}  // namespace cxr::tensor
