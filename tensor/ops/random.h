// The random-draw kernel seam: "philox_fill" fills a contiguous tensor with values of the Philox stream
// (seed, offset) following the STREAM SPEC of tensor/philox.h exactly, on any backend. The user-facing random
// ops (rand, randn, randint, bernoulli in tensor/ops/creation.h; dropout) reserve the words of their draw from a
// Generator and call this kernel on the output's device, so a (seed, offset) gives the same values on the CPU
// (tensor/cpu/random.cpp: the host fills of tensor/generator.h) and on CUDA (tensor/cuda/random.cu).
//
// Distributions and their output dtypes (k = 0..n-1 the value index, words as in philox.h):
//   uniform  f32 | f64   value k in [a, b)       (a = lo, b = hi)
//   normal   f32 | f64   a + b * z_k             (a = mean, b = std >= 0), Box-Muller pairs
//   randint  i64         low + (x mod (high - low)), one or two words per value (range > 2^32)
// Uniforms and randint are bit-identical across backends; normals agree to a few ulp (philox.h explains why).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::tensor {

enum class PhiloxDist { uniform, normal, randint };

struct PhiloxFillParams {
    PhiloxDist dist = PhiloxDist::uniform;
    uint64_t seed = 0;
    uint64_t offset = 0;  // absolute word index of the first word (any value; Generators give multiples of 4)
    double a = 0.0;       // uniform: lo; normal: mean
    double b = 1.0;       // uniform: hi; normal: std
    int64_t low = 0;      // randint: [low, high)
    int64_t high = 1;
};

// Checks what every backend's kernel requires (contiguous output, the dtype the distribution allows, lo <= hi,
// std >= 0, low < high) and throws cxr::Error naming the problem otherwise.
void check_philox_fill_args(const Tensor& out, const PhiloxFillParams& p);

// ---- kernel signature (tensor/backend.h registry) ----
using PhiloxFillKernel = void(const Tensor& out, const PhiloxFillParams& p);

}  // namespace cxr::tensor
