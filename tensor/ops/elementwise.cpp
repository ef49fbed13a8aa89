// Elementwise ops: broadcasting, promotion, kernel dispatch, and each op's backward next to its forward.
// Forward computation runs without recording; record() then attaches the node. Saved tensors are detached
// views, so a node never keeps its own output alive through a cycle.
#include "tensor/ops/elementwise.h"

#include <cmath>
#include <limits>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
    CXR_CHECK(a.device() == b.device(), op, ": operands on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
}

bool float_only(UnaryOp op) {
    switch (op) {
        case UnaryOp::neg:
        case UnaryOp::abs:
        case UnaryOp::relu:
        case UnaryOp::clamp:
        case UnaryOp::sign:
        case UnaryOp::square: return false;
        default: return true;
    }
}

// Casts the gradient of a broadcast operand back to the operand's shape and dtype.
Tensor grad_for(const Tensor& g, const Tensor& input) { return cast(sum_to(g, input.sizes()), input.dtype()); }

}  // namespace

Tensor scalar_like(double value, const Tensor& like) {
    DType dt = like.dtype();
    bool integral_value = std::floor(value) == value && std::isfinite(value);
    if (!is_floating(dt)) {
        if (!integral_value)
            dt = DType::f32;
        else if (dt == DType::boolean)
            dt = DType::i64;
    }
    return full({}, value, Options(dt, like.device()));
}

Tensor unary(UnaryOp op, const Tensor& x, EwParams p) {
    NoGradGuard ng;
    Tensor in = x;
    if (float_only(op) && !is_floating(x.dtype())) in = cast(x, DType::f32);
    CXR_CHECK(in.dtype() != DType::boolean, "arithmetic on a bool tensor; cast it first");
    Tensor out = Tensor::empty(in.sizes(), in.dtype(), in.device());
    get_kernel<UnaryKernel>("unary", in.device())(op, in, out, p);
    return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, EwParams p) {
    check_same_device(a, b, "binary op");
    NoGradGuard ng;
    DType dt = promote_types(a.dtype(), b.dtype());
    if ((op == BinaryOp::div || op == BinaryOp::pow) && !is_floating(dt)) dt = DType::f32;
    Shape shape = broadcast_shapes(a.sizes(), b.sizes());
    Tensor ac = expand(cast(a, dt), shape);
    Tensor bc = expand(cast(b, dt), shape);
    Tensor out = Tensor::empty(shape, dt, a.device());
    get_kernel<BinaryKernel>("binary", a.device())(op, ac, bc, out, p);
    return out;
}

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
    check_same_device(a, b, "comparison");
    NoGradGuard ng;
    DType dt = promote_types(a.dtype(), b.dtype());
    Shape shape = broadcast_shapes(a.sizes(), b.sizes());
    Tensor ac = expand(cast(a, dt), shape);
    Tensor bc = expand(cast(b, dt), shape);
    Tensor out = Tensor::empty(shape, DType::boolean, a.device());
    get_kernel<CompareKernel>("compare", a.device())(op, ac, bc, out);
    return out;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
    if (grad.sizes() == shape) return grad;
    const int64_t lead = grad.dim() - (int64_t)shape.size();
    CXR_CHECK(lead >= 0, "sum_to: cannot reduce ", shape_str(grad.sizes()), " to ", shape_str(shape));
    Shape dims;
    for (int64_t d = 0; d < grad.dim(); ++d)
        if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
    Tensor s = dims.empty() ? grad : sum(grad, dims, true);
    return reshape(s, shape);
}

