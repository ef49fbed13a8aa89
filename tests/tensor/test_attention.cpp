// Tests of scaled dot-product attention (tensor/ops/attention.h): every case of the PyTorch fixture
// tests/fixtures/attention.* (made by tests/fixtures/tools/make_attention_fixtures.py) in f64 and in f32, f64
// gradchecks over q, k, v and an additive mask (cross-attention L != S, Ev != E, causal, bool and float masks,
// broadcast batches, non-contiguous inputs), the fully-masked-row rule, a comparison with the explicit formula,
// and argument errors; then the fused CPU kernels (tensor/cpu/attention.cpp): when they are taken, and their
// outputs and gradients against the composed path (CXR_ATTN_FUSED=OFF) in the same dtype and in f64 over self,
// cross, causal (L < S, L = S, L > S), odd and large head dims, broadcast and transposed inputs, f16 and bf16.
// (The PyTorch fixture cases above with E == Ev and no mask run through the fused kernels in f32.)
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace cxr::tensor;
using cxr::testing::Fixtures;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable attention_cases(const Fixtures& fx) {
    FixtureTable c;
    auto plain = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); };
    auto causal = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), true); };
    auto masked = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], x[3]); };
    c["sdpa_cross"] = {plain};
    c["sdpa_heads_4d"] = {plain};
    c["sdpa_broadcast_kv"] = {plain};
    c["sdpa_scale"] = {[](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), false, 0.3); }};
    c["sdpa_causal_square"] = {causal};
    c["sdpa_causal_short_q"] = {causal};
    c["sdpa_causal_long_q"] = {causal};
    c["sdpa_bool_mask"] = {masked};
    c["sdpa_bool_mask_dead_row"] = {masked};
    c["sdpa_float_mask"] = {masked};
    const Tensor neginf_mask = fx.get("sdpa_float_mask_neginf.mask");
    c["sdpa_float_mask_neginf"] = {[neginf_mask](const Inputs& x) {
        return scaled_dot_product_attention(x[0], x[1], x[2], cast(neginf_mask, x[0].dtype()));
    }};
    c["sdpa_transposed"] = {[](const Inputs& x) {
        return scaled_dot_product_attention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2));
    }};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

// A bool tensor from 0/1 values.
Tensor bool_mask(const std::vector<double>& v, const Shape& shape) {
    return cast(from_vector(v, shape), DType::boolean);
}

}  // namespace

TEST_CASE("attention: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][attention]") {
    Fixtures fx("attention");
    cxr::testing::run_fixture_table(fx, attention_cases(fx), DType::f64);
}

TEST_CASE("attention: PyTorch fixtures run in f32 against the f64 reference", "[cpu][attention]") {
    Fixtures fx("attention");
    cxr::testing::run_fixture_table(fx, attention_cases(fx), DType::f32);
}

TEST_CASE("attention: f64 gradchecks over q, k, v and masks", "[cpu][attention]") {
    // cross-attention: L = 3, S = 5, E = 4, Ev = 2
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
                         {leaf({2, 3, 4}, 1), leaf({2, 5, 4}, 2), leaf({2, 5, 2}, 3)});
    // causal, L == S and L > S
    CXR_EXPECT_GRADCHECK(
        [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), true); },
        {leaf({1, 2, 4, 3}, 4), leaf({1, 2, 4, 3}, 5), leaf({1, 2, 4, 5}, 6)});
    CXR_EXPECT_GRADCHECK(
        [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), true, 0.7); },
        {leaf({5, 3}, 7), leaf({3, 3}, 8), leaf({3, 2}, 9)});
    // bool mask broadcast over the batch, with a fully masked row (its output and gradients are zero)
    const Tensor bm = bool_mask({1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1}, {3, 4});
    CXR_EXPECT_GRADCHECK([bm](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], bm); },
                         {leaf({2, 3, 3}, 10), leaf({2, 4, 3}, 11), leaf({2, 4, 3}, 12)});
    // additive float mask that receives a gradient, broadcast over heads
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], x[3]); },
                         {leaf({2, 2, 3, 4}, 13), leaf({2, 2, 5, 4}, 14), leaf({2, 2, 5, 3}, 15),
                          leaf({2, 1, 3, 5}, 16, -2, 1)});
    // broadcast batch of k and v, non-contiguous q (transposed) and v (sliced)
    CXR_EXPECT_GRADCHECK(
        [](const Inputs& x) {
            return scaled_dot_product_attention(x[0].transpose(1, 2), x[1], x[2].narrow(-1, 1, 3));
        },
        {leaf({2, 3, 2, 4}, 17), leaf({2, 5, 4}, 18), leaf({1, 1, 5, 5}, 19)});
}

