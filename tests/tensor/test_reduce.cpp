// Tests of the reduce family (tensor/ops/reduce.h): every case of the PyTorch fixture tests/fixtures/reduce.*
// (made by tests/fixtures/tools/make_reduce_fixtures.py) in f64 and in f32, f64 gradchecks of every
// differentiable reduction (one dim, several dims, all dims, keepdim, non-contiguous input), tie rules of
// amax/argmax, integer sums, argument errors, and a CUDA smoke test (the CUDA conformance suite is
// tests/tensor/test_cuda_reduce.cpp).
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>
#include <map>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

// The dims variants of the Python script: "d1" -> {1}, "dm1" -> {-1}, "d02" -> {0, 2}, "all" -> {} (every dim).
const std::map<std::string, Shape>& dim_specs() {
    static const std::map<std::string, Shape> specs = {{"d1", {1}}, {"dm1", {-1}}, {"d02", {0, 2}}, {"all", {}}};
    return specs;
}

FixtureTable reduce_cases() {
    FixtureTable c;
    using Op = std::function<Tensor(const Tensor&, const Shape&, bool)>;
    const std::map<std::string, Op> simple = {
        {"sum", [](const Tensor& t, const Shape& d, bool k) { return sum(t, d, k); }},
        {"mean", [](const Tensor& t, const Shape& d, bool k) { return mean(t, d, k); }},
        {"amax", [](const Tensor& t, const Shape& d, bool k) { return amax(t, d, k); }},
        {"amin", [](const Tensor& t, const Shape& d, bool k) { return amin(t, d, k); }},
        {"logsumexp", [](const Tensor& t, const Shape& d, bool k) { return logsumexp(t, d, k); }},
    };
    for (const auto& op : simple) {
        Op f = op.second;
        for (const auto& spec : dim_specs())
            for (bool keep : {false, true}) {
                Shape dims = spec.second;
                c[op.first + "_" + spec.first + (keep ? "_keep" : "_drop")] = {
                    [f, dims, keep](const Inputs& x) { return f(x[0], dims, keep); }};
            }
        c[op.first + "_transposed_d1"] = {[f](const Inputs& x) { return f(x[0].transpose(0, 2), {1}, false); }};
    }
    for (const std::string op : {"var", "std"}) {
        const bool is_var = op == "var";
        for (int64_t corr : {0, 1}) {
            for (const auto& spec : dim_specs())
                for (bool keep : {false, true}) {
                    if (spec.first == "dm1" && keep) continue;
                    Shape dims = spec.second;
                    c[op + "_c" + std::to_string(corr) + "_" + spec.first + (keep ? "_keep" : "_drop")] = {
                        [is_var, dims, corr, keep](const Inputs& x) {
                            return is_var ? var(x[0], dims, corr, keep) : cxr::tensor::std(x[0], dims, corr, keep);
                        }};
                }
        }
        c[op + "_transposed_d02"] = {[is_var](const Inputs& x) {
            Tensor t = x[0].transpose(0, 2);  // [3, 5, 7], non-contiguous
            return is_var ? var(t, {0, 2}, 1, false) : cxr::tensor::std(t, {0, 2}, 1, false);
        }};
    }
    c["amax_ties_d1"] = {[](const Inputs& x) { return amax(x[0], {1}); }};
    c["amin_ties_d0"] = {[](const Inputs& x) { return amin(x[0], {0}); }};
    c["amax_ties_all"] = {[](const Inputs& x) { return amax(x[0]); }};
    // argmax/argmin of random values: no near-ties in these inputs, so f32 picks the same index
    c["argmax_d1"] = {[](const Inputs& x) { return argmax(x[0], 1); }};
    c["argmax_d2_keep"] = {[](const Inputs& x) { return argmax(x[0], 2, true); }};
    c["argmin_d0"] = {[](const Inputs& x) { return argmin(x[0], 0); }};
    c["argmax_ties_d1"] = {[](const Inputs& x) { return argmax(x[0], 1); }};
    c["argmax_ties_dm2"] = {[](const Inputs& x) { return argmax(x[0], -2); }};
    c["argmin_ties_d1"] = {[](const Inputs& x) { return argmin(x[0], 1); }};
    c["argmax_transposed_d1"] = {[](const Inputs& x) { return argmax(x[0].transpose(0, 2), 1); }};
    // values near 600: f32 keeps ~7 digits, so the f32 run is compared relative to the size of the values
    c["logsumexp_large_d1"] = {[](const Inputs& x) { return logsumexp(x[0], {1}); }, {1e-10, 1e-12}, {1e-3, 1e-6}};
    c["sum_int32_d1"] = {[](const Inputs& x) { return sum(x[0], {1}); }};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

}  // namespace

