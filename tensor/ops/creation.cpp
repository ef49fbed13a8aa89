// Tensor creation ops. Constants use the fill kernel of the tensor's device; random tensors are drawn on the CPU
// from the Philox stream (tensor/philox.h, tensor/generator.h) and moved to the device, so a (seed, offset)
// gives the same values everywhere. (The CUDA backend may draw them in place later: same stream, same values.)
#include "tensor/ops/creation.h"

#include <cmath>
#include <cstring>

#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/philox.h"
#include "tensor/ops/elementwise.h"
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
Tensor rand(const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(is_floating(o.dtype), "rand needs a floating dtype");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    Tensor host;
    if (o.dtype == DType::f64) {
        host = Tensor::empty(sizes, DType::f64);
        fill_uniform_f64(host.data<double>(), n, g.seed(), g.reserve(uniform_f64_words(n)), 0.0, 1.0);
    } else {
        host = Tensor::empty(sizes, DType::f32);
        fill_uniform_f32(host.data<float>(), n, g.seed(), g.reserve(uniform_f32_words(n)), 0.0f, 1.0f);
    }
    return cast(host, o.dtype).to(o.device);
}

Tensor randn(const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(is_floating(o.dtype), "randn needs a floating dtype");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    Tensor host;
    if (o.dtype == DType::f64) {
        host = Tensor::empty(sizes, DType::f64);
        fill_normal_f64(host.data<double>(), n, g.seed(), g.reserve(normal_f64_words(n)), 0.0, 1.0);
    } else {
        host = Tensor::empty(sizes, DType::f32);
        fill_normal_f32(host.data<float>(), n, g.seed(), g.reserve(normal_f32_words(n)), 0.0f, 1.0f);
    }
    return cast(host, o.dtype).to(o.device);
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, Options o, Generator* gen) {
    CXR_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
    Generator& g = gen ? *gen : default_generator();
    const int64_t n = shape_numel(sizes);
    Tensor host = Tensor::empty(sizes, DType::i64);
    fill_randint_i64(host.data<int64_t>(), n, g.seed(), g.reserve(randint_words(n, low, high)), low, high);
    return cast(host, o.dtype).to(o.device);
}

Tensor bernoulli(const Shape& sizes, double p, Options o, Generator* gen) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: probability ", p, " outside [0, 1]");
    return bernoulli(full(sizes, p, Options(DType::f32)), gen).to(o.dtype).to(o.device);
}

Tensor bernoulli(const Tensor& p, Generator* gen) {
    // 1 where U[0,1) < p, from the same uniform stream as rand (f32 words).
    Tensor u = rand(p.sizes(), Options(DType::f32, p.device()), gen);
    return cast(lt(u, cast(p.detach(), DType::f32)), is_floating(p.dtype()) ? p.dtype() : DType::f32);
}

}  // namespace cxr::tensor
