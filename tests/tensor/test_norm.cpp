// Tests of the norm family (tensor/ops/norm.h): every case of the PyTorch fixture tests/fixtures/norm.*
// (made by tests/fixtures/tools/make_norm_fixtures.py) in f64 and in f32 — including batch_norm's in-place running
// statistics — f64 gradchecks of layer_norm, group_norm and batch_norm (training and eval, with and without
// affine parameters, odd sizes, non-contiguous inputs), the f16/bf16 path, argument errors, and a CUDA smoke
// test (the CUDA conformance suite is tests/tensor/test_cuda_reduce.cpp).
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/norm.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureFn;
using cxr::testing::Fixtures;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

// batch_norm with the running statistics of the fixture (when stored): runs on copies of the "before" tensors in
// the run's dtype and checks them against torch's in-place update ("after").
FixtureFn batch_norm_case(const Fixtures& fx, const std::string& name, bool training, bool affine, double momentum,
                          double eps, bool transposed) {
    return [&fx, name, training, affine, momentum, eps, transposed](const Inputs& in) {
        Tensor x = transposed ? in[0].transpose(0, 2) : in[0];
        const DType dt = x.dtype();
        Tensor rm, rv;
        if (fx.has(name + ".running_mean_before")) {
            rm = cast(fx.get(name + ".running_mean_before"), dt).clone();
            rv = cast(fx.get(name + ".running_var_before"), dt).clone();
        }
        Tensor y = batch_norm(x, rm, rv, affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), training, momentum,
                              eps);
        if (rm.defined()) {
            const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
            INFO("running statistics of " << name);
            CXR_EXPECT_CLOSE(rm, fx.get(name + ".running_mean_after"), tol, tol);
            CXR_EXPECT_CLOSE(rv, fx.get(name + ".running_var_after"), tol, tol);
        }
        return y;
    };
}

FixtureTable norm_cases(const Fixtures& fx) {
    FixtureTable c;
    c["layer_norm_last"] = {[](const Inputs& x) { return layer_norm(x[0], {7}, x[1], x[2]); }};
    c["layer_norm_last2"] = {[](const Inputs& x) { return layer_norm(x[0], {5, 7}, x[1], x[2]); }};
    c["layer_norm_noaffine"] = {[](const Inputs& x) { return layer_norm(x[0], {6}); }};
    c["layer_norm_weight_only_eps"] = {[](const Inputs& x) { return layer_norm(x[0], {5}, x[1], Tensor(), 0.1); }};
    c["layer_norm_transposed"] = {[](const Inputs& x) { return layer_norm(x[0].transpose(0, 2), {7}, x[1], x[2]); }};

    c["group_norm_g2_4d"] = {[](const Inputs& x) { return group_norm(x[0], 2, x[1], x[2]); }};
    c["group_norm_g3_3d"] = {[](const Inputs& x) { return group_norm(x[0], 3, x[1], x[2]); }};
    c["group_norm_g1_noaffine"] = {[](const Inputs& x) { return group_norm(x[0], 1); }};
    c["group_norm_gC_eps"] = {[](const Inputs& x) { return group_norm(x[0], 5, x[1], x[2], 1e-3); }};
    c["group_norm_transposed"] = {[](const Inputs& x) { return group_norm(x[0].transpose(1, 2), 3, x[1], x[2]); }};

    c["batch_norm_train_3d"] = {batch_norm_case(fx, "batch_norm_train_3d", true, true, 0.1, 1e-5, false)};
    c["batch_norm_train_4d"] = {batch_norm_case(fx, "batch_norm_train_4d", true, true, 0.25, 1e-3, false)};
    c["batch_norm_train_2d"] = {batch_norm_case(fx, "batch_norm_train_2d", true, true, 0.1, 1e-5, false)};
    c["batch_norm_train_plain"] = {batch_norm_case(fx, "batch_norm_train_plain", true, false, 0.1, 1e-5, false)};
    c["batch_norm_eval_3d"] = {batch_norm_case(fx, "batch_norm_eval_3d", false, true, 0.1, 1e-5, false)};
    c["batch_norm_eval_4d_noaffine"] = {
        batch_norm_case(fx, "batch_norm_eval_4d_noaffine", false, false, 0.1, 1e-5, false)};
    c["batch_norm_train_transposed"] = {
        batch_norm_case(fx, "batch_norm_train_transposed", true, true, 0.1, 1e-5, true)};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

}  // namespace

