// [gpu] tests of the fused CUDA attention kernels (tensor/cuda/attention.cu, reached through
// scaled_dot_product_attention in tensor/ops/attention.cpp). The oracle is the composed CPU reference
// (matmul, softmax, where; itself checked against PyTorch fixtures and f64 gradchecks in test_attention.cpp)
// run in f64 on the same inputs: the GPU's f16/bf16 inputs are first rounded to their dtype and the rounded values
// are what the CPU sees, so the comparison measures only the kernels' own arithmetic and output rounding.
// Covered: forward out and backward dq, dk, dv for head dims 32..160 (exact kernel dims and padded ones: 33 -> 40,
// 100 -> 128), self- and cross-attention (L = 77 with S = 257, L = 1, L > S), odd lengths (1, 17, 100, 130), causal
// on and off, batch dims [2, 3], broadcast k/v batches, non-contiguous (transposed) q/k/v, an explicit scale,
// f32/f16/bf16, bitwise determinism, and the composed fallback on CUDA (masks, f64, small head dims, E != Ev).
// f16/bf16 run the tensor-core forward by default on sm_80+; one test runs every f16/bf16 case
// with CXR_ATTN_TC on and off (ScopedEnv), so both forwards — and the shared backward after each — meet the same
// reference, and one feeds inputs that are not 16-byte aligned (the tensor-core forward's plain-load path).
// Tolerances are |gpu - ref| <= atol + rtol·|ref| with atol = c·max(max|ref|, 1) per tensor and rtol = c (the
// reason beside each c in tol()).
// Without a CUDA device every [gpu] test here is skipped visibly (CXR_SKIP_WITHOUT_GPU).
#include "tests/support/testing.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <utility>

#include "tensor/backend.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::random_input;

