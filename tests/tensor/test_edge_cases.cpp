// Edge cases found in review, each checked against PyTorch's documented behaviour (values worked out by hand):
// 0-d tensors, dead leaves, integer clamps with infinite bounds, ignored rows holding -inf, the gradient of std
// on a constant slice, empty splits, 16-bit tensors with small scalars, in-place writes into tensors that require
// grad, and the release of saved tensors once backward has run.
#include "tests/support/testing.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;

TEST_CASE("edge: dims of a 0-d tensor are errors, not crashes", "[cpu][edge]") {
    Tensor s = full({}, 1.0);
    CHECK_THROWS_WITH(s.size(0), Catch::Contains("0-d"));
    CHECK_THROWS_WITH(cat({s, s}, 0), Catch::Contains("zero-dimensional"));
    CHECK_THROWS_AS(narrow(s, 0, 0, 1), cxr::Error);
    CHECK(stack({s, s}, 0).sizes() == Shape{2});  // stack is the way to join scalars
}

TEST_CASE("edge: backward after the leaf is gone runs and drops its gradient", "[cpu][edge][autograd]") {
    Tensor y;
    {
        Tensor x = ones({3}, DType::f64).set_requires_grad();
        y = neg(x);
    }
    CHECK_NOTHROW(sum(y).backward());
}

TEST_CASE("edge: clamp of an integer tensor with an infinite bound gives f32 values", "[cpu][edge]") {
    Tensor i = from_vector(std::vector<int64_t>{-3, 0, 5}, {3});
    Tensor c = clamp(i, 0.0, INFINITY);
    CHECK(c.dtype() == DType::f32);
    CHECK(c.to_vector<double>() == std::vector<double>{0, 0, 5});
    CHECK(clamp(i, -1.0, 2.0).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 2});
}

TEST_CASE("edge: an ignored row holding -inf does not make nll_loss NaN", "[cpu][edge][loss]") {
    Tensor logp = from_vector(std::vector<double>{-INFINITY, -0.1, -1.0, -2.0}, {2, 2});
    Tensor target = from_vector(std::vector<int64_t>{-100, 1}, {2});
    CHECK(nll_loss(logp, target).item() == 2.0);  // mean over the one kept row: -(-2)
}

TEST_CASE("edge: std of a constant slice has a zero gradient", "[cpu][edge][reduce]") {
    Tensor x = from_vector(std::vector<double>{2, 2, 2, 1, 2, 3}, {2, 3}).set_requires_grad();
    sum(cxr::tensor::std(x, {1})).backward();
    std::vector<double> g = x.grad().to_vector<double>();
    CHECK(g[0] == 0.0);
    CHECK(g[1] == 0.0);
    CHECK(g[2] == 0.0);
    // second row: σ = 1, dσ/dx = (x - 2) / ((3 - 1) · 1)
    CHECK(g[3] == Approx(-0.5));
    CHECK(g[4] == Approx(0.0).margin(1e-15));
    CHECK(g[5] == Approx(0.5));
}

TEST_CASE("edge: splitting an empty dim gives one empty piece; negative expand sizes are errors", "[cpu][edge]") {
    Tensor e = zeros({0, 3});
    auto parts = split(e, 2, 0);
    REQUIRE(parts.size() == 1);
    CHECK(parts[0].sizes() == Shape{0, 3});
    CHECK_THROWS_WITH(expand(ones({1}), {-5}), Catch::Contains("invalid size"));
}

TEST_CASE("edge: a 16-bit tensor times a small scalar is computed before rounding", "[cpu][edge][elementwise]") {
    Tensor h = full({1}, 1000.0, DType::f16);
    Tensor r = mul(h, 1e-8);
    CHECK(r.dtype() == DType::f16);
    CHECK(r.item() == Approx(1e-5).epsilon(1e-2));  // 1e-5 is subnormal in f16: spacing 6e-8
}

TEST_CASE("edge: in-place writes into a tensor that requires grad need no_grad", "[cpu][edge][autograd]") {
    Tensor w = ones({2}, DType::f64).set_requires_grad();
    CHECK_THROWS_WITH(w.copy_(zeros({2}, DType::f64)), Catch::Contains("NoGradGuard"));
    {
        NoGradGuard ng;
        w.copy_(full({2}, 3.0, DType::f64));
    }
    CHECK(w.to_vector<double>() == std::vector<double>{3, 3});
    CHECK_THROWS_WITH(w.set_grad(zeros({2}, DType::f32)), Catch::Contains("dtype"));
}

TEST_CASE("edge: backward frees the saved tensors of the graph", "[cpu][edge][autograd]") {
    Tensor x = ones({4}, DType::f64).set_requires_grad();
    std::weak_ptr<Storage> saved;
    Tensor y;
    {
        Tensor h = exp(x);  // exp and mul save views of h's storage
        saved = h.storage();
        y = sum(mul(h, h));
    }
    CHECK_FALSE(saved.expired());  // h is out of scope, but the graph still holds its storage
    y.backward();
    CHECK(saved.expired());  // freed with the graph
}