TEST_CASE("attention: matches softmax(q kᵀ · scale + B) v written out", "[cpu][attention]") {
    Tensor q = cxr::testing::random_input({2, 3, 4}, 30);
    Tensor k = cxr::testing::random_input({2, 6, 4}, 31);
    Tensor v = cxr::testing::random_input({2, 6, 5}, 32);
    Tensor b = cxr::testing::random_input({3, 6}, 33, -1, 1);
    Tensor ref = matmul(softmax(add(div(matmul(q, k.transpose(1, 2)), 2.0), b), -1), v);  // 1/√4 = 1/2
    CXR_EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, b), ref, 1e-14, 1e-12);
    // a bool mask equals the additive mask 0 / −∞
    const double ninf = -std::numeric_limits<double>::infinity();
    Tensor keep = gt(b, -0.5);
    Tensor additive = where(keep, zeros({}, DType::f64), full({}, ninf, DType::f64));
    CXR_EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, keep), scaled_dot_product_attention(q, k, v, additive),
                     1e-15, 1e-13);
    // is_causal equals the explicit lower-triangular bool mask
    Tensor tri = bool_mask({1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0}, {3, 6});
    CXR_EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), true),
                     scaled_dot_product_attention(q, k, v, tri), 0, 0);
}

TEST_CASE("attention: a fully masked row gives zeros, not NaN, and zero gradients", "[cpu][attention]") {
    Tensor q = leaf({2, 4}, 40), k = leaf({3, 4}, 41), v = leaf({3, 2}, 42);
    Tensor m = bool_mask({1, 1, 0, 0, 0, 0}, {2, 3});
    Tensor out = scaled_dot_product_attention(q, k, v, m);
    CXR_EXPECT_CLOSE(select(out, 0, 1), zeros({2}, DType::f64), 0, 0);
    sum(out).backward();
    CXR_EXPECT_CLOSE(select(q.grad(), 0, 1), zeros({4}, DType::f64), 0, 0);
    for (const Tensor& g : {q.grad(), k.grad(), v.grad()})
        for (double e : g.to_vector<double>()) CHECK(std::isfinite(e));
}

TEST_CASE("attention: f16 inputs keep their dtype", "[cpu][attention]") {
    Tensor q = cxr::testing::random_input({2, 3, 8}, 50), k = cxr::testing::random_input({2, 4, 8}, 51);
    Tensor v = cxr::testing::random_input({2, 4, 8}, 52);
    Tensor ref = scaled_dot_product_attention(q, k, v, Tensor(), true);
    Tensor h = scaled_dot_product_attention(cast(q, DType::f16), cast(k, DType::f16), cast(v, DType::f16),
                                            Tensor(), true);
    CHECK(h.dtype() == DType::f16);
    CXR_EXPECT_CLOSE(h, ref, 5e-3, 5e-3);
}

TEST_CASE("attention: argument errors name the op and the shapes", "[cpu][attention]") {
    Tensor q = zeros({2, 3, 4}), k = zeros({2, 5, 4}), v = zeros({2, 5, 6});
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, zeros({2, 5, 3}), v),
                      Catch::Contains("scaled_dot_product_attention") && Catch::Contains("[2, 5, 3]"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, zeros({2, 4, 6})), Catch::Contains("differ in S"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, zeros({4, 5})), Catch::Contains("attn_mask"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, zeros({3, 5}), true), Catch::Contains("is_causal"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, cast(v, DType::f64)), Catch::Contains("dtype"));
    CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, zeros({3, 5}, DType::i64)),
                      Catch::Contains("bool or floating"));
}