namespace {

const Device kGpu = Device::cuda(0);

Tensor host(const Tensor& t) { return t.to(Device::cpu()); }

double max_abs(const Tensor& t) {
    double m = 0;
    for (double x : host(t).to_vector<double>()) m = std::max(m, std::fabs(x));
    return m;
}

// Tolerance factor c (atol = c·max|ref|, rtol = c) of a dtype, for outputs and gradients alike.
double tol(DType dt) {
    switch (dt) {
        // f32: the kernel sums ≤ 257 products and exponentials in f32 (round-off ~ √n·2^-24 of the largest term)
        // and exp2f is within 2 ulp; 2e-5 leaves a ~10× margin over that and is far below any indexing error.
        case DType::f32: return 2e-5;
        // f16: out, dq, dk, dv are rounded to f16 (half an ulp = 2^-11 ≈ 4.9e-4 relative), and the backward's
        // Δ_i = Σ_d dout·out reads the f16-rounded out; 4e-3 is ~8 half-ulps.
        case DType::f16: return 4e-3;
        // bf16: the same with half an ulp = 2^-8 ≈ 3.9e-3 relative; 3e-2 is ~8 half-ulps.
        // The tensor-core forward also rounds the probabilities p_ij to f16/bf16 before P·V (one more half-ulp per
        // term, averaging out over the keys); a CPU emulation of that kernel used ≤ 6% of these limits.
        default: return 3e-2;
    }
}

struct Case {
    Shape batch;  // batch dims of q (k and v use kv_batch when set)
    int64_t L = 0, S = 0, E = 0;
    bool causal = false;
    bool transposed = false;      // q, k, v are [b0, rows, b1, E] tensors seen through transpose(1, 2)
    std::optional<Shape> kv_batch;  // broadcast batch of k and v
    std::optional<double> scale;
};

Case make_case(Shape batch, int64_t L, int64_t S, int64_t E, bool causal) {
    Case c;
    c.batch = std::move(batch);
    c.L = L;
    c.S = S;
    c.E = E;
    c.causal = causal;
    return c;
}

std::string describe(const Case& c, DType dt) {
    std::ostringstream os;
    os << "sdpa " << dtype_name(dt) << " batch " << shape_str(c.batch) << " L " << c.L << " S " << c.S << " E "
       << c.E << (c.causal ? " causal" : "") << (c.transposed ? " transposed" : "");
    if (c.kv_batch) os << " kv_batch " << shape_str(*c.kv_batch);
    if (c.scale) os << " scale " << *c.scale;
    return os.str();
}

// The storage tensor of one input (its leaf) and the view the op is called with.
Shape storage_shape(const Shape& batch, int64_t rows, int64_t E, bool transposed) {
    if (transposed) return {batch[0], rows, batch[1], E};
    Shape s = batch;
    s.push_back(rows);
    s.push_back(E);
    return s;
}
Tensor as_input(const Tensor& leaf, bool transposed) { return transposed ? leaf.transpose(1, 2) : leaf; }

// A random input already rounded to dt, returned in f64 on the CPU.
Tensor rounded_input(const Shape& shape, uint64_t seed, double lo, double hi, DType dt) {
    return cast(cast(random_input(shape, seed, lo, hi), dt), DType::f64);
}

struct Result {
    Tensor out, dq, dk, dv;
};

// Forward and backward with upstream gradient dout; inputs are the leaves q, k, v (given device and dtype).
Result run(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout) {
    Tensor out = scaled_dot_product_attention(as_input(q, c.transposed), as_input(k, c.transposed),
                                              as_input(v, c.transposed), Tensor(), c.causal, c.scale);
    out.backward(dout);
    return {out.detach(), q.grad(), k.grad(), v.grad()};
}

void expect_tensor_close(const std::string& what, const Tensor& gpu_value, const Tensor& ref, DType dt) {
    INFO(what);
    REQUIRE(gpu_value.defined());
    CHECK(gpu_value.device().is_cuda());
    CHECK(gpu_value.dtype() == dt);
    const double c = tol(dt);
    // atol = c·max(max|ref|, 1): inputs and upstream gradients are O(1), and where an exact gradient vanishes
    // (one visible key: the softmax is identically 1, so dq = dk = 0) the kernel's round-off (~1e-7) must not
    // meet a zero tolerance.
    CXR_EXPECT_CLOSE(host(gpu_value), ref, c * std::max(max_abs(ref), 1.0), c);
}

// Runs one case on the GPU (fused path, checked to be taken) and on the CPU in f64, compares out, dq, dk, dv.
void check_case(const Case& c, DType dt, uint64_t seed) {
    const std::string what = describe(c, dt);
    INFO(what);
    const Shape kvb = c.kv_batch ? *c.kv_batch : c.batch;
    // q, k in [-2, 2]: scores of standard deviation ~4/3 after the 1/√E scale, so the softmax is neither flat nor
    // one-hot; v and dout in [-1, 1].
    const Tensor q64 = rounded_input(storage_shape(c.batch, c.L, c.E, c.transposed), seed, -2, 2, dt);
    const Tensor k64 = rounded_input(storage_shape(kvb, c.S, c.E, c.transposed), seed + 1, -2, 2, dt);
    const Tensor v64 = rounded_input(storage_shape(kvb, c.S, c.E, c.transposed), seed + 2, -1, 1, dt);
    Shape out_shape = c.batch;
    out_shape.push_back(c.L);
    out_shape.push_back(c.E);
    const Tensor dout64 = rounded_input(out_shape, seed + 3, -1, 1, dt);

    Tensor qc = q64.clone().set_requires_grad(), kc = k64.clone().set_requires_grad();
    Tensor vc = v64.clone().set_requires_grad();
    const Result ref = run(c, qc, kc, vc, dout64);

    Tensor qg = cast(q64, dt).to(kGpu).set_requires_grad();
    Tensor kg = cast(k64, dt).to(kGpu).set_requires_grad();
    Tensor vg = cast(v64, dt).to(kGpu).set_requires_grad();
    REQUIRE(attention_uses_fused_kernel(as_input(qg, c.transposed), as_input(kg, c.transposed),
                                        as_input(vg, c.transposed), Tensor(), c.causal));
    const Result got = run(c, qg, kg, vg, cast(dout64, dt).to(kGpu));

    expect_tensor_close(what + ": out", got.out, ref.out, dt);
    expect_tensor_close(what + ": dq", got.dq, ref.dq, dt);
    expect_tensor_close(what + ": dk", got.dk, ref.dk, dt);
    expect_tensor_close(what + ": dv", got.dv, ref.dv, dt);
}

}  // namespace