// ---- arithmetic ----
Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary(BinaryOp::add, a, b);
    return record("add", out, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {grad_for(g, a), grad_for(g, b)};
    });
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary(BinaryOp::sub, a, b);
    return record("sub", out, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {grad_for(g, a), grad_for(neg(g), b)};
    });
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary(BinaryOp::mul, a, b);
    return record("mul", out, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {grad_for(mul(g, b), a), grad_for(mul(g, a), b)};
    });
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = binary(BinaryOp::div, a, b);
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b
    return record("div", out, {a, b},
                  [a = a.detach(), b = b.detach(), out = out.detach()](const Tensor& g) -> std::vector<Tensor> {
                      Tensor ga = div(g, b);
                      return {grad_for(ga, a), grad_for(neg(mul(ga, out)), b)};
                  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
    Tensor out = binary(BinaryOp::pow, a, b);
    // d/da = b a^(b-1); d/db = a^b ln a (taken as 0 where a == 0, as PyTorch does)
    return record("pow", out, {a, b},
                  [a = a.detach(), b = b.detach(), out = out.detach()](const Tensor& g) -> std::vector<Tensor> {
                      Tensor ga = mul(g, mul(b, binary(BinaryOp::pow, a, sub(b, 1.0))));
                      Tensor lna = where(eq(a, 0.0), zeros_like(out), log(cast(a, out.dtype())));
                      Tensor gb = mul(g, mul(out, lna));
                      return {grad_for(ga, a), grad_for(gb, b)};
                  });
}

Tensor pow(const Tensor& a, double e) {
    EwParams p{e, 0};
    Tensor out = unary(UnaryOp::pow_scalar, a, p);
    return record("pow_scalar", out, {a}, [a = a.detach(), e](const Tensor& g) -> std::vector<Tensor> {
        if (e == 0.0) return {zeros_like(a)};
        return {cast(mul(g, mul(unary(UnaryOp::pow_scalar, a, EwParams{e - 1.0, 0}), e)), a.dtype())};
    });
}

namespace {
// Gradient routing of minimum/maximum: to the chosen operand, split in half on ties.
Tensor min_max(const Tensor& a, const Tensor& b, bool is_max) {
    Tensor out = binary(is_max ? BinaryOp::maximum : BinaryOp::minimum, a, b);
    return record(is_max ? "maximum" : "minimum", out, {a, b},
                  [a = a.detach(), b = b.detach(), is_max](const Tensor& g) -> std::vector<Tensor> {
                      Tensor a_wins = is_max ? gt(a, b) : lt(a, b);
                      Tensor tie = eq(a, b);
                      Tensor zero = zeros_like(g);
                      Tensor half = mul(g, 0.5);
                      Tensor ga = where(a_wins, g, where(tie, half, zero));
                      Tensor gb = where(a_wins, zero, where(tie, half, g));
                      return {grad_for(ga, a), grad_for(gb, b)};
                  });
}
}  // namespace

Tensor minimum(const Tensor& a, const Tensor& b) { return min_max(a, b, false); }
Tensor maximum(const Tensor& a, const Tensor& b) { return min_max(a, b, true); }

namespace {
// tensor ∘ scalar. For f16/bf16 tensors the scalar is not rounded to 16 bits first: the op runs in f32 and the
// result is rounded once (as PyTorch does), so f16(1000) * 1e-8 gives 1e-5, not 0.
Tensor with_scalar(Tensor (*op)(const Tensor&, const Tensor&), const Tensor& a, double b) {
    if (a.dtype() == DType::f16 || a.dtype() == DType::bf16) {
        Tensor a32 = cast(a, DType::f32);
        return cast(op(a32, scalar_like(b, a32)), a.dtype());
    }
    return op(a, scalar_like(b, a));
}
}  // namespace

Tensor add(const Tensor& a, double b) { return with_scalar(add, a, b); }
Tensor sub(const Tensor& a, double b) { return with_scalar(sub, a, b); }
Tensor mul(const Tensor& a, double b) { return with_scalar(mul, a, b); }
Tensor div(const Tensor& a, double b) { return with_scalar(div, a, b); }

// ---- unary ----
namespace {
// An op whose backward is g ⊙ f'(saved), computed by a binary backward functor on (g, x) or (g, y).
Tensor unary_with_backward_functor(const char* name, UnaryOp op, BinaryOp backward_op, const Tensor& x,
                                   EwParams p, bool save_output) {
    Tensor out = unary(op, x, p);
    Tensor saved = save_output ? out.detach() : x.detach();
    return record(name, out, {x}, [saved, backward_op, p, x = x.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {cast(binary(backward_op, g, saved, p), x.dtype())};
    });
}
}  // namespace

Tensor neg(const Tensor& x) {
    Tensor out = unary(UnaryOp::neg, x);
    return record("neg", out, {x}, [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}

Tensor abs(const Tensor& x) {
    Tensor out = unary(UnaryOp::abs, x);
    return record("abs", out, {x}, [x = x.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, unary(UnaryOp::sign, x))};
    });
}

Tensor exp(const Tensor& x) {
    Tensor out = unary(UnaryOp::exp, x);
    return record("exp", out, {x}, [out = out.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, out)};
    });
}

Tensor log(const Tensor& x) {
    Tensor out = unary(UnaryOp::log, x);
    return record("log", out, {x}, [x = x.detach()](const Tensor& g) -> std::vector<Tensor> { return {div(g, x)}; });
}

Tensor sqrt(const Tensor& x) {
    Tensor out = unary(UnaryOp::sqrt, x);
    // d√x/dx = 1 / (2√x)
    return record("sqrt", out, {x}, [out = out.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {div(g, mul(out, 2.0))};
    });
}

Tensor rsqrt(const Tensor& x) {
    Tensor out = unary(UnaryOp::rsqrt, x);
    // d x^(-1/2)/dx = -1/2 x^(-3/2) = -1/2 out³
    return record("rsqrt", out, {x}, [out = out.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, mul(unary(UnaryOp::pow_scalar, out, EwParams{3.0, 0}), -0.5))};
    });
}

Tensor sin(const Tensor& x) {
    Tensor out = unary(UnaryOp::sin, x);
    return record("sin", out, {x}, [x = x.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, unary(UnaryOp::cos, x))};
    });
}

Tensor cos(const Tensor& x) {
    Tensor out = unary(UnaryOp::cos, x);
    return record("cos", out, {x}, [x = x.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {neg(mul(g, unary(UnaryOp::sin, x)))};
    });
}