// ---- fused kernels (tensor/cpu/attention.cpp) against the composed reference ----
// The fused path (the default for unmasked f32/f16/bf16 with E == Ev) is compared with the composed path
// (CXR_ATTN_FUSED=OFF) in the same dtype and with the composed path in f64 (the accurate reference), for the
// output and the q, k, v gradients of L = Σ out ⊙ w.

namespace {

struct SdpaRun {
    Tensor out, dq, dk, dv;
};

// base = {q, k, v, w} in f64; `heads_last` means the leaves are [B, rows, H, E] and attention sees them
// transposed to [B, H, rows, E] (non-contiguous, as the UNet passes them).
SdpaRun run_sdpa(const Inputs& base, DType dt, bool causal, bool heads_last = false, bool expect_fused = false) {
    Inputs x;
    for (int i = 0; i < 3; ++i) x.push_back(cast(base[i], dt).clone().set_requires_grad());
    auto view = [&](const Tensor& t) { return heads_last ? t.transpose(1, 2) : t; };
    const Tensor q = view(x[0]), k = view(x[1]), v = view(x[2]);
    CHECK(attention_uses_fused_kernel(q, k, v, Tensor(), causal) == expect_fused);
    Tensor out = scaled_dot_product_attention(q, k, v, Tensor(), causal);
    CHECK(out.dtype() == dt);
    sum(mul(out, cast(base[3], dt))).backward();
    return {out.detach(), x[0].grad(), x[1].grad(), x[2].grad()};
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    const auto va = cast(a, DType::f64).to_vector<double>(), vb = cast(b, DType::f64).to_vector<double>();
    REQUIRE(va.size() == vb.size());
    double m = 0;
    for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
    return m;
}

struct FusedCase {
    Shape q, k, v;  // the leaves' shapes (with heads_last: [B, rows, H, E])
    bool causal = false;
    bool heads_last = false;
};

// Checks the fused f32 (or f16/bf16) run against the f64 reference at tolerance (atol, rtol), and that its
// largest error is no worse than `factor` × the composed run's in the same dtype (+ a floor for exact cases).
void check_fused_case(const FusedCase& c, uint64_t seed, DType dt = DType::f32, double atol = 2e-6,
                      double rtol = 2e-5, double factor = 2.0) {
    INFO("q " << shape_str(c.q) << " k " << shape_str(c.k) << " v " << shape_str(c.v) << " causal " << c.causal
              << " heads_last " << c.heads_last << " " << dtype_name(dt));
    const Inputs base = {cxr::testing::random_input(c.q, seed, -2, 2), cxr::testing::random_input(c.k, seed + 1, -2, 2),
                         cxr::testing::random_input(c.v, seed + 2), Tensor()};
    Inputs b4 = base;
    // w has the output's shape: run once to learn it
    const Tensor shape_probe = [&] {
        NoGradGuard ng;
        auto view = [&](const Tensor& t) { return c.heads_last ? t.transpose(1, 2) : t; };
        return scaled_dot_product_attention(view(base[0]), view(base[1]), view(base[2]), Tensor(), c.causal);
    }();
    b4[3] = cxr::testing::random_input(shape_probe.sizes(), seed + 3);
    const SdpaRun ref = run_sdpa(b4, DType::f64, c.causal, c.heads_last, false);
    const SdpaRun fused = run_sdpa(b4, dt, c.causal, c.heads_last, true);
    SdpaRun comp;
    {
        cxr::testing::ScopedEnv off("CXR_ATTN_FUSED", "OFF");
        comp = run_sdpa(b4, dt, c.causal, c.heads_last, false);
    }
    const std::vector<std::pair<const char*, std::array<Tensor, 3>>> parts = {
        {"out", {fused.out, comp.out, ref.out}},
        {"dq", {fused.dq, comp.dq, ref.dq}},
        {"dk", {fused.dk, comp.dk, ref.dk}},
        {"dv", {fused.dv, comp.dv, ref.dv}}};
    for (const auto& [name, t] : parts) {
        INFO(name);
        CXR_EXPECT_CLOSE(t[0], t[2], atol, rtol);
        const double ef = max_abs_diff(t[0], t[2]), ec = max_abs_diff(t[1], t[2]);
        INFO("max |fused - f64| = " << ef << ", max |composed - f64| = " << ec);
        CHECK(ef <= factor * ec + atol);
    }
}

}  // namespace