TEST_CASE("norm: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][norm]") {
    Fixtures fx("norm");  // outlives the run: the batch_norm entries read it
    cxr::testing::run_fixture_table(fx, norm_cases(fx), DType::f64);
}

TEST_CASE("norm: PyTorch fixtures run in f32 against the f64 reference", "[cpu][norm]") {
    Fixtures fx("norm");  // outlives the run: the batch_norm entries read it
    cxr::testing::run_fixture_table(fx, norm_cases(fx), DType::f32);
}

TEST_CASE("norm: layer_norm gradchecks", "[cpu][norm]") {
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0], {5}, x[1], x[2]); },
                         {leaf({3, 5}, 1, -2, 2), leaf({5}, 2, 0.5, 1.5), leaf({5}, 3)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0], {3, 4}, x[1], x[2]); },
                         {leaf({2, 3, 4}, 4), leaf({3, 4}, 5, 0.5, 1.5), leaf({3, 4}, 6)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0], {7}); }, {leaf({1, 7}, 7)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0], {6}, x[1], Tensor(), 0.5); },
                         {leaf({2, 6}, 8), leaf({6}, 9, 0.5, 1.5)});
    // non-contiguous: a transposed and a sliced input
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0].transpose(0, 1), {3}, x[1], x[2]); },
                         {leaf({3, 4}, 10), leaf({3}, 11, 0.5, 1.5), leaf({3}, 12)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(x[0].narrow(1, 1, 5), {5}, x[1], x[2]); },
                         {leaf({3, 7}, 13), leaf({5}, 14, 0.5, 1.5), leaf({5}, 15)});
    // a broadcast sum feeding the norm
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return layer_norm(add(x[0], x[1]), {4}); },
                         {leaf({3, 4}, 16), leaf({1, 4}, 17)});
}

TEST_CASE("norm: group_norm gradchecks", "[cpu][norm]") {
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0], 3, x[1], x[2]); },
                         {leaf({2, 6, 3}, 21, -2, 2), leaf({6}, 22, 0.5, 1.5), leaf({6}, 23)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0], 2, x[1], x[2]); },
                         {leaf({2, 4, 2, 3}, 24), leaf({4}, 25, 0.5, 1.5), leaf({4}, 26)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0], 1); }, {leaf({3, 2, 5}, 27)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0], 5, x[1], Tensor(), 1e-2); },
                         {leaf({2, 5, 3}, 28), leaf({5}, 29, 0.5, 1.5)});
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0].transpose(1, 2), 2, x[1], x[2]); },
                         {leaf({2, 3, 4}, 30), leaf({4}, 31, 0.5, 1.5), leaf({4}, 32)});
    // a 2-d input (no spatial dims): each group is its channels
    CXR_EXPECT_GRADCHECK([](const Inputs& x) { return group_norm(x[0], 2, x[1], x[2]); },
                         {leaf({3, 6}, 33), leaf({6}, 34, 0.5, 1.5), leaf({6}, 35)});
}

