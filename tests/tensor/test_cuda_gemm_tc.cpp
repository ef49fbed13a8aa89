// [gpu] The tensor-core GEMM for f16/bf16 (tc_gemm_kernel in tensor/cuda/matmul.cu, the CXR_CUBLAS=OFF path on
// devices of compute capability >= 8.0) against an exact CPU reference: odd shapes that are not multiples of the
// 128x128x32 block tile, shapes that take the vectorised cp.async path with K/M/N tails (zero-fill), transposed
// (column-major) operands, an unaligned base pointer (the scalar strided loader), batched matmul with broadcast,
// bitwise determinism across runs, and the SIMT fallback (CXR_GEMM_TC=OFF) on the same cases.
//
// Inputs are multiples of 1/8 in [-1, 1] (exactly representable in f16 and bf16), so every product a·b is a
// multiple of 1/64 and every partial sum (|sum| <= K <= 1024) is exact in fp32 (at most 2^16 · 2^6 < 2^24 units
// of 2^-6). The GPU's fp32 accumulation is therefore exact in any order; the only rounding is the final one to
// f16/bf16 (round to nearest even, relative error <= 2^-11 for f16 and 2^-9 for bf16). The reference is the
// f64 CPU matmul of the same values. Tolerance: atol = K · max|a| · max|b| · 2^-24 (an fp32 accumulation bound,
// kept although the sums here are exact, so that a wrong accumulation order is the only thing it excuses) and
// rtol = 2 · unit roundoff of the output dtype (2^-10 for f16, 2^-8 for bf16).
// The kernels read CXR_CUBLAS / CXR_GEMM_TC at each call; ScopedEnv switches them for one scope.
// Skipped visibly without a CUDA device.
#include "tests/support/testing.h"

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;

using cxr::testing::ScopedEnv;

namespace {

const Device kGpu = Device::cuda(0);


// A CPU tensor of `dt` whose values are k/8, k uniform in [-8, 8] (exact in f16 and bf16).
Tensor grid_values(const Shape& shape, uint64_t seed, DType dt) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> dist(-8, 8);
    std::vector<float> v((size_t)n);
    for (auto& x : v) x = (float)dist(rng) / 8.0f;
    return from_vector(v, shape).to(dt);
}

// 2 · unit roundoff of the output dtype (see the header comment).
double rtol_for(DType dt) { return dt == DType::f16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -8); }
// fp32 accumulation bound for K products of magnitude <= 1.
double atol_for(int64_t K) { return (double)std::max<int64_t>(K, 1) * std::ldexp(1.0, -24); }

const char* path_name(const char* tc) { return tc ? "SIMT tiled GEMM (CXR_GEMM_TC=OFF)" : "tensor-core GEMM"; }

struct Case {
    Shape a, b;  // logical operand shapes (before any transpose view)
    bool transpose_a, transpose_b;
};

// Runs one case on the GPU (current path) and on the CPU in f64; the operands are made as in the logical shapes,
// a transposed operand as the transpose view of a contiguous tensor.
void check_case(const Case& c, DType dt, uint64_t seed, const char* tc) {
    Shape sa = c.a, sb = c.b;
    if (c.transpose_a) std::swap(sa[sa.size() - 1], sa[sa.size() - 2]);
    if (c.transpose_b) std::swap(sb[sb.size() - 1], sb[sb.size() - 2]);
    Tensor a = grid_values(sa, seed, dt), b = grid_values(sb, seed + 1, dt);
    auto view = [](const Tensor& t, bool tr) { return tr ? transpose(t, -1, -2) : t; };
    Tensor ref = matmul(view(a.to(DType::f64), c.transpose_a), view(b.to(DType::f64), c.transpose_b));
    Tensor y = matmul(view(a.to(kGpu), c.transpose_a), view(b.to(kGpu), c.transpose_b));
    const int64_t K = c.a.back();
    INFO("matmul " << shape_str(c.a) << (c.transpose_a ? " (column-major)" : "") << " @ " << shape_str(c.b)
                   << (c.transpose_b ? " (column-major)" : "") << " dtype " << dtype_name(dt) << " path "
                   << path_name(tc));
    REQUIRE(y.is_cuda());
    REQUIRE(y.dtype() == dt);
    CXR_EXPECT_CLOSE(y.to(Device::cpu()).to(DType::f64), ref, atol_for(K), rtol_for(dt));
}

}  // namespace

