// Tests of the conv family (tensor/ops/conv.h): every case of the PyTorch fixture tests/fixtures/conv.*
// (made by tests/fixtures/tools/make_conv_fixtures.py) in f64 and f32 with the fast im2col kernels and again with
// the reference kernels; f64 central-difference gradchecks of conv2d and conv_transpose2d (stride, padding,
// dilation, groups, non-square kernels, bias, non-contiguous input); argument errors; f16; and the loud failure
// of a CUDA tensor when no CUDA kernel is registered.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/backend.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using cxr::testing::random_input;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable conv_cases() {
    FixtureTable c;
    c["conv_basic"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2]); }};
    c["conv_stride2_pad1"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}); }};
    c["conv_dil2_pad2"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {2, 2}, {2, 2}); }};
    c["conv_groups2"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); }};
    c["conv_depthwise"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 3); }};
    c["conv_1x1_nobias"] = {[](const Inputs& x) { return conv2d(x[0], x[1]); }};
    c["conv_nonsquare"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], {2, 1}, {1, 0}, {1, 2}); }};
    c["conv_nobias_stride2"] = {[](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}); }};
    c["conv_transposed_input"] = {
        [](const Inputs& x) { return conv2d(x[0].transpose(2, 3), x[1], x[2], {1, 1}, {1, 1}); }};
    c["convT_stride2_outpad"] = {
        [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}); }};
    c["convT_groups_dil"] = {
        [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], {2, 1}, {0, 1}, {1, 0}, 2, {1, 2}); }};
    c["convT_nobias"] = {[](const Inputs& x) { return conv_transpose2d(x[0], x[1]); }};
    return c;
}

struct ReferenceKernels {
    bool prev = cpu_reference_kernels();
    explicit ReferenceKernels(bool on) { set_cpu_reference_kernels(on); }
    ~ReferenceKernels() { set_cpu_reference_kernels(prev); }
};

Tensor leaf(const Shape& s, uint64_t seed) { return random_input(s, seed).set_requires_grad(); }

}  // namespace

TEST_CASE("conv: PyTorch fixtures in f64", "[cpu][conv]") {
    cxr::testing::run_fixture_table("conv", conv_cases(), DType::f64);
}

TEST_CASE("conv: PyTorch fixtures in f32 against the f64 reference", "[cpu][conv]") {
    cxr::testing::run_fixture_table("conv", conv_cases(), DType::f32);
}

TEST_CASE("conv: PyTorch fixtures through the reference kernels", "[cpu][conv]") {
    ReferenceKernels ref(true);
    cxr::testing::run_fixture_table("conv", conv_cases(), DType::f64);
    cxr::testing::run_fixture_table("conv", conv_cases(), DType::f32);
}

TEST_CASE("conv: f64 gradchecks of conv2d", "[cpu][conv]") {
    SECTION("stride, padding, bias") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}); },
                             {leaf({2, 2, 5, 4}, 1), leaf({3, 2, 3, 3}, 2), leaf({3}, 3)});
    }
    SECTION("dilation and non-square kernel with per-axis settings") {
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), {1, 2}, {2, 0}, {2, 1}); },
            {leaf({1, 2, 6, 7}, 4), leaf({2, 2, 2, 3}, 5)});
    }
    SECTION("groups and depthwise") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); },
                             {leaf({1, 4, 4, 5}, 6), leaf({4, 2, 3, 3}, 7), leaf({4}, 8)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {0, 0}, {1, 1}, 3); },
                             {leaf({2, 3, 4, 4}, 9), leaf({3, 1, 2, 2}, 10)});
    }
    SECTION("non-contiguous input (transposed and sliced)") {
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return conv2d(x[0].transpose(2, 3).narrow(1, 1, 2), x[1], x[2]); },
            {leaf({1, 3, 6, 5}, 11), leaf({2, 2, 3, 2}, 12), leaf({2}, 13)});
    }
}

