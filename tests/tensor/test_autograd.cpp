// Autograd engine: accumulation, shared inputs, retain_grad, no_grad, detach, freed graphs, deep chains.
#include "tests/support/testing.h"

#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;

TEST_CASE("autograd: product rule and a shared input", "[cpu][autograd]") {
    Tensor x = from_vector(std::vector<double>{1.5, -2.0, 3.0}, {3}).set_requires_grad();
    Tensor y = sum(mul(mul(x, x), x));  // d/dx Σ x³ = 3x²
    y.backward();
    CXR_EXPECT_CLOSE(x.grad(), from_vector(std::vector<double>{6.75, 12.0, 27.0}, {3}), 1e-12, 0);
}

TEST_CASE("autograd: gradients accumulate across backward calls and zero_grad clears", "[cpu][autograd]") {
    Tensor x = from_vector(std::vector<double>{2.0}, {1}).set_requires_grad();
    sum(mul(x, 3.0)).backward();
    sum(mul(x, 3.0)).backward();
    CHECK(x.grad().item() == 6.0);
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: retain_grad on a non-leaf, leaf grads only by default", "[cpu][autograd]") {
    Tensor x = from_vector(std::vector<double>{1.0, 2.0}, {2}).set_requires_grad();
    Tensor h = mul(x, 2.0);
    Tensor h2 = mul(x, 5.0);
    h.retain_grad();
    sum(add(square(h), h2)).backward();
    CHECK(h.grad().to_vector<double>() == std::vector<double>{4.0, 8.0});  // 2h
    CHECK_FALSE(h2.grad().defined());
    CHECK(x.grad().to_vector<double>() == std::vector<double>{13.0, 21.0});  // 2h*2 + 5
}

TEST_CASE("autograd: no_grad records nothing, detach cuts the graph", "[cpu][autograd]") {
    Tensor x = ones({2}, DType::f64).set_requires_grad();
    {
        NoGradGuard ng;
        Tensor y = mul(x, 2.0);
        CHECK_FALSE(y.requires_grad());
    }
    Tensor d = x.detach();
    CHECK_FALSE(d.requires_grad());
    CHECK(d.storage() == x.storage());
    Tensor y = mul(x, 2.0);
    CHECK(y.requires_grad());
    REQUIRE(y.grad_fn());
    CHECK(y.grad_fn()->name == "mul");
}

TEST_CASE("autograd: a second backward through a freed graph is an error unless retained", "[cpu][autograd]") {
    Tensor x = ones({2}, DType::f64).set_requires_grad();
    Tensor y = sum(exp(x));
    y.backward(Tensor(), /*retain_graph=*/true);
    y.backward();
    CHECK(x.grad().to_vector<double>()[0] == Approx(2 * std::exp(1.0)));
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("retain_graph"));
}

TEST_CASE("autograd: backward of a non-scalar needs a gradient", "[cpu][autograd]") {
    Tensor x = ones({2}, DType::f64).set_requires_grad();
    Tensor y = mul(x, 2.0);
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("one-element"));
    y.backward(full({2}, 3.0, DType::f64));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6.0, 6.0});
}

TEST_CASE("autograd: a path that receives no gradient does not block others", "[cpu][autograd]") {
    Tensor x = ones({2}, DType::f64).set_requires_grad();
    Tensor a = mul(x, 2.0);
    Tensor cond = from_vector(std::vector<double>{1, 0}, {2}, DType::boolean);
    Tensor b = where(cond, a, zeros({2}, DType::f64));
    sum(add(b, x)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 1.0});
}

TEST_CASE("autograd: a 10,000-op chain runs forward, backward and teardown without deep recursion",
          "[cpu][autograd]") {
    Tensor x = from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
    {
        Tensor y = x;
        for (int i = 0; i < 10000; ++i) y = add(y, 1e-4);
        y = mul(y, 2.0);
        y.backward(ones({1}, DType::f64));
        CHECK(x.grad().item() == 2.0);
    }
    // Teardown of an unused graph (never backpropagated) must not recurse either.
    Tensor z = x;
    for (int i = 0; i < 200000; ++i) z = mul(z, 1.0);
    z = Tensor();
    SUCCEED();
}

TEST_CASE("autograd: requires_grad only for floating tensors", "[cpu][autograd]") {
    Tensor i = zeros({2}, DType::i64);
    CHECK_THROWS_WITH(i.set_requires_grad(), Catch::Contains("floating"));
}