TEST_CASE("norm: batch_norm gradchecks in training and eval", "[cpu][norm]") {
    const Tensor rm0 = cxr::testing::random_input({3}, 40, -0.5, 0.5);
    const Tensor rv0 = cxr::testing::random_input({3}, 41, 0.5, 2.0);
    for (bool training : {true, false}) {
        INFO((training ? "training" : "eval"));
        // fresh copies of the running statistics for every evaluation (training updates them in place)
        auto bn = [&, training](const Tensor& x, const Tensor& w, const Tensor& b) {
            return batch_norm(x, rm0.clone(), rv0.clone(), w, b, training, 0.1, 1e-5);
        };
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return bn(x[0], x[1], x[2]); },
                             {leaf({4, 3, 5}, 42, -2, 2), leaf({3}, 43, 0.5, 1.5), leaf({3}, 44)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return bn(x[0], x[1], x[2]); },
                             {leaf({2, 3, 2, 3}, 45), leaf({3}, 46, 0.5, 1.5), leaf({3}, 47)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return bn(x[0], Tensor(), Tensor()); }, {leaf({5, 3}, 48)});
        CXR_EXPECT_GRADCHECK([&](const Inputs& x) { return bn(x[0].transpose(0, 2), x[1], x[2]); },
                             {leaf({5, 3, 2}, 49), leaf({3}, 50, 0.5, 1.5), leaf({3}, 51)});
    }
    // training without running statistics
    CXR_EXPECT_GRADCHECK(
        [](const Inputs& x) { return batch_norm(x[0], Tensor(), Tensor(), x[1], x[2], true); },
        {leaf({3, 3, 4}, 52), leaf({3}, 53, 0.5, 1.5), leaf({3}, 54)});
}

TEST_CASE("norm: batch_norm running statistics follow torch's update rule", "[cpu][norm]") {
    Tensor x = cxr::testing::random_input({6, 2, 3}, 60, -1, 3);
    Tensor rm = zeros({2}, DType::f64), rv = ones({2}, DType::f64);
    batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.3);
    Tensor bm = mean(x, {0, 2});
    Tensor bv = var(x, {0, 2}, 1);  // unbiased
    CXR_EXPECT_CLOSE(rm, mul(bm, 0.3), 1e-14, 1e-12);
    CXR_EXPECT_CLOSE(rv, add(mul(bv, 0.3), 0.7), 1e-14, 1e-12);
    // eval leaves them alone and uses them
    Tensor rm_before = rm.clone(), rv_before = rv.clone();
    Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), false);
    CXR_EXPECT_CLOSE(rm, rm_before, 0, 0);
    CXR_EXPECT_CLOSE(y, div(sub(x, rm.reshape({1, 2, 1})), sqrt(add(rv.reshape({1, 2, 1}), 1e-5))), 1e-14, 1e-12);
    // f32 running stats with an f64 input, and a non-contiguous running-stat view, are updated too
    Tensor rm32 = zeros({2}, DType::f32);
    Tensor rv_base = ones({2, 2}, DType::f64);
    Tensor rv_view = select(rv_base, 1, 0);  // stride 2
    batch_norm(x, rm32, rv_view, Tensor(), Tensor(), true, 0.3);
    CXR_EXPECT_CLOSE(rm32, mul(bm, 0.3), 1e-7, 1e-6);
    CXR_EXPECT_CLOSE(rv_view, add(mul(bv, 0.3), 0.7), 1e-14, 1e-12);
    CXR_EXPECT_CLOSE(select(rv_base, 1, 1), ones({2}, DType::f64), 0, 0);
    // no autograd through the running statistics
    Tensor rm_g = zeros({2}, DType::f64).set_requires_grad();
    Tensor xg = x.clone().set_requires_grad();
    sum(batch_norm(xg, rm_g, ones({2}, DType::f64), Tensor(), Tensor(), false)).backward();
    CHECK_FALSE(rm_g.grad().defined());
    CHECK(xg.grad().defined());
}

