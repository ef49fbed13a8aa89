// dtype sizes, names and the promotion table described in dtype.h.
#include "tensor/dtype.h"

#include "tensor/error.h"

namespace cxr::tensor {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::f64: return 8;
        case DType::f16: return 2;
        case DType::bf16: return 2;
        case DType::i32: return 4;
        case DType::i64: return 8;
        case DType::u8: return 1;
        case DType::boolean: return 1;
    }
    CXR_FAIL("dtype_size: bad dtype");
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::f64: return "f64";
        case DType::f16: return "f16";
        case DType::bf16: return "bf16";
        case DType::i32: return "i32";
        case DType::i64: return "i64";
        case DType::u8: return "u8";
        case DType::boolean: return "bool";
    }
    return "?";
}

DType dtype_from_name(const std::string& name) {
    for (int i = 0; i < kNumDTypes; ++i)
        if (name == dtype_name((DType)i)) return (DType)i;
    CXR_FAIL("unknown dtype name '", name, "' (expected f32 f64 f16 bf16 i32 i64 u8 bool)");
}

bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16; }
bool is_integral(DType t) { return t == DType::i32 || t == DType::i64 || t == DType::u8; }

namespace {
int float_rank(DType t) {  // f16/bf16 = 1, f32 = 2, f64 = 3
    return t == DType::f64 ? 3 : t == DType::f32 ? 2 : 1;
}
int int_rank(DType t) { return t == DType::i64 ? 3 : t == DType::i32 ? 2 : 1; }
}  // namespace

DType promote_types(DType a, DType b) {
    if (a == b) return a;
    if (a == DType::boolean) return b;
    if (b == DType::boolean) return a;
    bool fa = is_floating(a), fb = is_floating(b);
    if (fa && !fb) return a;
    if (fb && !fa) return b;
    if (fa && fb) {
        int ra = float_rank(a), rb = float_rank(b);
        if (ra == 1 && rb == 1) return DType::f32;  // f16 with bf16
        return ra >= rb ? a : b;
    }
    return int_rank(a) >= int_rank(b) ? a : b;
}

template <> DType dtype_of<float>() { return DType::f32; }
template <> DType dtype_of<double>() { return DType::f64; }
template <> DType dtype_of<Half>() { return DType::f16; }
template <> DType dtype_of<BFloat16>() { return DType::bf16; }
template <> DType dtype_of<int32_t>() { return DType::i32; }
template <> DType dtype_of<int64_t>() { return DType::i64; }
template <> DType dtype_of<uint8_t>() { return DType::u8; }
template <> DType dtype_of<bool>() { return DType::boolean; }

}  // namespace cxr::tensor
