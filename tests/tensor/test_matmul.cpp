// Tests of the matmul family (tensor/ops/matmul.h): every case of the PyTorch fixture tests/fixtures/matmul.*
// (made by tests/fixtures/tools/make_matmul_fixtures.py) in f64 and in f32, with the fast GEMM and with the
// reference kernel; f64 central-difference gradchecks (odd sizes, broadcast batch dims, transposed and sliced
// operands, 1-d promotion, linear, baddbmm); fast vs reference agreement; argument errors; f16 inputs; and the
// loud failure of a CUDA tensor when no CUDA kernel is registered.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using cxr::testing::random_input;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable matmul_cases() {
    FixtureTable c;
    auto mm = [](const Inputs& x) { return matmul(x[0], x[1]); };
    for (const char* n : {"mm_2d", "dot_1d", "vec_mat", "mat_vec", "batched", "bcast_batch", "batched_by_2d",
                          "mat_by_batched", "vec_by_batched", "batched_by_vec"})
        c[n] = {mm};
    c["transposed_both"] = {[](const Inputs& x) { return matmul(x[0].transpose(0, 1), x[1].transpose(0, 1)); }};
    c["batched_transposed_narrow"] = {
        [](const Inputs& x) { return matmul(x[0].transpose(1, 2), x[1].narrow(1, 2, 6)); }};
    c["narrow_rows"] = {[](const Inputs& x) { return matmul(x[0].narrow(0, 2, 4), x[1]); }};
    c["permuted_batch"] = {[](const Inputs& x) { return matmul(x[0].permute({1, 0, 2, 3}), x[1]); }};
    c["linear_bias"] = {[](const Inputs& x) { return linear(x[0], x[1], x[2]); }};
    c["linear_nobias"] = {[](const Inputs& x) { return linear(x[0], x[1]); }};
    c["linear_1d"] = {[](const Inputs& x) { return linear(x[0], x[1], x[2]); }};
    c["linear_transposed_x"] = {[](const Inputs& x) { return linear(x[0].transpose(0, 1), x[1], x[2]); }};
    c["baddbmm"] = {[](const Inputs& x) { return baddbmm(x[0], x[1], x[2], 0.5, 2.0); }};
    c["baddbmm_bcast_input"] = {[](const Inputs& x) { return baddbmm(x[0], x[1], x[2]); }};
    c["baddbmm_beta0"] = {[](const Inputs& x) { return baddbmm(x[0], x[1], x[2], 0.0, -1.5); }};
    return c;
}

// Restores the fast path when a test that forced the reference kernels ends (also on failure).
struct ReferenceKernels {
    bool prev = cpu_reference_kernels();
    explicit ReferenceKernels(bool on) { set_cpu_reference_kernels(on); }
    ~ReferenceKernels() { set_cpu_reference_kernels(prev); }
};

Tensor leaf(const Shape& s, uint64_t seed) { return random_input(s, seed).set_requires_grad(); }

}  // namespace

TEST_CASE("matmul: PyTorch fixtures in f64", "[cpu][matmul]") {
    cxr::testing::run_fixture_table("matmul", matmul_cases(), DType::f64);
}

TEST_CASE("matmul: PyTorch fixtures in f32 against the f64 reference", "[cpu][matmul]") {
    cxr::testing::run_fixture_table("matmul", matmul_cases(), DType::f32);
}

TEST_CASE("matmul: PyTorch fixtures through the reference kernel", "[cpu][matmul]") {
    ReferenceKernels ref(true);
    cxr::testing::run_fixture_table("matmul", matmul_cases(), DType::f64);
    cxr::testing::run_fixture_table("matmul", matmul_cases(), DType::f32);
}

