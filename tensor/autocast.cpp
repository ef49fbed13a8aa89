// tensor/autocast.h: the per-thread autocast state and the two casting rules.
#include "tensor/autocast.h"

#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

namespace {
thread_local std::optional<DType> t_autocast;
}

std::optional<DType> autocast_dtype() { return t_autocast; }

AutocastGuard::AutocastGuard(std::optional<DType> dtype) : previous_(t_autocast) {
    CXR_CHECK(!dtype || *dtype == DType::bf16 || *dtype == DType::f16, "autocast: the dtype must be bf16 or f16, got ",
              dtype_name(*dtype));
    t_autocast = dtype;
}

AutocastGuard::~AutocastGuard() { t_autocast = previous_; }

Tensor autocast_lower(const Tensor& t) {
    if (!t_autocast || !t.defined() || t.dtype() != DType::f32) return t;
    return cast(t, *t_autocast);
}

Tensor autocast_f32(const Tensor& t) {
    if (!t_autocast || !t.defined() || (t.dtype() != DType::f16 && t.dtype() != DType::bf16)) return t;
    return cast(t, DType::f32);
}

}  // namespace cxr::tensor
