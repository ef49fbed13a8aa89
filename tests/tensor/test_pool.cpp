// Tests of the pool family (tensor/ops/pool.h): every case of the PyTorch fixture tests/fixtures/pool.*
// (made by tests/fixtures/tools/make_pool_fixtures.py) in f64 and f32; f64 central-difference gradchecks of
// max/avg/adaptive pooling (odd sizes, padding, dilation, ceil_mode, non-contiguous inputs); the argmax indices
// and first-maximum tie rule; output-size rules; argument errors; and the loud failure of a CUDA tensor when no
// CUDA kernel is registered.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using cxr::testing::random_input;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable pool_cases() {
    FixtureTable c;
    c["maxpool_k2"] = {[](const Inputs& x) { return max_pool2d(x[0], {2, 2}); }};
    c["maxpool_k3_s2_p1"] = {[](const Inputs& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }};
    c["maxpool_dil"] = {[](const Inputs& x) { return max_pool2d(x[0], {2, 3}, {1, 2}, {1, 1}, {2, 2}); }};
    c["maxpool_ceil"] = {[](const Inputs& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {0, 0}, {1, 1}, true); }};
    c["maxpool_ceil_pad"] = {[](const Inputs& x) { return max_pool2d(x[0], {2, 2}, {2, 2}, {1, 1}, {1, 1}, true); }};
    c["maxpool_unbatched"] = {[](const Inputs& x) { return max_pool2d(x[0], {2, 2}, {1, 1}); }};
    c["maxpool_ties"] = {[](const Inputs& x) { return max_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}); }};
    c["maxpool_transposed"] = {[](const Inputs& x) { return max_pool2d(x[0].transpose(2, 3), {2, 2}, {2, 2}); }};
    c["avgpool_k2"] = {[](const Inputs& x) { return avg_pool2d(x[0], {2, 2}); }};
    c["avgpool_k3_s2_p1"] = {[](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }};
    c["avgpool_p1_nocount"] = {[](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, false, false); }};
    c["avgpool_ceil"] = {[](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true); }};
    c["avgpool_ceil_nocount"] = {[](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true, false); }};
    c["avgpool_nonsquare"] = {[](const Inputs& x) { return avg_pool2d(x[0], {2, 3}, {1, 2}); }};
    c["avgpool_transposed"] = {[](const Inputs& x) { return avg_pool2d(x[0].transpose(2, 3), {2, 2}, {1, 1}); }};
    c["adaptive_down"] = {[](const Inputs& x) { return adaptive_avg_pool2d(x[0], {3, 4}); }};
    c["adaptive_1x1"] = {[](const Inputs& x) { return adaptive_avg_pool2d(x[0], {1, 1}); }};
    c["adaptive_up"] = {[](const Inputs& x) { return adaptive_avg_pool2d(x[0], {6, 7}); }};
    c["adaptive_transposed"] = {[](const Inputs& x) { return adaptive_avg_pool2d(x[0].transpose(2, 3), {4, 5}); }};
    return c;
}

Tensor leaf(const Shape& s, uint64_t seed) { return random_input(s, seed).set_requires_grad(); }

}  // namespace

TEST_CASE("pool: PyTorch fixtures in f64", "[cpu][pool]") {
    cxr::testing::run_fixture_table("pool", pool_cases(), DType::f64);
}

TEST_CASE("pool: PyTorch fixtures in f32 against the f64 reference", "[cpu][pool]") {
    cxr::testing::run_fixture_table("pool", pool_cases(), DType::f32);
}