TEST_CASE("matmul: f64 gradchecks", "[cpu][matmul]") {
    auto mm = [](const Inputs& x) { return matmul(x[0], x[1]); };
    SECTION("2-d, odd sizes") { CXR_EXPECT_GRADCHECK(mm, {leaf({5, 3}, 1), leaf({3, 7}, 2)}); }
    SECTION("1-d dot and promotions") {
        CXR_EXPECT_GRADCHECK(mm, {leaf({4}, 3), leaf({4}, 4)});
        CXR_EXPECT_GRADCHECK(mm, {leaf({4}, 5), leaf({2, 4, 3}, 6)});
        CXR_EXPECT_GRADCHECK(mm, {leaf({2, 3, 4}, 7), leaf({4}, 8)});
    }
    SECTION("broadcast batch dims") {
        CXR_EXPECT_GRADCHECK(mm, {leaf({2, 1, 3, 4}, 9), leaf({3, 4, 5}, 10)});
        CXR_EXPECT_GRADCHECK(mm, {leaf({3, 2}, 11), leaf({2, 2, 5}, 12)});
        CXR_EXPECT_GRADCHECK(mm, {leaf({2, 3, 3, 2}, 13), leaf({2, 5}, 14)});
    }
    SECTION("transposed, sliced and permuted operands") {
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return matmul(x[0].transpose(0, 1), x[1].narrow(1, 1, 3)); },
            {leaf({4, 3}, 15), leaf({4, 6}, 16)});
        CXR_EXPECT_GRADCHECK(
            [](const Inputs& x) { return matmul(x[0].permute({2, 0, 1}), x[1].transpose(1, 2)); },
            {leaf({3, 4, 2}, 17), leaf({2, 5, 4}, 18)});
    }
    SECTION("linear and baddbmm") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return linear(x[0], x[1], x[2]); },
                             {leaf({2, 3, 5}, 19), leaf({4, 5}, 20), leaf({4}, 21)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return baddbmm(x[0], x[1], x[2], 0.7, -1.3); },
                             {leaf({1, 3}, 22), leaf({2, 4, 5}, 23), leaf({2, 5, 3}, 24)});
    }
}

TEST_CASE("matmul: fast GEMM path agrees with the reference kernel on larger f32 shapes", "[cpu][matmul]") {
    Tensor a = random_input({3, 70, 130}, 31, -1, 1, DType::f32);
    Tensor b = random_input({130, 90}, 32, -1, 1, DType::f32);
    Tensor bt = random_input({3, 90, 130}, 33, -1, 1, DType::f32).transpose(1, 2);  // column-major operand
    Tensor fast = matmul(a, b), fast_t = matmul(a, bt);
    ReferenceKernels ref(true);
    CXR_EXPECT_CLOSE(fast, matmul(a, b), 1e-4, 1e-4);
    CXR_EXPECT_CLOSE(fast_t, matmul(a, bt), 1e-4, 1e-4);
}

TEST_CASE("matmul: shapes of the torch.matmul rules, zero-size operands, f16", "[cpu][matmul]") {
    CHECK(matmul(zeros({4}), zeros({4})).dim() == 0);
    CHECK(matmul(zeros({4}), zeros({4, 3})).sizes() == Shape{3});
    CHECK(matmul(zeros({2, 4}), zeros({4})).sizes() == Shape{2});
    CHECK(matmul(zeros({5, 1, 2, 4}), zeros({3, 4, 6})).sizes() == Shape{5, 3, 2, 6});
    // K = 0 gives zeros, M = 0 an empty result
    Tensor z = matmul(ones({2, 0}), ones({0, 3}));
    CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
    CHECK(matmul(ones({0, 2}), ones({2, 3})).sizes() == Shape{0, 3});
    Tensor a = random_input({3, 5}, 41, -1, 1, DType::f16), b = random_input({5, 2}, 42, -1, 1, DType::f16);
    Tensor h = matmul(a, b);
    CHECK(h.dtype() == DType::f16);
    CXR_EXPECT_CLOSE(h, matmul(cast(a, DType::f32), cast(b, DType::f32)), 2e-3, 2e-3);
}

TEST_CASE("matmul: argument errors name the op and the shapes", "[cpu][matmul]") {
    CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), Catch::Contains("matmul") && Catch::Contains("[2, 3]"));
    CHECK_THROWS_WITH(matmul(zeros({3}), zeros({4})), Catch::Contains("dot product"));
    CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 1})), Catch::Contains("broadcast"));
    CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({3, 2}, DType::f64)), Catch::Contains("dtypes"));
    CHECK_THROWS_WITH(matmul(zeros({2, 3}, DType::i64), zeros({3, 2}, DType::i64)), Catch::Contains("floating"));
    CHECK_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 5})), Catch::Contains("linear"));
    CHECK_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), Catch::Contains("bias"));
    CHECK_THROWS_WITH(baddbmm(zeros({5, 5}), zeros({2, 3, 4}), zeros({2, 4, 5})), Catch::Contains("baddbmm"));
}

TEST_CASE("matmul: a CUDA tensor fails loudly unless a CUDA kernel is registered", "[cpu][matmul]") {
    if (!device_available(DeviceType::CUDA)) {
        SUCCEED("no CUDA device: nothing to check here");
        return;
    }
    Tensor a = zeros({2, 3}, Options(DType::f32, Device::cuda())), b = zeros({3, 2}, Options(DType::f32, Device::cuda()));
    if (kernel_registry().find("matmul", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(matmul(a, b), Catch::Contains("matmul") && Catch::Contains("cuda"));
    else
        CHECK(matmul(a, b).is_cuda());
}