TEST_CASE("reduce: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][reduce]") {
    cxr::testing::run_fixture_table("reduce", reduce_cases(), DType::f64);
}

TEST_CASE("reduce: PyTorch fixtures run in f32 against the f64 reference", "[cpu][reduce]") {
    cxr::testing::run_fixture_table("reduce", reduce_cases(), DType::f32);
}

// ---------------------------------------------------------------- gradchecks (f64 central differences)

TEST_CASE("reduce: gradcheck over one dim, several dims, all dims, keepdim, non-contiguous", "[cpu][reduce]") {
    Tensor x = leaf({3, 4, 5}, 41, -2.0, 2.0);   // [3, 4, 5]
    Tensor xt = leaf({5, 4, 3}, 42, -2.0, 2.0);  // used as xt.transpose(0, 2) -> [3, 4, 5]
    const std::vector<Shape> dim_sets = {{1}, {-1}, {0, 2}, {}};
    using Op = std::function<Tensor(const Tensor&, const Shape&, bool)>;
    const std::vector<std::pair<std::string, Op>> ops = {
        {"sum", [](const Tensor& t, const Shape& d, bool k) { return sum(t, d, k); }},
        {"mean", [](const Tensor& t, const Shape& d, bool k) { return mean(t, d, k); }},
        {"amax", [](const Tensor& t, const Shape& d, bool k) { return amax(t, d, k); }},
        {"amin", [](const Tensor& t, const Shape& d, bool k) { return amin(t, d, k); }},
        {"logsumexp", [](const Tensor& t, const Shape& d, bool k) { return logsumexp(t, d, k); }},
        {"var c1", [](const Tensor& t, const Shape& d, bool k) { return var(t, d, 1, k); }},
        {"var c0", [](const Tensor& t, const Shape& d, bool k) { return var(t, d, 0, k); }},
        {"std c1", [](const Tensor& t, const Shape& d, bool k) { return cxr::tensor::std(t, d, 1, k); }},
        {"std c0", [](const Tensor& t, const Shape& d, bool k) { return cxr::tensor::std(t, d, 0, k); }},
    };
    for (const auto& op : ops) {
        for (const Shape& dims : dim_sets) {
            for (bool keep : {false, true}) {
                INFO(op.first << " over dims " << shape_str(dims) << (keep ? " keepdim" : ""));
                Op f = op.second;
                CXR_EXPECT_GRADCHECK([f, dims, keep](const Inputs& in) { return f(in[0], dims, keep); }, {x});
                CXR_EXPECT_GRADCHECK(
                    [f, dims, keep](const Inputs& in) { return f(in[0].transpose(0, 2), dims, keep); }, {xt});
            }
        }
    }
}

TEST_CASE("reduce: gradcheck of reductions of broadcast and sliced inputs", "[cpu][reduce]") {
    Tensor a = leaf({3, 1, 5}, 43);
    Tensor b = leaf({4, 1}, 44);
    Tensor base = leaf({6, 7}, 45);
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return sum(mul(in[0], in[1]), {0, 2}); }, {a, b});
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return logsumexp(add(in[0], in[1]), {1}, true); }, {a, b});
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return var(slice(in[0], 1, 1, 7, 2), {1}); }, {base});
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return amax(in[0].narrow(0, 1, 4).transpose(0, 1), {1}); }, {base});
}

