// Tests of scaled dot-product attention (tensor/ops/attention.h): every case of the PyTorch fixture
// tests/fixtures/attention.* (made by tests/fixtures/tools/make_attention_fixtures.py) in f64 and in f32, f64
// gradchecks over q, k, v and an additive mask (cross-attention L != S, Ev != E, causal, bool and float masks,
// broadcast batches, non-contiguous inputs), the fully-masked-row rule, a comparison with the explicit formula,
// and argument errors.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>
#include <limits>

#include "tensor/backend.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

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