TEST_CASE("attention: the fused CPU kernels are taken for f32/f16/bf16 without a mask", "[cpu][attention]") {
    REQUIRE(kernel_registry().find("attention_forward", DeviceType::CPU) != nullptr);
    REQUIRE(kernel_registry().find("attention_backward", DeviceType::CPU) != nullptr);
    Tensor q = zeros({2, 3, 5}, DType::f32), k = zeros({2, 4, 5}, DType::f32), v = zeros({2, 4, 5}, DType::f32);
    CHECK(attention_uses_fused_kernel(q, k, v));
    CHECK(attention_uses_fused_kernel(q, k, v, Tensor(), true));
    CHECK(attention_uses_fused_kernel(zeros({3, 1}, DType::f32), zeros({7, 1}, DType::f32), zeros({7, 1}, DType::f32)));
    CHECK(attention_uses_fused_kernel(zeros({3, 200}, DType::f32), zeros({7, 200}, DType::f32),
                                      zeros({7, 200}, DType::f32)));  // any head dim on the CPU
    CHECK(attention_uses_fused_kernel(cast(q, DType::f16), cast(k, DType::f16), cast(v, DType::f16)));
    CHECK(attention_uses_fused_kernel(cast(q, DType::bf16), cast(k, DType::bf16), cast(v, DType::bf16)));
    CHECK_FALSE(attention_uses_fused_kernel(cast(q, DType::f64), cast(k, DType::f64), cast(v, DType::f64)));
    CHECK_FALSE(attention_uses_fused_kernel(q, k, v, zeros({3, 4}, DType::f32)));
    CHECK_FALSE(attention_uses_fused_kernel(q, k, v, cast(ones({3, 4}), DType::boolean)));
    CHECK_FALSE(attention_uses_fused_kernel(q, k, zeros({2, 4, 6}, DType::f32)));  // E != Ev
    CHECK_FALSE(attention_uses_fused_kernel(zeros({2, 0, 5}, DType::f32), k, v));  // L = 0
    for (const char* value : {"OFF", "off", "0", "false"}) {
        cxr::testing::ScopedEnv off("CXR_ATTN_FUSED", value);
        CHECK_FALSE(attention_uses_fused_kernel(q, k, v));
    }
    cxr::testing::ScopedEnv on("CXR_ATTN_FUSED", "ON");
    CHECK(attention_uses_fused_kernel(q, k, v));
}

TEST_CASE("attention: fused CPU kernels match the composed path in outputs and q/k/v gradients", "[cpu][attention]") {
    // f32 tolerance: each output is a P-weighted mean of v over S keys and each score a dot product over E, both
    // summed in f32 (relative rounding ~ 1e-7 × log S or × E for blocked sums); inputs are O(1) (q, k in [-2, 2),
    // v, w in [-1, 1)), so 2e-6 + 2e-5·|ref| leaves a margin of ~10× over the errors measured here. The second check
    // asks the fused kernels to be at least as accurate as the composed f32 path (within a factor 2).
    uint64_t seed = 100;
    const std::vector<FusedCase> cases = {
        {{2, 130, 40}, {2, 130, 40}, {2, 130, 40}},          // self-attention, L = S over 3 query blocks
        {{2, 130, 64}, {2, 77, 64}, {2, 77, 64}},            // cross-attention, S = 77 (the text length)
        {{2, 7, 3}, {2, 1, 3}, {2, 1, 3}},                   // S = 1
        {{1, 1, 160}, {1, 300, 160}, {1, 300, 160}},         // L = 1, S over two key tiles, E = 160
        {{1, 9, 200}, {1, 300, 200}, {1, 300, 200}},         // E = 200
        {{2, 7, 40}, {2, 130, 40}, {2, 130, 40}, true},      // causal, L < S
        {{1, 300, 3}, {1, 300, 3}, {1, 300, 3}, true},       // causal, L = S across key tiles and query blocks
        {{2, 130, 1}, {2, 7, 1}, {2, 7, 1}, true},           // causal, L > S (rows ≥ S see every key), E = 1
        {{2, 3, 5, 8}, {1, 3, 6, 8}, {2, 1, 6, 8}},          // broadcast batch dims
        {{2, 70, 4, 40}, {2, 70, 4, 40}, {2, 70, 4, 40}, false, true},  // [B, L, H, E] leaves seen transposed
        {{2, 70, 3, 64}, {2, 77, 3, 64}, {2, 77, 3, 64}, true, true},   // transposed, causal cross
    };
    for (const FusedCase& c : cases) check_fused_case(c, seed += 10);
}

