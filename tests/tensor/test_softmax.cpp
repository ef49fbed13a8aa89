// Tests of the softmax family (tensor/ops/softmax.h): every case of the PyTorch fixture tests/fixtures/softmax.*
// (made by tests/fixtures/tools/make_softmax_fixtures.py) in f64 and in f32, f64 gradchecks (every dim, odd
// sizes, non-contiguous inputs, 0-d), properties (rows sum to 1, exp(log_softmax) = softmax, no overflow, f16),
// argument errors, and a CUDA smoke test (the CUDA conformance suite is tests/tensor/test_cuda_reduce.cpp).
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>
#include <map>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable softmax_cases() {
    FixtureTable c;
    using Op = Tensor (*)(const Tensor&, int64_t);
    const std::map<std::string, Op> ops = {{"softmax", softmax}, {"log_softmax", log_softmax}};
    for (const auto& op : ops) {
        Op f = op.second;
        const std::map<std::string, int64_t> dims = {{"d0", 0}, {"d1", 1}, {"d2", 2}, {"dm1", -1}};
        for (const auto& d : dims) {
            int64_t dim = d.second;
            c[op.first + "_" + d.first] = {[f, dim](const Inputs& x) { return f(x[0], dim); }};
        }
        c[op.first + "_1d"] = {[f](const Inputs& x) { return f(x[0], 0); }};
        c[op.first + "_transposed_d1"] = {[f](const Inputs& x) { return f(x[0].transpose(0, 2), 1); }};
        // inputs up to ±400: an f32 input carries an absolute rounding error of ~2e-5, which the outputs inherit
        c[op.first + "_large_dm1"] = {[f](const Inputs& x) { return f(x[0], -1); }, {1e-10, 1e-8}, {1e-4, 1e-5}};
    }
    c["softmax_neginf_dm1"] = {[](const Inputs& x) { return softmax(x[0], -1); }};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -2.0, double hi = 2.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

}  // namespace

TEST_CASE("softmax: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][softmax]") {
    cxr::testing::run_fixture_table("softmax", softmax_cases(), DType::f64);
}

TEST_CASE("softmax: PyTorch fixtures run in f32 against the f64 reference", "[cpu][softmax]") {
    cxr::testing::run_fixture_table("softmax", softmax_cases(), DType::f32);
}

TEST_CASE("softmax: f64 gradchecks over every dim, odd sizes and non-contiguous inputs", "[cpu][softmax]") {
    for (bool log : {false, true}) {
        auto op = [log](const Tensor& t, int64_t d) { return log ? log_softmax(t, d) : softmax(t, d); };
        INFO((log ? "log_softmax" : "softmax"));
        for (int64_t d : {0, 1, 2, -1}) {
            INFO("dim " << d);
            CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0], d); }, {leaf({3, 4, 5}, 1)});
        }
        // transposed and sliced views
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0].transpose(0, 1), 1); }, {leaf({5, 3, 2}, 2)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0].narrow(1, 1, 4), -1); }, {leaf({3, 7}, 3)});
        // one-element rows, a 1-d input, and a 0-d input
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0], 1); }, {leaf({4, 1}, 4)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0], 0); }, {leaf({9}, 5)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(x[0], -1); }, {leaf({}, 6)});
        // composed with a broadcast: softmax(a + b) with b broadcast along the rows
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return op(add(x[0], x[1]), -1); },
                             {leaf({3, 5}, 7), leaf({1, 5}, 8)});
    }
}

TEST_CASE("softmax: rows sum to one, exp(log_softmax) = softmax, large inputs do not overflow", "[cpu][softmax]") {
    Tensor x = cxr::testing::random_input({4, 6, 3}, 11, -5, 5);
    Tensor y = softmax(x, 1);
    CXR_EXPECT_CLOSE(sum(y, {1}), ones({4, 3}, DType::f64), 1e-14, 0);
    CXR_EXPECT_CLOSE(exp(log_softmax(x, 1)), y, 1e-15, 1e-13);
    // shifting by a constant leaves softmax unchanged, even far outside exp's range
    CXR_EXPECT_CLOSE(softmax(add(x, 1e4), 1), y, 1e-12, 1e-9);
    Tensor big = from_vector(std::vector<float>{1000.f, 1001.f, -1000.f}, {3});
    Tensor sb = softmax(big, 0);
    CHECK(sb.to_vector<float>()[2] == 0.0f);
    CHECK(std::abs(sb.to_vector<float>()[1] - 1.f / (1.f + std::exp(-1.f))) < 1e-6f);
    CHECK(std::isfinite(log_softmax(big, 0).to_vector<float>()[2]));
    // a 0-d input is one row of one element
    CHECK(softmax(scalar_tensor(3.0, DType::f64), 0).item() == 1.0);
    CHECK(log_softmax(scalar_tensor(3.0, DType::f64), -1).item() == 0.0);
}

TEST_CASE("softmax: f16 and bf16 are computed in higher precision and keep their dtype", "[cpu][softmax]") {
    Tensor x = cxr::testing::random_input({3, 8}, 12, -3, 3);
    Tensor ref = softmax(x, -1);
    for (DType dt : {DType::f16, DType::bf16}) {
        Tensor y = softmax(cast(x, dt), -1);
        CHECK(y.dtype() == dt);
        CXR_EXPECT_CLOSE(y, ref, dt == DType::f16 ? 2e-3 : 1.5e-2, 1e-2);
        Tensor xl = cast(x, dt).set_requires_grad();
        sum(mul(log_softmax(xl, 0), cast(x, dt))).backward();
        CHECK(xl.grad().dtype() == dt);
    }
}

TEST_CASE("softmax: argument errors name the op", "[cpu][softmax]") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH(softmax(x, 2), Catch::Contains("dim"));
    CHECK_THROWS_WITH(softmax(zeros({2}, DType::i64), 0), Catch::Contains("softmax") && Catch::Contains("floating"));
    CHECK_THROWS_WITH(log_softmax(zeros({2}, DType::boolean), 0), Catch::Contains("log_softmax"));
}

// The full CUDA conformance suite of this family is tests/tensor/test_cuda_reduce.cpp; this is its smoke test.
TEST_CASE("softmax: CUDA tensors use the CUDA kernels and match the CPU", "[gpu][cuda][softmax]") {
    CXR_SKIP_WITHOUT_GPU();
    REQUIRE(kernel_registry().find("softmax", DeviceType::CUDA) != nullptr);
    REQUIRE(kernel_registry().find("softmax_backward", DeviceType::CUDA) != nullptr);
    Tensor x = cxr::testing::random_input({3, 5}, 46, -1, 1, DType::f32);
    Tensor xg = x.to(Device::cuda(0));
    CHECK(softmax(xg, 1).device().is_cuda());
    CXR_EXPECT_CLOSE(softmax(xg, 1).to(Device::cpu()), softmax(x, 1), 1e-6, 1e-5);
    CXR_EXPECT_CLOSE(log_softmax(xg, 0).to(Device::cpu()), log_softmax(x, 0), 1e-6, 1e-5);
}

TEST_CASE("softmax: CUDA tensors need the CUDA backend (compile check in CPU-only builds)", "[cpu][softmax]") {
    if (backend_compiled(DeviceType::CUDA)) return;  // exercised by the [gpu] test
    CHECK_THROWS(softmax(full({2}, 1.0, Options(DType::f32, Device::cuda(0))), 0));
}
