// Single-source elementwise math (DESIGN.md §3): every unary and binary elementwise function is written once
// here as host+device code. The CPU backend runs these functors in a strided loop (tensor/cpu/elementwise.cpp);
// the CUDA backend launches the very same functors in a grid, so the CPU tests exercise the GPU's arithmetic.
// T is the compute type (float for f32/f16/bf16, double for f64, the integer type for integer tensors).
//
// Formulas (x input, y output, g incoming gradient, p.a / p.b parameters):
//   sigmoid(x) = 1 / (1 + e^-x)          silu(x) = x * sigmoid(x)          quick_gelu(x) = x * sigmoid(1.702 x)
//   gelu_erf(x) = x/2 * (1 + erf(x/√2))  gelu_tanh(x) = x/2 * (1 + tanh(√(2/π) (x + 0.044715 x³)))
//   softplus(x; β=p.a, threshold=p.b) = x if βx > threshold else log(1 + e^(βx)) / β
//   leaky_relu(x; slope=p.a) = x if x > 0 else slope*x      clamp(x; lo=p.a, hi=p.b)     pow_scalar(x; e=p.a) = x^e
//   rsqrt(x) = 1/√x
// Backward functors take (g, x) or (g, y) as documented on each and return dL/dx.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tensor/macros.h"

namespace cxr::tensor {

struct EwParams {
    double a = 0.0;
    double b = 0.0;
};

// X-macro lists: the op enums, the CPU dispatch and the CUDA dispatch are all generated from these.
#define CXR_UNARY_OPS(X)                                                                                  \
    X(neg) X(abs) X(exp) X(log) X(sqrt) X(rsqrt) X(sin) X(cos) X(tanh) X(sigmoid) X(relu) X(leaky_relu) \
    X(silu) X(gelu_erf) X(gelu_tanh) X(quick_gelu) X(softplus) X(clamp) X(pow_scalar) X(sign) X(square) \
    X(reciprocal)

#define CXR_BINARY_OPS(X)                                                                              \
    X(add) X(sub) X(mul) X(div) X(pow) X(minimum) X(maximum) X(relu_backward) X(leaky_relu_backward) \
    X(silu_backward) X(gelu_erf_backward) X(gelu_tanh_backward) X(quick_gelu_backward)              \
    X(softplus_backward) X(sigmoid_backward) X(tanh_backward) X(clamp_backward)

#define CXR_COMPARE_OPS(X) X(eq) X(ne) X(lt) X(le) X(gt) X(ge)

#define CXR_ENUM_ENTRY(name) name,
enum class UnaryOp { CXR_UNARY_OPS(CXR_ENUM_ENTRY) };
enum class BinaryOp { CXR_BINARY_OPS(CXR_ENUM_ENTRY) };
enum class CompareOp { CXR_COMPARE_OPS(CXR_ENUM_ENTRY) };
#undef CXR_ENUM_ENTRY

namespace ew {

template <class T> CXR_HD_INLINE T sigmoid_of(T x) { return T(1) / (T(1) + std::exp(-x)); }
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // √(2/π)
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;    // 1/√(2π)

// ---- unary: y = f(x) ----
struct neg { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return -x; } };
struct abs { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return x < T(0) ? -x : x; } };
struct exp { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::exp(x); } };
struct log { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::log(x); } };
struct sqrt { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::sqrt(x); } };
struct rsqrt { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return T(1) / std::sqrt(x); } };
struct sin { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::sin(x); } };
struct cos { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::cos(x); } };
struct tanh { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return std::tanh(x); } };
struct sigmoid { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return sigmoid_of(x); } };
struct relu { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return x > T(0) ? x : T(0); } };
struct leaky_relu {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams& p) const { return x > T(0) ? x : T(p.a) * x; }
};
struct silu { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return x * sigmoid_of(x); } };
struct gelu_erf {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const {
        return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
    }
};
struct gelu_tanh {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const {
        return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x)));
    }
};
struct quick_gelu {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return x * sigmoid_of(T(1.702) * x); }
};
struct softplus {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams& p) const {
        T bx = T(p.a) * x;
        return bx > T(p.b) ? x : std::log1p(std::exp(bx)) / T(p.a);
    }
};
struct clamp {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams& p) const {
        return x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x);
    }
};
struct pow_scalar {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams& p) const { return (T)std::pow(x, (T)p.a); }
};
struct sign {
    template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const {
        return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    }
};
struct square { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return x * x; } };
struct reciprocal { template <class T> CXR_HD_INLINE T operator()(T x, const EwParams&) const { return T(1) / x; } };

