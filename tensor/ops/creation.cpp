// Tensor creation ops. Constants use the fill kernel of the tensor's device; random tensors are drawn in place on
// their device by the "philox_fill" kernel (tensor/ops/random.h) from the Philox stream (tensor/philox.h,
// tensor/generator.h), so a (seed, offset) gives the same values on every device. f16/bf16 draws are made in f32
// and rounded.
#include "tensor/ops/creation.h"

#include <cmath>
#include <cstring>

#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/philox.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/random.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

Tensor empty(const Shape& sizes, Options o) { return Tensor::empty(sizes, o.dtype, o.device); }

Tensor full(const Shape& sizes, double value, Options o) {
    Tensor t = Tensor::empty(sizes, o.dtype, o.device);
    t.fill_(value);
    return t;
}
Tensor zeros(const Shape& sizes, Options o) { return full(sizes, 0.0, o); }
Tensor ones(const Shape& sizes, Options o) { return full(sizes, 1.0, o); }
Tensor zeros_like(const Tensor& x) { return zeros(x.sizes(), Options(x.dtype(), x.device())); }
Tensor ones_like(const Tensor& x) { return ones(x.sizes(), Options(x.dtype(), x.device())); }
Tensor full_like(const Tensor& x, double value) { return full(x.sizes(), value, Options(x.dtype(), x.device())); }
Tensor scalar_tensor(double value, Options o) { return full({}, value, o); }

namespace {
// Builds a tensor on the CPU from values computed in double, then casts and moves it.
template <class F>
Tensor from_function(int64_t n, Options o, F value_at) {
    Tensor host = Tensor::empty({n}, DType::f64, Device::cpu());
    double* p = host.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = value_at(i);
    return cast(host, o.dtype).to(o.device);
}
}  // namespace

Tensor arange(double start, double end, double step, Options o) {
    CXR_CHECK(step != 0.0, "arange: step must be nonzero");
    CXR_CHECK((end - start) / step >= 0, "arange: step ", step, " does not lead from ", start, " to ", end);
    int64_t n = (int64_t)std::ceil((end - start) / step);
    // fused multiply-add, as PyTorch's CPU kernel computes it (bit-identical float64 values)
    return from_function(n, o, [&](int64_t i) { return std::fma((double)i, step, start); });
}

Tensor arange(int64_t end, Options o) { return arange(0.0, (double)end, 1.0, o); }

Tensor linspace(double start, double end, int64_t steps, Options o) {
    CXR_CHECK(steps >= 0, "linspace: steps must be non-negative");
    if (steps == 1) return full({1}, start, o);
    double step = (end - start) / (double)(steps - 1);
    int64_t half = steps / 2;
    return from_function(steps, o, [&](int64_t i) {
        // fused multiply-adds, as PyTorch's CPU kernel computes them (bit-identical float64 values)
        return i < half ? std::fma(step, (double)i, start) : std::fma(-step, (double)(steps - 1 - i), end);
    });
}

Tensor eye(int64_t n, int64_t m, Options o) {
    if (m < 0) m = n;
    Tensor host = zeros({n, m}, Options(DType::f64));
    double* p = host.data<double>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = 1.0;
    return cast(host, o.dtype).to(o.device);
}

Tensor from_blob_copy(const void* data, const Shape& sizes, DType dtype, Device device) {
    Tensor host = Tensor::empty(sizes, dtype, Device::cpu());
    if (host.numel()) std::memcpy(host.raw_data(), data, host.numel() * dtype_size(dtype));
    return host.to(device);
}

namespace {
template <class T>
Tensor from_vec(const std::vector<T>& data, const Shape& sizes, Options o) {
    CXR_CHECK((int64_t)data.size() == shape_numel(sizes), "from_vector: ", data.size(), " values for shape ",
              shape_str(sizes));
    return cast(from_blob_copy(data.data(), sizes, dtype_of<T>()), o.dtype).to(o.device);
}
}  // namespace

Tensor from_vector(const std::vector<float>& d, const Shape& s, Options o) { return from_vec(d, s, o); }
Tensor from_vector(const std::vector<double>& d, const Shape& s, Options o) { return from_vec(d, s, o); }
Tensor from_vector(const std::vector<int64_t>& d, const Shape& s, Options o) { return from_vec(d, s, o); }
Tensor from_vector(const std::vector<int32_t>& d, const Shape& s, Options o) { return from_vec(d, s, o); }

// ---- random ----
namespace {
// Draws n values of `p` (offset filled in from the generator) into a new contiguous tensor of `draw_dtype` on
// `device` with that device's philox_fill kernel.
Tensor philox_draw(const Shape& sizes, DType draw_dtype, Device device, PhiloxFillParams p, uint64_t offset) {
    Tensor out = Tensor::empty(sizes, draw_dtype, device);
    p.offset = offset;
    get_kernel<PhiloxFillKernel>("philox_fill", device)(out, p);
    return out;
}
Tensor cast_if_needed(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : cast(t, dtype); }
}  // namespace

Tensor rand(const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(is_floating(o.dtype), "rand needs a floating dtype");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    PhiloxFillParams p;
    p.dist = PhiloxDist::uniform;
    p.seed = g.seed();
    p.a = 0.0;
    p.b = 1.0;
    const bool f64 = o.dtype == DType::f64;
    const uint64_t offset = g.reserve(f64 ? uniform_f64_words(n) : uniform_f32_words(n));
    return cast_if_needed(philox_draw(sizes, f64 ? DType::f64 : DType::f32, o.device, p, offset), o.dtype);
}

Tensor randn(const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(is_floating(o.dtype), "randn needs a floating dtype");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    PhiloxFillParams p;
    p.dist = PhiloxDist::normal;
    p.seed = g.seed();
    p.a = 0.0;
    p.b = 1.0;
    const bool f64 = o.dtype == DType::f64;
    const uint64_t offset = g.reserve(f64 ? normal_f64_words(n) : normal_f32_words(n));
    return cast_if_needed(philox_draw(sizes, f64 ? DType::f64 : DType::f32, o.device, p, offset), o.dtype);
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    PhiloxFillParams p;
    p.dist = PhiloxDist::randint;
    p.seed = g.seed();
    p.low = low;
    p.high = high;
    const uint64_t offset = g.reserve(randint_words(n, low, high));
    return cast_if_needed(philox_draw(sizes, DType::i64, o.device, p, offset), o.dtype);
}

Tensor bernoulli(const Shape& sizes, double p, Options o, Generator* gen) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: probability ", p, " outside [0, 1]");
    // p is filled on the output's device so that the draw and the comparison run there (dropout masks).
    return cast_if_needed(bernoulli(full(sizes, p, Options(DType::f32, o.device)), gen), o.dtype);
}

Tensor bernoulli(const Tensor& p, Generator* gen) {
    // 1 where U[0,1) < p, from the same uniform stream as rand (f32 words).
    Tensor u = rand(p.sizes(), Options(DType::f32, p.device()), gen);
    return cast(lt(u, cast(p.detach(), DType::f32)), is_floating(p.dtype()) ? p.dtype() : DType::f32);
}

}  // namespace cxr::tensor