TEST_CASE("conv: f64 gradchecks of conv_transpose2d", "[cpu][conv]") {
    SECTION("stride 2, padding, output_padding, bias") {
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}); },
            {leaf({2, 3, 3, 4}, 21), leaf({3, 2, 3, 3}, 22), leaf({2}, 23)});
    }
    SECTION("groups, dilation, non-square") {
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return conv_transpose2d(x[0], x[1], Tensor(), {1, 2}, {0, 1}, {0, 1}, 2, {2, 1}); },
            {leaf({1, 4, 3, 3}, 24), leaf({4, 1, 2, 3}, 25)});
    }
}

TEST_CASE("conv: fast kernels agree with the references on a larger f32 problem", "[cpu][conv]") {
    Tensor x = random_input({2, 8, 19, 17}, 31, -1, 1, DType::f32).set_requires_grad();
    Tensor w = random_input({12, 4, 3, 3}, 32, -1, 1, DType::f32).set_requires_grad();
    Tensor b = random_input({12}, 33, -1, 1, DType::f32).set_requires_grad();
    Tensor gy = random_input({2, 12, 10, 9}, 34, -1, 1, DType::f32);
    auto run = [&] {
        x.zero_grad(), w.zero_grad(), b.zero_grad();
        Tensor y = conv2d(x, w, b, {2, 2}, {1, 1}, {1, 1}, 2);
        y.backward(gy);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
    };
    std::vector<Tensor> fast = run();
    ReferenceKernels ref(true);
    std::vector<Tensor> slow = run();
    for (size_t i = 0; i < fast.size(); ++i) CXR_EXPECT_CLOSE(fast[i], slow[i], 1e-4, 1e-4);
}

TEST_CASE("conv: shapes, f16, and argument errors", "[cpu][conv]") {
    CHECK(conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), Tensor(), {2, 2}, {1, 1}).sizes() == Shape{1, 4, 4, 4});
    CHECK(conv_transpose2d(zeros({1, 4, 4, 4}), zeros({4, 3, 3, 3}), Tensor(), {2, 2}, {1, 1}, {1, 1}).sizes() ==
          Shape{1, 3, 8, 8});
    Tensor x = random_input({1, 2, 5, 5}, 41, -1, 1, DType::bf16), w = random_input({3, 2, 3, 3}, 42, -1, 1, DType::bf16);
    Tensor y = conv2d(x, w);
    CHECK(y.dtype() == DType::bf16);
    CXR_EXPECT_CLOSE(y, conv2d(cast(x, DType::f32), cast(w, DType::f32)), 5e-2, 1e-2);

    CHECK_THROWS_WITH(conv2d(zeros({1, 3, 8}), zeros({4, 3, 3, 3})), Catch::Contains("conv2d") && Catch::Contains("4-d"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 3, 8, 8}), zeros({4, 2, 3, 3})), Catch::Contains("groups"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 4, 8, 8}), zeros({3, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                      Catch::Contains("groups"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 3, 2, 2}), zeros({4, 3, 3, 3})), Catch::Contains("larger than"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({3})), Catch::Contains("bias"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), Tensor(), {0, 1}), Catch::Contains("stride"));
    CHECK_THROWS_WITH(conv_transpose2d(zeros({1, 4, 4, 4}), zeros({4, 3, 3, 3}), Tensor(), {2, 2}, {0, 0}, {2, 2}),
                      Catch::Contains("output_padding"));
}

TEST_CASE("conv: a CUDA tensor fails loudly unless a CUDA kernel is registered", "[cpu][conv]") {
    if (!device_available(DeviceType::CUDA)) {
        SUCCEED("no CUDA device: nothing to check here");
        return;
    }
    Options cuda(DType::f32, Device::cuda());
    Tensor x = zeros({1, 2, 5, 5}, cuda), w = zeros({3, 2, 3, 3}, cuda);
    if (kernel_registry().find("conv2d_forward", DeviceType::CUDA) == nullptr) {
        CHECK_THROWS_WITH(conv2d(x, w), Catch::Contains("conv2d_forward") && Catch::Contains("cuda"));
        CHECK_THROWS_WITH(conv_transpose2d(zeros({1, 3, 3, 3}, cuda), w), Catch::Contains("cuda"));
    } else {
        CHECK(conv2d(x, w).is_cuda());
    }
}