TEST_CASE("pool: f64 gradchecks", "[cpu][pool]") {
    // Random inputs have no ties, so max pooling is differentiable at them.
    SECTION("max_pool2d") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); },
                             {leaf({2, 2, 5, 6}, 1)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return max_pool2d(x[0], {2, 3}, {1, 2}, {1, 1}, {2, 1}, true); },
                             {leaf({1, 2, 6, 7}, 2)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return max_pool2d(x[0].transpose(1, 2).narrow(2, 1, 4), {2, 2}); },
                             {leaf({2, 5, 3, 6}, 3)});
    }
    SECTION("avg_pool2d") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true, false); },
                             {leaf({1, 2, 7, 6}, 4)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return avg_pool2d(x[0].transpose(2, 3), {2, 3}, {1, 2}, {1, 1}); },
                             {leaf({2, 1, 6, 5}, 5)});
    }
    SECTION("adaptive_avg_pool2d") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return adaptive_avg_pool2d(x[0], {3, 2}); }, {leaf({2, 2, 7, 5}, 6)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return adaptive_avg_pool2d(x[0].transpose(2, 3), {5, 4}); },
                             {leaf({1, 2, 3, 4}, 7)});
    }
}

TEST_CASE("pool: argmax indices, first maximum on ties, NaN propagation", "[cpu][pool]") {
    Tensor x = from_vector(std::vector<double>{1, 5, 5, 2,  //
                                               0, 5, 3, 4,  //
                                               NAN, 1, 2, 9},
                           {1, 1, 3, 4})
                   .set_requires_grad();
    auto r = max_pool2d_with_indices(x, {2, 2}, {1, 2});  // windows at rows 0-1 and 1-2, cols 0-1 and 2-3
    CHECK(r.second.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 8, 11});
    std::vector<double> y = r.first.to_vector<double>();
    CHECK(y[0] == 5.0);
    CHECK(std::isnan(y[2]));
    r.first.backward(ones({1, 1, 2, 2}, DType::f64));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1});
}

TEST_CASE("pool: output sizes, stride default, f16, argument errors", "[cpu][pool]") {
    CHECK(pool_output_size(7, 3, 2, 0, 1, false) == 3);
    CHECK(pool_output_size(7, 3, 2, 0, 1, true) == 3);
    CHECK(pool_output_size(8, 3, 2, 0, 1, true) == 4);
    CHECK(pool_output_size(6, 2, 2, 1, 1, true) == 4);  // the last window would start in the right padding
    CHECK(max_pool2d(zeros({2, 3, 6, 7}), {2, 2}).sizes() == Shape{2, 3, 3, 3});
    CHECK(avg_pool2d(zeros({3, 6, 7}), {3, 3}, {1, 1}).sizes() == Shape{3, 4, 5});
    Tensor h = random_input({1, 2, 6, 6}, 8, -1, 1, DType::f16);
    CHECK(max_pool2d(h, {2, 2}).dtype() == DType::f16);
    CXR_EXPECT_CLOSE(avg_pool2d(h, {2, 2}), avg_pool2d(cast(h, DType::f32), {2, 2}), 1e-3, 1e-3);
    CHECK_THROWS_WITH(max_pool2d(zeros({6, 6}), {2, 2}), Catch::Contains("max_pool2d"));
    CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 6, 6}), {2, 2}, {2, 2}, {2, 2}), Catch::Contains("half"));
    CHECK_THROWS_WITH(avg_pool2d(zeros({1, 1, 2, 2}), {3, 3}, {1, 1}), Catch::Contains("empty"));
    CHECK_THROWS_WITH(adaptive_avg_pool2d(zeros({1, 1, 4, 4}), {0, 2}), Catch::Contains("positive"));
    CHECK_THROWS_WITH(avg_pool2d(zeros({1, 1, 4, 4}, DType::i64), {2, 2}), Catch::Contains("floating"));
}

TEST_CASE("pool: a CUDA tensor fails loudly unless a CUDA kernel is registered", "[cpu][pool]") {
    if (!device_available(DeviceType::CUDA)) {
        SUCCEED("no CUDA device: nothing to check here");
        return;
    }
    Tensor x = zeros({1, 2, 6, 6}, Options(DType::f32, Device::cuda()));
    if (kernel_registry().find("max_pool2d_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(max_pool2d(x, {2, 2}), Catch::Contains("max_pool2d") && Catch::Contains("cuda"));
    if (kernel_registry().find("avg_pool2d_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(avg_pool2d(x, {2, 2}), Catch::Contains("avg_pool2d") && Catch::Contains("cuda"));
    if (kernel_registry().find("adaptive_avg_pool2d_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {1, 1}), Catch::Contains("cuda"));
}