TEST_CASE("cuda tensor-core GEMM (CXR_CUBLAS=OFF) matches the CPU in f16 and bf16", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    ScopedEnv off("CXR_CUBLAS", "OFF");
    // Shapes are written [M, K] @ [K, N].
    const Case cases[] = {
        {{1, 1}, {1, 1}, false, false},            // a single element: everything is tail
        {{17, 65}, {65, 33}, false, false},        // odd sizes: scalar loader (unaligned leading dims)
        {{130, 257}, {257, 70}, false, false},     // M, K, N one past the tile edges
        {{256, 256}, {256, 256}, false, false},    // exact tiles, vectorised cp.async path
        {{130, 40}, {40, 136}, false, false},      // vectorised path with M, K and N tails (zero-fill)
        {{65, 264}, {264, 72}, false, false},      // K = 8 · 33: the last slab is 8 wide
        {{136, 72}, {72, 40}, true, false},        // column-major A, vectorised (M % 8 == 0)
        {{136, 72}, {72, 40}, false, true},        // column-major B (linear's Wᵀ), vectorised
        {{136, 72}, {72, 40}, true, true},         // both column-major
        {{17, 33}, {33, 65}, true, true},          // both column-major, scalar loader
        {{3, 1, 70, 40}, {4, 40, 136}, false, false},  // batched, a broadcast along dim 1, b along dim 0
        {{4, 70, 40}, {1, 40, 136}, false, false},     // b broadcast over the batch: batch stride 0
        {{1, 70, 40}, {3, 40, 136}, true, true},       // a broadcast (batch stride 0), both column-major
        {{2, 3, 33, 48}, {48, 24}, false, true},   // a 2-d column-major b: the batch merges into M (one GEMM)
        {{512, 1024}, {1024, 384}, false, false},  // several blocks in both directions, K = 1024
    };
    for (const char* tc : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_GEMM_TC", tc);
        for (DType dt : {DType::f16, DType::bf16}) {
            uint64_t seed = 100;
            for (const Case& c : cases) {
                check_case(c, dt, seed, tc);
                seed += 2;
            }
        }
    }
}

TEST_CASE("cuda tensor-core GEMM: unaligned base pointer and strided rows", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    ScopedEnv off("CXR_CUBLAS", "OFF");
    for (DType dt : {DType::f16, DType::bf16}) {
        // a = big[:, 1:65]: row stride 72 (a multiple of 8) but the data starts 2 bytes past an aligned address,
        // so the 16-byte path must not be taken; b = big_b[:, 3:131] likewise.
        Tensor big_a = grid_values({150, 72}, 7, dt), big_b = grid_values({64, 136}, 8, dt);
        Tensor a_c = narrow(big_a, 1, 1, 64), b_c = narrow(big_b, 1, 3, 128);
        Tensor ref = matmul(a_c.to(DType::f64), b_c.to(DType::f64));
        Tensor y = matmul(narrow(big_a.to(kGpu), 1, 1, 64), narrow(big_b.to(kGpu), 1, 3, 128));
        INFO("matmul of narrowed views [150, 64] @ [64, 128] dtype " << dtype_name(dt));
        CXR_EXPECT_CLOSE(y.to(Device::cpu()).to(DType::f64), ref, atol_for(64), rtol_for(dt));
    }
}

TEST_CASE("cuda tensor-core GEMM is deterministic run to run", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    ScopedEnv off("CXR_CUBLAS", "OFF");
    for (DType dt : {DType::f16, DType::bf16}) {
        // Uniform (not grid) values: sums are inexact, so this checks a fixed accumulation order, bit for bit.
        Tensor a = cxr::testing::random_input({300, 1000}, 21, -1, 1, dt).to(kGpu);
        Tensor b = cxr::testing::random_input({1000, 200}, 22, -1, 1, dt).to(kGpu);
        Tensor y1 = matmul(a, b).to(Device::cpu()).to(DType::f64);
        Tensor y2 = matmul(a, b).to(Device::cpu()).to(DType::f64);
        INFO("two runs of [300, 1000] @ [1000, 200] dtype " << dtype_name(dt));
        CXR_EXPECT_CLOSE(y1, y2, 0.0, 0.0);
        // And against the f64 CPU product: inputs exact in fp32, fp32 accumulation of K = 1000 terms of
        // magnitude <= 1 (error <= K · 2^-24 · Σ|a||b| <= 1000² · 2^-24 < 0.06 in the worst case; the bound used
        // is the usual sqrt(K) growth for random signs, 4 · sqrt(K) · K · 2^-24), plus the output rounding.
        Tensor ref = matmul(a.to(Device::cpu()).to(DType::f64), b.to(Device::cpu()).to(DType::f64));
        CXR_EXPECT_CLOSE(y1, ref, 4.0 * std::sqrt(1000.0) * 1000.0 * std::ldexp(1.0, -24), rtol_for(dt));
    }
}
