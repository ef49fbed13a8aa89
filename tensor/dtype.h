// Element types of cxr tensors, their sizes and names, f16/bf16 storage types with exact round-to-nearest-even
// conversion, and the type-promotion rule used by binary ops.
//
// Promotion (documented, a simplified form of PyTorch's): categories are ordered bool < integer < floating.
//   - two operands of the same category promote to the wider type (u8 < i32 < i64; f16, bf16 < f32 < f64;
//     f16 with bf16 gives f32);
//   - an integer/bool with a floating type gives that floating type;
//   - u8 with i32/i64 gives the signed type; bool with anything gives the other type.
// Python-scalar operands (add(t, 2.0)) take the tensor's type when the tensor is floating, and f32 when the
// tensor is integral and the scalar is not integral.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "tensor/error.h"
#include "tensor/macros.h"

namespace cxr::tensor {

enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, u8, boolean };

constexpr int kNumDTypes = 8;

size_t dtype_size(DType t);
const char* dtype_name(DType t);          // "f32", "f64", "f16", "bf16", "i32", "i64", "u8", "bool"
DType dtype_from_name(const std::string& name);  // inverse of dtype_name; throws on unknown names
bool is_floating(DType t);
bool is_integral(DType t);  // i32 i64 u8 (not bool)
DType promote_types(DType a, DType b);

// ---- 16-bit floating storage types. Arithmetic is done in float; these only store bits. ----

// IEEE 754 binary16 bits -> float (exact).
CXR_HD_INLINE float half_bits_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3FFu;
            bits = sign | ((exp + 112u) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);  // inf or nan
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// float -> IEEE binary16 bits, round to nearest even, overflow to inf, NaN kept NaN.
CXR_HD_INLINE uint16_t float_to_half_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0u));
    if (absx >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds to >= 65520 -> inf
    if (absx < 0x38800000u) {                                    // result is subnormal or zero
        if (absx < 0x33000000u) return (uint16_t)sign;           // < 2^-25 rounds to zero
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e;  // 14 + (113 - e) - 1
        uint32_t half_m = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (half_m & 1u))) ++half_m;
        return (uint16_t)(sign | half_m);
    }
    uint32_t e = (absx >> 23) - 112u;
    uint32_t m = absx & 0x7FFFFFu;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: still correct
    return (uint16_t)(sign | h);
}

CXR_HD_INLINE float bf16_bits_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// float -> bfloat16 bits, round to nearest even, NaN kept quiet NaN.
CXR_HD_INLINE uint16_t float_to_bf16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7FFFu + lsb;
    return (uint16_t)(x >> 16);
}

struct Half {
    uint16_t bits = 0;
    Half() = default;
    CXR_HD_INLINE explicit Half(float f) : bits(float_to_half_bits(f)) {}
    CXR_HD_INLINE operator float() const { return half_bits_to_float(bits); }
};

struct BFloat16 {
    uint16_t bits = 0;
    BFloat16() = default;
    CXR_HD_INLINE explicit BFloat16(float f) : bits(float_to_bf16_bits(f)) {}
    CXR_HD_INLINE operator float() const { return bf16_bits_to_float(bits); }
};

// C++ storage type for each dtype.
template <DType D> struct StorageType;
template <> struct StorageType<DType::f32> { using type = float; };
template <> struct StorageType<DType::f64> { using type = double; };
template <> struct StorageType<DType::f16> { using type = Half; };
template <> struct StorageType<DType::bf16> { using type = BFloat16; };
template <> struct StorageType<DType::i32> { using type = int32_t; };
template <> struct StorageType<DType::i64> { using type = int64_t; };
template <> struct StorageType<DType::u8> { using type = uint8_t; };
template <> struct StorageType<DType::boolean> { using type = bool; };

// Type in which elementwise arithmetic is carried out: float for the 16-bit types, the storage type otherwise.
template <class T> struct ComputeType { using type = T; };
template <> struct ComputeType<Half> { using type = float; };
template <> struct ComputeType<BFloat16> { using type = float; };

template <class T> DType dtype_of();

// The value conversion of casts and fills on every backend (one host+device definition): to bool, x != 0; from a
// floating type to an integer type through int64 — defined for |x| < 2^63 and the same on CPU and GPU, as torch's
// static_cast_with_inter_type (a direct float -> u8 cast of a negative value is undefined in C++: x86 wraps, CUDA
// saturates); otherwise a cast between the compute types.
template <class To, class From>
CXR_HD_INLINE To convert_value(From v) {
    using CF = typename ComputeType<From>::type;
    using CT = typename ComputeType<To>::type;
    if constexpr (std::is_same_v<To, bool>)
        return static_cast<CF>(v) != CF(0);
    else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<CF>)
        return static_cast<To>(static_cast<int64_t>(static_cast<CF>(v)));
    else
        return To(static_cast<CT>(static_cast<CF>(v)));
}

}  // namespace cxr::tensor

// CXR_DISPATCH_ALL(dtype, scalar_t, ...) runs the body with scalar_t bound to the storage type of dtype.
#define CXR_DISPATCH_CASE(D, ...)                                          \
    case D: {                                                              \
        using scalar_t = typename ::cxr::tensor::StorageType<D>::type;     \
        __VA_ARGS__;                                                       \
        break;                                                             \
    }

#define CXR_DISPATCH_ALL(DT, NAME, ...)                                                          \
    do {                                                                                         \
        switch (DT) {                                                                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f32, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f64, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f16, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::bf16, __VA_ARGS__)                           \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::i32, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::i64, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::u8, __VA_ARGS__)                             \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::boolean, __VA_ARGS__)                        \
            default: CXR_FAIL(NAME, ": unsupported dtype");                                      \
        }                                                                                        \
    } while (0)

// Floating types only (f32 f64 f16 bf16).
#define CXR_DISPATCH_FLOAT(DT, NAME, ...)                                                        \
    do {                                                                                         \
        switch (DT) {                                                                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f32, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f64, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f16, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::bf16, __VA_ARGS__)                           \
            default: CXR_FAIL(NAME, ": expected a floating dtype, got ", ::cxr::tensor::dtype_name(DT)); \
        }                                                                                        \
    } while (0)

// All but bool (arithmetic kernels).
#define CXR_DISPATCH_NUMERIC(DT, NAME, ...)                                                      \
    do {                                                                                         \
        switch (DT) {                                                                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f32, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f64, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::f16, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::bf16, __VA_ARGS__)                           \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::i32, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::i64, __VA_ARGS__)                            \
            CXR_DISPATCH_CASE(::cxr::tensor::DType::u8, __VA_ARGS__)                             \
            default: CXR_FAIL(NAME, ": arithmetic on dtype ", ::cxr::tensor::dtype_name(DT), " is not supported"); \
        }                                                                                        \
    } while (0)
