// Tensor creation: constants, ranges, identity, host data, and random tensors drawn from the Philox stream
// (tensor/philox.h): the same (seed, offset) gives the same values on every device.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::tensor {

class Generator;  // tensor/generator.h

struct Options {
    DType dtype = DType::f32;
    Device device = Device::cpu();
    Options() = default;
    Options(DType d) : dtype(d) {}  // NOLINT: allows zeros({2}, DType::f64)
    Options(DType d, Device dev) : dtype(d), device(dev) {}
};

Tensor empty(const Shape& sizes, Options o = {});
Tensor zeros(const Shape& sizes, Options o = {});
Tensor ones(const Shape& sizes, Options o = {});
Tensor full(const Shape& sizes, double value, Options o = {});
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor full_like(const Tensor& x, double value);
Tensor scalar_tensor(double value, Options o = {});
// [start, end) by step: numel = ceil((end - start) / step).
Tensor arange(double start, double end, double step = 1.0, Options o = {});
Tensor arange(int64_t end, Options o = DType::i64);
// steps points from start to end inclusive: start + i (end - start)/(steps - 1), computed as PyTorch does
// (from the start for the first half and from the end for the second half).
Tensor linspace(double start, double end, int64_t steps, Options o = {});
Tensor eye(int64_t n, int64_t m = -1, Options o = {});

// From host data (row-major). The vector's element type must match dtype's storage type or be converted.
Tensor from_vector(const std::vector<float>& data, const Shape& sizes, Options o = {});
Tensor from_vector(const std::vector<double>& data, const Shape& sizes, Options o = DType::f64);
Tensor from_vector(const std::vector<int64_t>& data, const Shape& sizes, Options o = DType::i64);
Tensor from_vector(const std::vector<int32_t>& data, const Shape& sizes, Options o = DType::i32);
Tensor from_blob_copy(const void* data, const Shape& sizes, DType dtype, Device device = Device::cpu());

// Random tensors. Each call reserves its words of the generator's stream (default generator if null).
Tensor rand(const Shape& sizes, Options o = {}, Generator* gen = nullptr);   // U[0, 1)
Tensor randn(const Shape& sizes, Options o = {}, Generator* gen = nullptr);  // N(0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& sizes, Options o = DType::i64, Generator* gen = nullptr);
Tensor bernoulli(const Tensor& p, Generator* gen = nullptr);  // 1 with probability p, per element; dtype of p
Tensor bernoulli(const Shape& sizes, double p, Options o = {}, Generator* gen = nullptr);

}  // namespace cxr::tensor