TEST_CASE("cuda attention: the head-dim limit 32..160 is CUDA's only; CXR_ATTN_FUSED=OFF turns the fused path off",
          "[cpu][attention]") {
    // CPU f32 tensors take the fused CPU kernels for any head dim (tensor/cpu/attention.cpp); the switch forces the
    // composed reference, on every device.
    for (int64_t E : {8, 64, 200}) {
        Tensor q = zeros({2, 3, E}), k = zeros({2, 5, E}), v = zeros({2, 5, E});
        CHECK(attention_uses_fused_kernel(q, k, v));
        CHECK(attention_uses_fused_kernel(q, k, v, Tensor(), true));
        cxr::testing::ScopedEnv off("CXR_ATTN_FUSED", "OFF");
        CHECK_FALSE(attention_uses_fused_kernel(q, k, v));
    }
}

TEST_CASE("cuda attention: f32 forward and backward match the CPU reference for every head dim and length",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 100;
    // 32, 40, 64, 80, 128, 160 are compiled head dims; 33 pads to 40 and 100 to 128.
    for (int64_t E : {32, 33, 40, 64, 80, 100, 128, 160}) {
        for (bool causal : {false, true}) {
            // cross-attention L < S (2 query tiles of 64, 5 key tiles of 64 / 9 of 32), one query, L > S, self
            // attention over several tiles, and one query / one key.
            for (auto [L, S] : std::vector<std::pair<int64_t, int64_t>>{{77, 257}, {1, 257}, {100, 17}, {17, 17},
                                                                         {130, 130}, {1, 1}}) {
                check_case(make_case({2, 3}, L, S, E, causal), DType::f32, seed += 10);
            }
        }
    }
}

TEST_CASE("cuda attention: f16 and bf16 forward and backward match the CPU reference (f32 accumulation)",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 5000;
    for (DType dt : {DType::f16, DType::bf16}) {
        for (int64_t E : {32, 64, 80, 128, 160}) {
            for (bool causal : {false, true}) {
                check_case(make_case({2, 3}, 77, 257, E, causal), dt, seed += 10);
                check_case(make_case({2, 3}, 100, 100, E, causal), dt, seed += 10);
                check_case(make_case({2, 3}, 1, 17, E, causal), dt, seed += 10);
            }
        }
    }
}

TEST_CASE("cuda attention: non-contiguous inputs, broadcast k/v batches, an explicit scale, other batch ranks",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 9000;
    for (DType dt : {DType::f32, DType::bf16}) {
        for (bool causal : {false, true}) {
            // q, k, v stored [2, rows, 3, E] (sequence-major) and seen as [2, 3, rows, E]
            Case t = make_case({2, 3}, 77, 257, 64, causal);
            t.transposed = true;
            check_case(t, dt, seed += 10);
            Case t80 = make_case({2, 3}, 100, 17, 80, causal);
            t80.transposed = true;
            check_case(t80, dt, seed += 10);
            // k, v shared by the 2 batch entries: their gradients are summed over the broadcast
            Case bc = make_case({2, 3}, 17, 100, 40, causal);
            bc.kv_batch = Shape{3};
            check_case(bc, dt, seed += 10);
            Case sc = make_case({2, 3}, 77, 130, 128, causal);
            sc.scale = 0.3;
            check_case(sc, dt, seed += 10);
        }
    }
    // no batch dims at all, and three of them
    check_case(make_case({}, 100, 77, 64, true), DType::f32, seed += 10);
    check_case(make_case({2, 1, 2}, 17, 33, 160, false), DType::f32, seed += 10);
}