TEST_CASE("reduce: tie rules — amax shares the gradient, argmax returns the first index", "[cpu][reduce]") {
    Tensor x = from_vector(std::vector<double>{1, 3, 3, 0, 2, 2, 2, 1}, {2, 4}).set_requires_grad();
    Tensor m = amax(x, {1});
    CHECK(m.to_vector<double>() == std::vector<double>{3, 2});
    sum(m).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
    CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
    CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{3, 3});
    CHECK(argmax(x, 1).dtype() == DType::i64);
    CHECK(argmax(x, 0, true).sizes() == Shape{1, 4});
    // NaN counts as the extreme (as torch)
    Tensor n = from_vector(std::vector<double>{1, NAN, 5, 2}, {4});
    CHECK(argmax(n, 0).item() == 1);
    CHECK(std::isnan(amax(n).item()));
}

TEST_CASE("reduce: dtypes, shapes and argument errors", "[cpu][reduce]") {
    Tensor i = from_vector(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor s = sum(i, {1});
    CHECK(s.dtype() == DType::i64);
    CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{6, 15});
    CHECK(sum(cast(i, DType::boolean)).item() == 6);
    CHECK(amax(i).dtype() == DType::i32);
    CHECK(sum(full({2, 3}, 1.0, DType::f16)).dtype() == DType::f16);
    CHECK(sum(full({3, 5}, 1.0)).sizes() == Shape{});
    CHECK(sum(full({3, 5}, 1.0), {}, true).sizes() == Shape{1, 1});
    CHECK(mean(full({3, 5}, 2.0), {0, 1}, true).sizes() == Shape{1, 1});
    CHECK_THROWS_WITH(mean(i), Catch::Contains("floating"));
    CHECK_THROWS_WITH(sum(full({3, 5}, 1.0), {2}), Catch::Contains("out of range"));
    CHECK_THROWS_WITH(sum(full({3, 5}, 1.0), {1, -1}), Catch::Contains("repeated"));
    // f32 sums accumulate in double: 2^24 + 1 + 1 + 1 + 1 in float arithmetic would stay at 2^24 (each +1 is a
    // tie rounded to even); in double it is 2^24 + 4, exact in float
    Tensor stall = from_vector(std::vector<float>{16777216.0f, 1.0f, 1.0f, 1.0f, 1.0f}, {5});
    CHECK(sum(stall).item() == 16777220.0);
    // a 0-d tensor reduces to itself
    Tensor z = full({}, 4.0, DType::f64);
    CHECK(sum(z).item() == 4.0);
    CHECK(amax(z).item() == 4.0);
    // logsumexp of a row of -inf is -inf; of large values stays finite
    Tensor ninf = full({2, 3}, -INFINITY, DType::f64);
    CHECK(std::isinf(logsumexp(ninf, {1}).to_vector<double>()[0]));
    CHECK(logsumexp(full({3}, 1000.0, DType::f64), {0}).item() == Approx(1000.0 + std::log(3.0)));
}

// The full CUDA conformance suite of this family is tests/tensor/test_cuda_reduce.cpp; this is its smoke test.
TEST_CASE("reduce: CUDA tensors are reduced by the CUDA kernels and match the CPU", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    REQUIRE(kernel_registry().find("reduce", DeviceType::CUDA) != nullptr);
    Tensor x = cxr::testing::random_input({3, 5}, 46, -1, 1, DType::f32);
    Tensor xg = x.to(Device::cuda(0));
    CHECK(sum(xg, {1}).device().is_cuda());
    CXR_EXPECT_CLOSE(sum(xg, {1}).to(Device::cpu()), sum(x, {1}), 1e-6, 1e-5);
    CXR_EXPECT_CLOSE(amax(xg, {0}).to(Device::cpu()), amax(x, {0}), 0, 0);
    CXR_EXPECT_CLOSE(argmax(xg, 1).to(Device::cpu()), argmax(x, 1), 0, 0);
}

TEST_CASE("reduce: CUDA tensors need the CUDA backend (compile check in CPU-only builds)", "[cpu][reduce]") {
    if (backend_compiled(DeviceType::CUDA)) return;  // exercised by the [gpu] test
    CHECK_THROWS(sum(full({2}, 1.0, Options(DType::f32, Device::cuda(0)))));
}