TEST_CASE("norm: outputs are normalised; f16 and bf16 compute in f32", "[cpu][norm]") {
    Tensor x = cxr::testing::random_input({4, 6, 5}, 70, -3, 5);
    Tensor y = layer_norm(x, {5});
    CXR_EXPECT_CLOSE(mean(y, {-1}), zeros({4, 6}, DType::f64), 1e-12, 0);
    CXR_EXPECT_CLOSE(var(y, {-1}, 0), ones({4, 6}, DType::f64), 1e-4, 1e-4);  // eps shifts it slightly
    Tensor g = group_norm(x, 3);
    CXR_EXPECT_CLOSE(mean(g.reshape({4, 3, 10}), {-1}), zeros({4, 3}, DType::f64), 1e-12, 0);
    for (DType dt : {DType::f16, DType::bf16}) {
        Tensor xh = cast(x, dt).set_requires_grad();
        Tensor w = ones({6}, Options(dt)).set_requires_grad();
        Tensor yh = group_norm(xh, 2, w, Tensor());
        CHECK(yh.dtype() == dt);
        CXR_EXPECT_CLOSE(yh, group_norm(cast(cast(x, dt), DType::f64), 2), dt == DType::f16 ? 5e-3 : 3e-2, 1e-2);
        sum(yh).backward();
        CHECK(xh.grad().dtype() == dt);
        CHECK(w.grad().dtype() == dt);
        CHECK(layer_norm(cast(x, dt), {5}).dtype() == dt);
        CHECK(batch_norm(cast(x, dt), Tensor(), Tensor(), Tensor(), Tensor(), true).dtype() == dt);
    }
}

TEST_CASE("norm: argument errors name the op and the shapes", "[cpu][norm]") {
    Tensor x = zeros({2, 6, 3});
    CHECK_THROWS_WITH(group_norm(x, 4), Catch::Contains("group_norm") && Catch::Contains("4 groups"));
    CHECK_THROWS_WITH(group_norm(x, 2, zeros({5})), Catch::Contains("weight") && Catch::Contains("[5]"));
    CHECK_THROWS_WITH(layer_norm(x, {6}), Catch::Contains("normalized_shape") && Catch::Contains("[2, 6, 3]"));
    CHECK_THROWS_WITH(layer_norm(x, {3}, zeros({4})), Catch::Contains("layer_norm") && Catch::Contains("weight"));
    CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor()), Catch::Contains("eval mode"));
    CHECK_THROWS_WITH(batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                      Catch::Contains("more than one value per channel"));
    CHECK_THROWS_WITH(batch_norm(x, zeros({5}), ones({6})), Catch::Contains("running_mean"));
    CHECK_THROWS_WITH(layer_norm(zeros({2, 3}, DType::i64), {3}), Catch::Contains("floating"));
}

// The full CUDA conformance suite of this family is tests/tensor/test_cuda_reduce.cpp; this is its smoke test.
TEST_CASE("norm: CUDA tensors use the CUDA norm kernels and match the CPU", "[gpu][cuda][norm]") {
    CXR_SKIP_WITHOUT_GPU();
    for (const char* k : {"group_norm", "group_norm_backward", "batch_norm", "batch_norm_backward"})
        REQUIRE(kernel_registry().find(k, DeviceType::CUDA) != nullptr);
    Tensor x = cxr::testing::random_input({2, 4, 3}, 80, -1, 1, DType::f32);
    Tensor xg = x.to(Device::cuda(0));
    CHECK(group_norm(xg, 2).device().is_cuda());
    CXR_EXPECT_CLOSE(group_norm(xg, 2).to(Device::cpu()), group_norm(x, 2), 1e-5, 1e-5);
    CXR_EXPECT_CLOSE(layer_norm(xg, {3}).to(Device::cpu()), layer_norm(x, {3}), 1e-5, 1e-5);
    CXR_EXPECT_CLOSE(batch_norm(xg, Tensor(), Tensor(), Tensor(), Tensor(), true).to(Device::cpu()),
                     batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), 1e-5, 1e-5);
}

TEST_CASE("norm: CUDA tensors need the CUDA backend (compile check in CPU-only builds)", "[cpu][norm]") {
    if (backend_compiled(DeviceType::CUDA)) return;  // exercised by the [gpu] test
    CHECK_THROWS(layer_norm(full({2, 3}, 1.0, Options(DType::f32, Device::cuda(0))), {3}));
}