// ---- binary: out = f(a, b) ----
struct add { template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const { return a + b; } };
struct sub { template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const { return a - b; } };
struct mul { template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const { return a * b; } };
struct div { template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const { return a / b; } };
struct pow { template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const { return (T)std::pow(a, b); } };
// minimum/maximum propagate NaN like PyTorch.
struct minimum {
    template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const {
        if (a != a) return a;
        if (b != b) return b;
        return a < b ? a : b;
    }
};
struct maximum {
    template <class T> CXR_HD_INLINE T operator()(T a, T b, const EwParams&) const {
        if (a != a) return a;
        if (b != b) return b;
        return a > b ? a : b;
    }
};
// (g, x): dL/dx = g * [x > 0]
struct relu_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams&) const { return x > T(0) ? g : T(0); }
};
// (g, x): g * (x > 0 ? 1 : slope)
struct leaky_relu_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams& p) const { return x > T(0) ? g : g * T(p.a); }
};
// (g, x): g * s (1 + x (1 - s)), s = sigmoid(x)
struct silu_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams&) const {
        T s = sigmoid_of(x);
        return g * s * (T(1) + x * (T(1) - s));
    }
};
// (g, x): g * (Φ(x) + x φ(x))
struct gelu_erf_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams&) const {
        T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
        T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
        return g * (cdf + x * pdf);
    }
};
// (g, x): derivative of x/2 (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)
struct gelu_tanh_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams&) const {
        T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
        T t = std::tanh(u);
        T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
        return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
};
// (g, x): g * (s + 1.702 x s (1 - s)), s = sigmoid(1.702 x)
struct quick_gelu_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams&) const {
        T s = sigmoid_of(T(1.702) * x);
        return g * (s + T(1.702) * x * s * (T(1) - s));
    }
};
// (g, x): g * sigmoid(βx), or g where βx > threshold
struct softplus_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams& p) const {
        T bx = T(p.a) * x;
        return bx > T(p.b) ? g : g * sigmoid_of(bx);
    }
};
// (g, y): g * y (1 - y), y = sigmoid(x)
struct sigmoid_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T y, const EwParams&) const { return g * y * (T(1) - y); }
};
// (g, y): g * (1 - y²), y = tanh(x)
struct tanh_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T y, const EwParams&) const { return g * (T(1) - y * y); }
};
// (g, x): g where lo <= x <= hi, else 0 (PyTorch passes the gradient at the boundaries)
struct clamp_backward {
    template <class T> CXR_HD_INLINE T operator()(T g, T x, const EwParams& p) const {
        return (x >= T(p.a) && x <= T(p.b)) ? g : T(0);
    }
};

// ---- comparisons: bool out = a ? b ----
struct eq { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a == b; } };
struct ne { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a != b; } };
struct lt { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a < b; } };
struct le { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a <= b; } };
struct gt { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a > b; } };
struct ge { template <class T> CXR_HD_INLINE bool operator()(T a, T b) const { return a >= b; } };

// Functors that are meaningful on integer tensors; the others are instantiated for floating types only (the op
// layer casts integer inputs of float-only functions to f32 first, as PyTorch does).
template <class F> struct IntegerCapable { static constexpr bool value = false; };
#define CXR_INTEGER_CAPABLE(name) \
    template <> struct IntegerCapable<name> { static constexpr bool value = true; };
CXR_INTEGER_CAPABLE(neg) CXR_INTEGER_CAPABLE(abs) CXR_INTEGER_CAPABLE(relu) CXR_INTEGER_CAPABLE(clamp)
CXR_INTEGER_CAPABLE(sign) CXR_INTEGER_CAPABLE(square) CXR_INTEGER_CAPABLE(add) CXR_INTEGER_CAPABLE(sub)
CXR_INTEGER_CAPABLE(mul) CXR_INTEGER_CAPABLE(minimum) CXR_INTEGER_CAPABLE(maximum)
#undef CXR_INTEGER_CAPABLE

// True when functor F is instantiated for compute type C.
template <class F, class C>
constexpr bool functor_supports() { return std::is_floating_point<C>::value || IntegerCapable<F>::value; }

}  // namespace ew
}  // namespace cxr::tensor