TEST_CASE("attention: fused CPU kernels in f16 and bf16", "[cpu][attention]") {
    // f16 / bf16: inputs rounded to 11 / 8 significant bits, one rounding of the result; compared with the f64
    // reference at a few units of the dtype's epsilon (f16 2^-11 ≈ 5e-4, bf16 2^-8 ≈ 4e-3) and with the composed
    // path in the same dtype (which rounds its intermediates too, so the fused one must not be worse than 1.5×).
    const FusedCase c{{2, 70, 40}, {2, 77, 40}, {2, 77, 40}, true};
    check_fused_case(c, 300, DType::f16, 5e-3, 5e-3, 1.5);
    check_fused_case(c, 310, DType::bf16, 4e-2, 4e-2, 1.5);
}

TEST_CASE("attention: the fused CPU kernels are deterministic and independent of the thread count", "[cpu][attention]") {
    const Inputs base = {cxr::testing::random_input({2, 130, 16}, 400, -2, 2, DType::f32),
                         cxr::testing::random_input({2, 300, 16}, 401, -2, 2, DType::f32),
                         cxr::testing::random_input({2, 300, 16}, 402, -1, 1, DType::f32),
                         cxr::testing::random_input({2, 130, 16}, 403, -1, 1, DType::f32)};
    const SdpaRun a = run_sdpa(base, DType::f32, false, false, true), b = run_sdpa(base, DType::f32, false, false, true);
    CXR_EXPECT_CLOSE(a.out, b.out, 0, 0);
    CXR_EXPECT_CLOSE(a.dq, b.dq, 0, 0);
    CXR_EXPECT_CLOSE(a.dk, b.dk, 0, 0);
    CXR_EXPECT_CLOSE(a.dv, b.dv, 0, 0);
#ifdef _OPENMP
    // and the same bits on one thread (every output element is summed by one task in a fixed order)
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const SdpaRun c = run_sdpa(base, DType::f32, false, false, true);
    omp_set_num_threads(threads);
    CXR_EXPECT_CLOSE(c.out, a.out, 0, 0);
    CXR_EXPECT_CLOSE(c.dq, a.dq, 0, 0);
    CXR_EXPECT_CLOSE(c.dk, a.dk, 0, 0);
    CXR_EXPECT_CLOSE(c.dv, a.dv, 0, 0);
#endif
}

TEST_CASE("attention: the fused CPU kernels reject bad arguments by name", "[cpu][attention]") {
    auto fwd = get_kernel<AttentionForwardKernel>("attention_forward", Device::cpu());
    Tensor q = zeros({2, 3, 4}, DType::f32), k = zeros({2, 5, 4}, DType::f32), lse = zeros({2, 3}, DType::f32);
    CHECK_THROWS_WITH(fwd(q, k, zeros({2, 5, 3}, DType::f32), 0.5, false, zeros({2, 3, 4}, DType::f32), lse),
                      Catch::Contains("attention_forward") && Catch::Contains("[2, 5, 3]"));
    CHECK_THROWS_WITH(fwd(q, k, k, 0.5, false, zeros({2, 3, 4}, DType::f32), zeros({2, 4}, DType::f32)),
                      Catch::Contains("lse"));
    Tensor q64 = zeros({2, 3, 4}, DType::f64), k64 = zeros({2, 5, 4}, DType::f64);
    CHECK_THROWS_WITH(fwd(q64, k64, k64, 0.5, false, zeros({2, 3, 4}, DType::f64), lse), Catch::Contains("f64"));
}
