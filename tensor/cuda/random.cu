// CUDA kernel of the "philox_fill" seam (tensor/ops/random.h): the STREAM SPEC of tensor/philox.h on the GPU.
//
// Algorithm: one thread per Philox block of 4 stream words (grid-stride over the blocks the draw touches).
// A draw is a sequence of units: one value per unit for uniforms and randint, one Box-Muller pair (two values)
// per unit for normals; unit j uses the u consecutive words starting at absolute index offset + u*j
// (u = 1 uniform f32 / randint one-word, 2 uniform f64 / normal f32 / randint two-word, 4 normal f64).
// The thread of block c computes the block's 4 words once and writes every unit whose FIRST word lies in the
// block; a unit that runs past the block's end (only when offset is not a multiple of u) also uses block c + 1,
// computed on demand. The value arithmetic is the host+device code of philox.h, so uniforms and randint are
// bit-identical to the CPU fills (tensor/generator.cpp) and normals agree to a few ulp (CUDA log/sin/cos).
// Must not be compiled with --use_fast_math. Launched on the current stream of the output's device.
#include <cuda_runtime.h>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/random.h"
#include "tensor/philox.h"

namespace cxr::tensor::cuda {

namespace {

enum class Unit : int { uniform_f32, uniform_f64, normal_f32, normal_f64, randint_1, randint_2 };

struct DrawArgs {
    Unit unit;
    int words_per_unit;   // u
    int values_per_unit;  // 1 or 2
    uint64_t seed;
    uint64_t offset;
    uint64_t first_block;  // offset / 4
    int64_t n;             // values
    int64_t units;         // ceil(n / values_per_unit)
    double a, b;           // uniform lo/hi or normal mean/std
    int64_t low;
    uint64_t range;
    void* out;
};

__global__ void philox_fill_blocks(DrawArgs d, int64_t num_blocks) {
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < num_blocks;
         t += (int64_t)gridDim.x * blockDim.x) {
        const uint64_t c = d.first_block + (uint64_t)t;
        uint32_t blk0[4], blk1[4];
        philox_block(d.seed, c, blk0);
        bool have1 = false;
        // Units whose first word s_j = offset + u*j lies in [4c, 4c + 4).
        const uint64_t u = (uint64_t)d.words_per_unit;
        const uint64_t begin = 4 * c, end = 4 * c + 4;
        int64_t j = begin <= d.offset ? 0 : (int64_t)((begin - d.offset + u - 1) / u);
        const int64_t j_end_raw = (int64_t)((end - d.offset + u - 1) / u);
        const int64_t j_end = j_end_raw < d.units ? j_end_raw : d.units;
        for (; j < j_end; ++j) {
            const uint64_t s = d.offset + u * (uint64_t)j;
            uint32_t w[4];
            for (uint64_t i = 0; i < u; ++i) {
                const uint64_t idx = s + i;
                if ((idx >> 2) == c) {
                    w[i] = blk0[idx & 3u];
                } else {
                    if (!have1) {
                        philox_block(d.seed, c + 1, blk1);
                        have1 = true;
                    }
                    w[i] = blk1[idx & 3u];
                }
            }
            const int64_t k = j * d.values_per_unit;  // first value of the unit
            switch (d.unit) {
                case Unit::uniform_f32:
                    static_cast<float*>(d.out)[k] =
                        uniform_f32_in(uniform_f32_from_u32(w[0]), (float)d.a, (float)d.b);
                    break;
                case Unit::uniform_f64:
                    static_cast<double*>(d.out)[k] = uniform_f64_in(uniform_f64_from_u32x2(w[0], w[1]), d.a, d.b);
                    break;
                case Unit::normal_f32: {
                    float* o = static_cast<float*>(d.out);
                    o[k] = fmaf(normal_f32_from_u32x2(w[0], w[1], 0), (float)d.b, (float)d.a);
                    if (k + 1 < d.n) o[k + 1] = fmaf(normal_f32_from_u32x2(w[0], w[1], 1), (float)d.b, (float)d.a);
                    break;
                }
                case Unit::normal_f64: {
                    double* o = static_cast<double*>(d.out);
                    o[k] = fma(normal_f64_from_u32x4(w[0], w[1], w[2], w[3], 0), d.b, d.a);
                    if (k + 1 < d.n) o[k + 1] = fma(normal_f64_from_u32x4(w[0], w[1], w[2], w[3], 1), d.b, d.a);
                    break;
                }
                case Unit::randint_1:
                    static_cast<int64_t*>(d.out)[k] = randint_from_u64((uint64_t)w[0], d.low, d.range);
                    break;
                case Unit::randint_2:
                    static_cast<int64_t*>(d.out)[k] =
                        randint_from_u64((uint64_t)w[0] | ((uint64_t)w[1] << 32), d.low, d.range);
                    break;
            }
        }
    }
}

void philox_fill_kernel(const Tensor& out, const PhiloxFillParams& p) {
    check_philox_fill_args(out, p);
    const int64_t n = out.numel();
    if (n == 0) return;
    DrawArgs d{};
    const bool f64 = out.dtype() == DType::f64;
    switch (p.dist) {
        case PhiloxDist::uniform:
            d.unit = f64 ? Unit::uniform_f64 : Unit::uniform_f32;
            d.words_per_unit = f64 ? 2 : 1;
            d.values_per_unit = 1;
            break;
        case PhiloxDist::normal:
            d.unit = f64 ? Unit::normal_f64 : Unit::normal_f32;
            d.words_per_unit = f64 ? 4 : 2;
            d.values_per_unit = 2;
            break;
        case PhiloxDist::randint: {
            const bool two = randint_uses_two_words(p.low, p.high);
            d.unit = two ? Unit::randint_2 : Unit::randint_1;
            d.words_per_unit = two ? 2 : 1;
            d.values_per_unit = 1;
            break;
        }
    }
    d.seed = p.seed;
    d.offset = p.offset;
    d.first_block = p.offset / 4;
    d.n = n;
    d.units = (n + d.values_per_unit - 1) / d.values_per_unit;
    d.a = p.a;
    d.b = p.b;
    d.low = p.low;
    d.range = (uint64_t)p.high - (uint64_t)p.low;
    d.out = out.raw_data();
    const uint64_t last_word = p.offset + (uint64_t)d.units * (uint64_t)d.words_per_unit - 1;
    CXR_CHECK(last_word >= p.offset, "philox_fill: draw of ", n, " values at offset ", p.offset,
              " runs past the end of the stream (2^64 words)");
    // Blocks holding the first word of some unit; a unit's tail may reach one block further (read, not owned).
    const uint64_t last_first_word = p.offset + (uint64_t)(d.units - 1) * (uint64_t)d.words_per_unit;
    const int64_t num_blocks = (int64_t)(last_first_word / 4 - d.first_block + 1);

    const int device = out.device().index;
    const DeviceGuard device_guard(device);  // restored on return
    const int threads = 256;
    int64_t grid = (num_blocks + threads - 1) / threads;
    if (grid > 65535 * 8) grid = 65535 * 8;
    philox_fill_blocks<<<(unsigned)grid, threads, 0, current_stream(device)>>>(d, num_blocks);
    after_launch("philox_fill");
}

}  // namespace

void register_random_kernels(KernelRegistry& r) {
    register_kernel<PhiloxFillKernel>(r, "philox_fill", DeviceType::CUDA, philox_fill_kernel);
}

}  // namespace cxr::tensor::cuda
