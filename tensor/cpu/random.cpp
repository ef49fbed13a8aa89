// CPU kernel of the "philox_fill" seam (tensor/ops/random.h): the host fills of tensor/generator.h, which follow
// the STREAM SPEC of tensor/philox.h word for word. Also the shared argument check of the seam.
#include "tensor/ops/random.h"

#include "tensor/backend.h"
#include "tensor/cpu/kernels.h"
#include "tensor/error.h"
#include "tensor/generator.h"

namespace cxr::tensor {

void check_philox_fill_args(const Tensor& out, const PhiloxFillParams& p) {
    CXR_CHECK(out.is_contiguous(), "philox_fill: the output must be contiguous");
    switch (p.dist) {
        case PhiloxDist::uniform:
            CXR_CHECK(out.dtype() == DType::f32 || out.dtype() == DType::f64,
                      "philox_fill: uniform draws fill f32 or f64, got ", dtype_name(out.dtype()));
            CXR_CHECK(p.a <= p.b, "philox_fill: uniform lo ", p.a, " > hi ", p.b);
            break;
        case PhiloxDist::normal:
            CXR_CHECK(out.dtype() == DType::f32 || out.dtype() == DType::f64,
                      "philox_fill: normal draws fill f32 or f64, got ", dtype_name(out.dtype()));
            CXR_CHECK(p.b >= 0.0, "philox_fill: normal std must be >= 0, got ", p.b);
            break;
        case PhiloxDist::randint:
            CXR_CHECK(out.dtype() == DType::i64, "philox_fill: randint fills i64, got ", dtype_name(out.dtype()));
            CXR_CHECK(p.low < p.high, "philox_fill: randint empty range [", p.low, ", ", p.high, ")");
            break;
    }
}

namespace cpu {
namespace {

void philox_fill_kernel(const Tensor& out, const PhiloxFillParams& p) {
    check_philox_fill_args(out, p);
    const int64_t n = out.numel();
    if (n == 0) return;
    switch (p.dist) {
        case PhiloxDist::uniform:
            if (out.dtype() == DType::f64)
                fill_uniform_f64(out.data<double>(), n, p.seed, p.offset, p.a, p.b);
            else
                fill_uniform_f32(out.data<float>(), n, p.seed, p.offset, (float)p.a, (float)p.b);
            break;
        case PhiloxDist::normal:
            if (out.dtype() == DType::f64)
                fill_normal_f64(out.data<double>(), n, p.seed, p.offset, p.a, p.b);
            else
                fill_normal_f32(out.data<float>(), n, p.seed, p.offset, (float)p.a, (float)p.b);
            break;
        case PhiloxDist::randint:
            fill_randint_i64(out.data<int64_t>(), n, p.seed, p.offset, p.low, p.high);
            break;
    }
}

}  // namespace

void register_random_kernels(KernelRegistry& r) {
    register_kernel<PhiloxFillKernel>(r, "philox_fill", DeviceType::CPU, philox_fill_kernel);
}

}  // namespace cpu
}  // namespace cxr::tensor
