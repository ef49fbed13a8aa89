// Tests of dropout (tensor/ops/dropout.h). No PyTorch fixture: PyTorch's random stream differs from our Philox
// stream by design, so the masks cannot match. Instead: the mask is the bernoulli(1 − p) draw of the generator's
// stream (reproducible for a seed, advancing the stream), the kept fraction is within statistical bounds, kept
// values are scaled by 1/(1 − p), the gradient is that same scaled mask (checked directly and by an f64
// gradcheck that resets the generator's seed before every evaluation), and the identity / zero edge cases.
#include "tests/support/testing.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

using namespace cxr::tensor;
using Inputs = std::vector<Tensor>;

TEST_CASE("dropout: the mask is the generator's bernoulli(1 - p) draw and is reproducible", "[cpu][dropout]") {
    Tensor x = cxr::testing::random_input({5, 7, 3}, 1, 0.5, 1.5);
    Generator g(1234);
    Tensor y1 = dropout(x, 0.3, true, &g);
    CHECK(g.offset() > 0);  // the stream advanced
    Tensor y2 = dropout(x, 0.3, true, &g);
    CHECK(sum(ne(y1, y2)).item() > 0);  // a second call draws a new mask
    g.manual_seed(1234);
    CXR_EXPECT_CLOSE(dropout(x, 0.3, true, &g), y1, 0, 0);
    // the kept set is exactly bernoulli(shape, 0.7) of the same (seed, offset)
    Generator h(1234);
    Tensor mask = bernoulli(x.sizes(), 0.7, Options(DType::f64), &h);
    CXR_EXPECT_CLOSE(y1, mul(x, div(mask, 0.7)), 1e-15, 1e-15);
    // the default generator is used when none is given, and manual_seed makes it reproducible
    manual_seed(99);
    Tensor d1 = dropout(x, 0.5, true);
    manual_seed(99);
    CXR_EXPECT_CLOSE(dropout(x, 0.5, true), d1, 0, 0);
}

TEST_CASE("dropout: the kept fraction is within statistical bounds and kept values are scaled", "[cpu][dropout]") {
    const int64_t n = 200000;
    Tensor x = ones({n}, DType::f32);
    Generator g(7);
    for (double p : {0.1, 0.5, 0.9}) {
        Tensor y = dropout(x, p, true, &g);
        Tensor kept = cast(ne(y, zeros({}, DType::f32)), DType::f64);
        const double frac = sum(kept).item() / (double)n;
        const double sd = std::sqrt(p * (1 - p) / (double)n);
        INFO("p = " << p << ", kept fraction " << frac);
        CHECK(std::abs(frac - (1 - p)) < 5 * sd);
        // every kept value is 1/(1 - p); the mean is preserved in expectation
        CHECK(amax(y).item() == Approx(1.0 / (1.0 - p)).epsilon(1e-6));
        CHECK(sum(cast(y, DType::f64)).item() / (double)n == Approx(1.0).margin(5 * sd / (1 - p)));
    }
}

TEST_CASE("dropout: the gradient is the scaled mask", "[cpu][dropout]") {
    Tensor x = cxr::testing::random_input({4, 9}, 3).set_requires_grad();
    Generator g(42);
    Tensor y = dropout(x, 0.4, true, &g);
    REQUIRE(y.grad_fn());
    CHECK(y.grad_fn()->name == "dropout");
    Tensor w = cxr::testing::random_input({4, 9}, 4);
    sum(mul(y, w)).backward();
    Generator h(42);
    Tensor scaled = div(bernoulli(x.sizes(), 0.6, Options(DType::f64), &h), 0.6);
    CXR_EXPECT_CLOSE(x.grad(), mul(w, scaled), 1e-15, 1e-15);
    // and by finite differences, with the same mask in every evaluation (seed reset inside the function)
    Generator gc(5);
    CXR_EXPECT_GRADCHECK(
        [&gc](const Inputs& in) {
            gc.manual_seed(5);
            return dropout(in[0], 0.35, true, &gc);
        },
        {cxr::testing::random_input({3, 5, 2}, 6).set_requires_grad()});
    // through a non-contiguous view
    CXR_EXPECT_GRADCHECK(
        [&gc](const Inputs& in) {
            gc.manual_seed(8);
            return dropout(in[0].transpose(0, 1), 0.5, true, &gc);
        },
        {cxr::testing::random_input({4, 3}, 7).set_requires_grad()});
}

TEST_CASE("dropout: identity in eval or with p = 0, zeros with p = 1, argument checks", "[cpu][dropout]") {
    Tensor x = cxr::testing::random_input({3, 4}, 9).set_requires_grad();
    Generator g(1);
    CHECK(dropout(x, 0.5, false, &g).same(x));
    CHECK(dropout(x, 0.0, true, &g).same(x));
    CHECK(g.offset() == 0);  // nothing drawn
    Tensor z = dropout(x, 1.0, true, &g);
    CXR_EXPECT_CLOSE(z, zeros({3, 4}, DType::f64), 0, 0);
    sum(z).backward();
    CXR_EXPECT_CLOSE(x.grad(), zeros({3, 4}, DType::f64), 0, 0);
    Tensor h = dropout(cast(x.detach(), DType::f16), 0.5, true, &g);
    CHECK(h.dtype() == DType::f16);
    CHECK_THROWS_WITH(dropout(x, 1.5, true), Catch::Contains("dropout") && Catch::Contains("1.5"));
    CHECK_THROWS_WITH(dropout(x, -0.1, true), Catch::Contains("outside [0, 1]"));
    CHECK_THROWS_WITH(dropout(zeros({2}, DType::i64), 0.5, true), Catch::Contains("floating"));
}