TEST_CASE("cuda attention: results are bitwise reproducible (no atomics)", "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::bf16}) {
        INFO(dtype_name(dt));
        const Case c = make_case({2, 3}, 100, 257, 80, true);
        const Tensor q = cast(random_input({2, 3, 100, 80}, 1, -2, 2), dt).to(kGpu);
        const Tensor k = cast(random_input({2, 3, 257, 80}, 2, -2, 2), dt).to(kGpu);
        const Tensor v = cast(random_input({2, 3, 257, 80}, 3, -1, 1), dt).to(kGpu);
        const Tensor dout = cast(random_input({2, 3, 100, 80}, 4, -1, 1), dt).to(kGpu);
        auto once = [&]() {
            Tensor ql = q.clone().set_requires_grad(), kl = k.clone().set_requires_grad();
            Tensor vl = v.clone().set_requires_grad();
            return run(c, ql, kl, vl, dout);
        };
        const Result a = once(), b = once();
        CXR_EXPECT_CLOSE(host(a.out), host(b.out), 0, 0);
        CXR_EXPECT_CLOSE(host(a.dq), host(b.dq), 0, 0);
        CXR_EXPECT_CLOSE(host(a.dk), host(b.dk), 0, 0);
        CXR_EXPECT_CLOSE(host(a.dv), host(b.dv), 0, 0);
    }
}

TEST_CASE("cuda attention: masks, f64, other head dims and E != Ev take the composed path on CUDA",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    const Tensor q = random_input({2, 3, 17, 64}, 11, -2, 2), k = random_input({2, 3, 33, 64}, 12, -2, 2);
    const Tensor v = random_input({2, 3, 33, 64}, 13);
    const Tensor bool_mask = gt(random_input({17, 33}, 14), -0.5);  // broadcast over the batch
    const Tensor float_mask = random_input({3, 17, 33}, 15);
    auto g = [](const Tensor& t, DType dt = DType::f32) { return cast(t, dt).to(kGpu); };
    // f32 tolerance of the composed path: cuBLAS GEMMs and the f32 softmax against the f64 CPU reference.
    const double atol = 1e-5, rtol = 1e-4;

    SECTION("bool and float masks") {
        CHECK_FALSE(attention_uses_fused_kernel(g(q), g(k), g(v), g(bool_mask, DType::boolean)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q), g(k), g(v), g(bool_mask, DType::boolean))),
                         scaled_dot_product_attention(q, k, v, bool_mask), atol, rtol);
        CHECK_FALSE(attention_uses_fused_kernel(g(q), g(k), g(v), g(float_mask)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q), g(k), g(v), g(float_mask))),
                         scaled_dot_product_attention(q, k, v, float_mask), atol, rtol);
    }
    SECTION("f64 on CUDA") {
        CHECK_FALSE(attention_uses_fused_kernel(g(q, DType::f64), g(k, DType::f64), g(v, DType::f64)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q, DType::f64), g(k, DType::f64), g(v, DType::f64),
                                                           Tensor(), true)),
                         scaled_dot_product_attention(q, k, v, Tensor(), true), 1e-12, 1e-10);
    }
    SECTION("head dim below 32 or above 160, and E != Ev") {
        const Tensor q16 = q.narrow(-1, 0, 16), k16 = k.narrow(-1, 0, 16);
        CHECK_FALSE(attention_uses_fused_kernel(g(q16), g(k16), g(v)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q16), g(k16), g(v))),
                         scaled_dot_product_attention(q16, k16, v), atol, rtol);
        const Tensor q192 = random_input({2, 17, 192}, 16, -1, 1), k192 = random_input({2, 33, 192}, 17, -1, 1);
        const Tensor v192 = random_input({2, 33, 192}, 18);
        CHECK_FALSE(attention_uses_fused_kernel(g(q192), g(k192), g(v192)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q192), g(k192), g(v192), Tensor(), true)),
                         scaled_dot_product_attention(q192, k192, v192, Tensor(), true), atol, rtol);
        const Tensor v32 = v.narrow(-1, 0, 32);
        CHECK_FALSE(attention_uses_fused_kernel(g(q), g(k), g(v32)));
        CXR_EXPECT_CLOSE(host(scaled_dot_product_attention(g(q), g(k), g(v32))),
                         scaled_dot_product_attention(q, k, v32), atol, rtol);
    }
}

// ---- the tensor-core forward (attention_forward_tc_kernel) beside the SIMT one ----