Tensor tanh(const Tensor& x) {
    return unary_with_backward_functor("tanh", UnaryOp::tanh, BinaryOp::tanh_backward, x, {}, true);
}
Tensor sigmoid(const Tensor& x) {
    return unary_with_backward_functor("sigmoid", UnaryOp::sigmoid, BinaryOp::sigmoid_backward, x, {}, true);
}
Tensor relu(const Tensor& x) {
    return unary_with_backward_functor("relu", UnaryOp::relu, BinaryOp::relu_backward, x, {}, false);
}
Tensor leaky_relu(const Tensor& x, double slope) {
    return unary_with_backward_functor("leaky_relu", UnaryOp::leaky_relu, BinaryOp::leaky_relu_backward, x,
                                       {slope, 0}, false);
}
Tensor silu(const Tensor& x) {
    return unary_with_backward_functor("silu", UnaryOp::silu, BinaryOp::silu_backward, x, {}, false);
}
Tensor gelu(const Tensor& x, GeluApprox approximate) {
    if (approximate == GeluApprox::tanh)
        return unary_with_backward_functor("gelu_tanh", UnaryOp::gelu_tanh, BinaryOp::gelu_tanh_backward, x, {},
                                           false);
    return unary_with_backward_functor("gelu", UnaryOp::gelu_erf, BinaryOp::gelu_erf_backward, x, {}, false);
}
Tensor quick_gelu(const Tensor& x) {
    return unary_with_backward_functor("quick_gelu", UnaryOp::quick_gelu, BinaryOp::quick_gelu_backward, x, {},
                                       false);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
    CXR_CHECK(beta != 0.0, "softplus: beta must be nonzero");
    return unary_with_backward_functor("softplus", UnaryOp::softplus, BinaryOp::softplus_backward, x,
                                       {beta, threshold}, false);
}
Tensor clamp(const Tensor& x, double lo, double hi) {
    CXR_CHECK(!(lo > hi), "clamp: min ", lo, " > max ", hi);
    auto integral = [](double v) { return std::isfinite(v) && std::floor(v) == v; };
    if (!is_floating(x.dtype()) && !(integral(lo) && integral(hi)))
        return clamp(cast(x, DType::f32), lo, hi);  // non-integral or infinite bounds: the result is f32, as torch
    return unary_with_backward_functor("clamp", UnaryOp::clamp, BinaryOp::clamp_backward, x, {lo, hi}, false);
}

Tensor square(const Tensor& x) {
    Tensor out = unary(UnaryOp::square, x);
    return record("square", out, {x}, [x = x.detach()](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, mul(x, 2.0))};
    });
}

Tensor sign(const Tensor& x) {
    Tensor out = unary(UnaryOp::sign, x);
    return record("sign", out, {x}, [](const Tensor& g) -> std::vector<Tensor> { return {zeros_like(g)}; });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_same_device(a, b, "where");
    check_same_device(cond, a, "where");
    Tensor out;
    {
        NoGradGuard ng;
        DType dt = promote_types(a.dtype(), b.dtype());
        Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes()), b.sizes());
        Tensor cc = expand(cast(cond, DType::boolean), shape);
        Tensor ac = expand(cast(a, dt), shape);
        Tensor bc = expand(cast(b, dt), shape);
        out = Tensor::empty(shape, dt, a.device());
        get_kernel<WhereKernel>("where", a.device())(cc, ac, bc, out);
    }
    return record("where", out, {a, b},
                  [c = cast(cond, DType::boolean), a = a.detach(), b = b.detach()](const Tensor& g)
                      -> std::vector<Tensor> {
                      Tensor zero = zeros_like(g);
                      return {grad_for(where(c, g, zero), a), grad_for(where(c, zero, g), b)};
                  });
}

// ---- comparisons ----
Tensor eq(const Tensor& a, const Tensor& b) { return compare(CompareOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(CompareOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(CompareOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(CompareOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(CompareOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(CompareOp::ge, a, b); }
Tensor eq(const Tensor& a, double b) { return compare(CompareOp::eq, a, scalar_like(b, a)); }
Tensor gt(const Tensor& a, double b) { return compare(CompareOp::gt, a, scalar_like(b, a)); }
Tensor lt(const Tensor& a, double b) { return compare(CompareOp::lt, a, scalar_like(b, a)); }
Tensor logical_not(const Tensor& x) { return eq(cast(x, DType::boolean), full({}, 0.0, Options(DType::boolean, x.device()))); }

// ---- casts ----
Tensor cast(const Tensor& x, DType dtype) {
    if (x.dtype() == dtype) return x;
    Tensor out = Tensor::empty(x.sizes(), dtype, x.device());
    get_kernel<CastKernel>("cast", x.device())(x, out);
    if (!is_floating(dtype) || !is_floating(x.dtype())) return out;
    DType from = x.dtype();
    return record("cast", out, {x}, [from](const Tensor& g) -> std::vector<Tensor> { return {cast(g, from)}; });
}

}  // namespace cxr::tensor
