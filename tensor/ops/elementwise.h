// Elementwise ops with NumPy broadcasting and the type promotion of tensor/dtype.h. The arithmetic is the
// single-source functors of elementwise_functors.h; the formulas are written there. Each op records an autograd
// node whose backward is written in elementwise.cpp next to its forward. Gradients of broadcast inputs are summed
// back to the input's shape (sum_to).
#pragma once

#include "tensor/ops/elementwise_functors.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

// ---- generic entry points (also used by other op families) ----
Tensor unary(UnaryOp op, const Tensor& x, EwParams p = {});
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, EwParams p = {});  // no autograd node
Tensor compare(CompareOp op, const Tensor& a, const Tensor& b);
// A 0-d tensor holding `value` in a dtype suited to combine with `like` (see dtype.h: scalar promotion).
Tensor scalar_like(double value, const Tensor& like);

// ---- arithmetic (differentiable) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // true division: integer inputs give f32
Tensor pow(const Tensor& a, const Tensor& b);  // d/da = b a^(b-1), d/db = a^b ln a
Tensor pow(const Tensor& a, double exponent);
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient split evenly where a == b (as PyTorch)
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);    // d/dx = sign(x) (0 at 0)
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);  // d/dx = -1/2 x^(-3/2)
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);   // d/dx = [x > 0]
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor silu(const Tensor& x);
enum class GeluApprox { none, tanh };
Tensor gelu(const Tensor& x, GeluApprox approximate = GeluApprox::none);
Tensor quick_gelu(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor clamp(const Tensor& x, double lo, double hi);  // use ±infinity for a one-sided clamp
Tensor square(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)

// where(cond, a, b) = cond ? a : b, broadcasting all three; cond is bool (or nonzero).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- comparisons (bool results, no gradient) ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor logical_not(const Tensor& x);

// ---- casts ----
// Differentiable between floating types (the gradient is cast back); to integer types it cuts the graph.
Tensor cast(const Tensor& x, DType dtype);

// Sums `grad` over broadcast dimensions so that it has `shape` (the adjoint of expand).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Operators.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }
inline Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }  // a - b

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam): operands are broadcast to out's shape and in out's dtype,
// except cast (any two dtypes) and compare (out is bool). ----
using FillKernel = void(const Tensor& out, double value);
using CastKernel = void(const Tensor& src, const Tensor& dst);  // same device, same shape, any dtypes/strides
using UnaryKernel = void(UnaryOp op, const Tensor& x, const Tensor& out, const EwParams& p);
using BinaryKernel = void(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p);
using CompareKernel = void(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out);
using WhereKernel = void(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
}  // namespace cxr::tensor