TEST_CASE("cuda attention: f16/bf16 with the tensor-core forward on and off (CXR_ATTN_TC) match the CPU reference, "
          "and so does the backward after either",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 20000;
    for (const char* tc : {"ON", "OFF"}) {
        cxr::testing::ScopedEnv env("CXR_ATTN_TC", tc);
        INFO("CXR_ATTN_TC=" << tc);
        for (DType dt : {DType::f16, DType::bf16}) {
            // Tensor-core head dims 32, 48, 64, 80, 96, 128, 160 exactly; 33 and 40 pad to 48, 100 to 128 and 130
            // to 160 (100 and 130 are not multiples of 8: the plain-load path instead of cp.async).
            for (int64_t E : {32, 33, 40, 48, 64, 80, 96, 100, 128, 130, 160}) {
                for (bool causal : {false, true}) {
                    // lengths on and off the 64-row/64-key tiles: cross-attention L < S, one query, L > S (query
                    // tiles whose causal rows all see every key), self-attention over 3 tiles with a partial one.
                    for (auto [L, S] : std::vector<std::pair<int64_t, int64_t>>{{77, 257}, {1, 17}, {200, 64},
                                                                                 {130, 130}}) {
                        check_case(make_case({2, 2}, L, S, E, causal), dt, seed += 10);
                    }
                }
            }
        }
    }
}

// Guards against the ON pass silently re-running the SIMT forward: on an sm_80+ device the tensor-core forward
// rounds P to the input dtype before P·V, so its bf16 output differs bitwise from the SIMT forward's.
TEST_CASE("cuda attention: CXR_ATTN_TC=ON really selects the tensor-core forward", "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    const Tensor q = cxr::testing::random_input({2, 96, 64}, 41, -1, 1, DType::bf16).to(gpu);
    const Tensor k = cxr::testing::random_input({2, 130, 64}, 42, -1, 1, DType::bf16).to(gpu);
    const Tensor v = cxr::testing::random_input({2, 130, 64}, 43, -1, 1, DType::bf16).to(gpu);
    Tensor on, off;
    {
        cxr::testing::ScopedEnv e("CXR_ATTN_TC", "ON");
        on = scaled_dot_product_attention(q, k, v).to(Device::cpu());
    }
    {
        cxr::testing::ScopedEnv e("CXR_ATTN_TC", "OFF");
        off = scaled_dot_product_attention(q, k, v).to(Device::cpu());
    }
    CHECK_FALSE(cxr::testing::check_close(on, off, 0, 0).ok);
}

TEST_CASE("cuda attention: the tensor-core forward reads inputs that are not 16-byte aligned (plain-load path)",
          "[gpu][cuda][attention]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 30000;
    for (DType dt : {DType::f16, DType::bf16}) {
        for (bool causal : {false, true}) {
            INFO(dtype_name(dt) << (causal ? " causal" : ""));
            const Shape qs{2, 3, 77, 64}, kvs{2, 3, 130, 64};
            const Tensor q64 = rounded_input(qs, seed += 10, -2, 2, dt);
            const Tensor k64 = rounded_input(kvs, seed += 10, -2, 2, dt);
            const Tensor v64 = rounded_input(kvs, seed += 10, -1, 1, dt);
            // x's values in a GPU buffer that starts one element (2 bytes) past the buffer's own start: a
            // contiguous view whose address is not a multiple of 16 bytes.
            auto shifted = [&](const Tensor& x) {
                const Tensor flat = cat({zeros({1}, Options(DType::f64, Device::cpu())), reshape(x, {x.numel()})}, 0);
                return reshape(narrow(cast(flat, dt).to(kGpu), 0, 1, x.numel()), x.sizes());
            };
            const Tensor qg = shifted(q64), kg = shifted(k64), vg = shifted(v64);
            CHECK(reinterpret_cast<uintptr_t>(qg.raw_data()) % 16 != 0);
            REQUIRE(attention_uses_fused_kernel(qg, kg, vg, Tensor(), causal));
            const Tensor got = scaled_dot_product_attention(qg, kg, vg, Tensor(), causal);
            const Tensor ref = scaled_dot_product_attention(q64, k64, v64, Tensor(), causal);
            expect_tensor_close("out", got, ref, dt);
        }
    }
}
