// Tests of the resize family (tensor/ops/resize.h): every case of the PyTorch fixture tests/fixtures/resize.*
// (made by tests/fixtures/tools/make_resize_fixtures.py) in f64 and f32; f64 central-difference gradchecks of
// nearest and bilinear upsampling (both align_corners settings, up and down, scale factors) and of every pad mode
// (non-contiguous inputs, negative pads); integer inputs; argument errors; and the loud failure of a CUDA tensor
// when no CUDA kernel is registered.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using cxr::testing::random_input;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable resize_cases() {
    FixtureTable c;
    c["nearest_up"] = {[](const Inputs& x) { return upsample_nearest2d(x[0], Size2{7, 9}); }};
    c["nearest_down"] = {[](const Inputs& x) { return upsample_nearest2d(x[0], Size2{3, 4}); }};
    c["nearest_scale2"] = {[](const Inputs& x) { return upsample_nearest2d(x[0], 2.0); }};
    c["nearest_scale1_5"] = {[](const Inputs& x) { return upsample_nearest2d(x[0], 1.5); }};
    c["nearest_unbatched"] = {[](const Inputs& x) { return upsample_nearest2d(x[0], Size2{6, 10}); }};
    for (bool ac : {false, true}) {
        const std::string s = ac ? "ac" : "noac";
        c["bilinear_up_" + s] = {[ac](const Inputs& x) { return upsample_bilinear2d(x[0], Size2{7, 9}, ac); }};
        c["bilinear_down_" + s] = {[ac](const Inputs& x) { return upsample_bilinear2d(x[0], Size2{4, 3}, ac); }};
        c["bilinear_scale2_" + s] = {[ac](const Inputs& x) { return upsample_bilinear2d(x[0], 2.0, ac); }};
        c["bilinear_1x1_" + s] = {[ac](const Inputs& x) { return upsample_bilinear2d(x[0], Size2{1, 1}, ac); }};
    }
    c["bilinear_scale1_5_noac"] = {[](const Inputs& x) { return upsample_bilinear2d(x[0], 1.5, false); }};
    c["bilinear_transposed"] = {
        [](const Inputs& x) { return upsample_bilinear2d(x[0].transpose(2, 3), Size2{6, 8}, false); }};
    c["pad_constant"] = {[](const Inputs& x) { return pad(x[0], {1, 2, 3, 0}, PadMode::constant, 0.5); }};
    c["pad_constant_negative"] = {[](const Inputs& x) { return pad(x[0], {-1, 2, 1, -2}); }};
    c["pad_constant_3d"] = {[](const Inputs& x) { return pad(x[0], {1, 0, 0, 2, 1, 1}, PadMode::constant, -1.0); }};
    c["pad_reflect"] = {[](const Inputs& x) { return pad(x[0], {2, 1, 1, 3}, PadMode::reflect); }};
    c["pad_reflect_1d"] = {[](const Inputs& x) { return pad(x[0], {3, 5}, PadMode::reflect); }};
    c["pad_replicate"] = {[](const Inputs& x) { return pad(x[0], {3, 1, 0, 2}, PadMode::replicate); }};
    c["pad_circular"] = {[](const Inputs& x) { return pad(x[0], {1, 2, 2, 1}, PadMode::circular); }};
    c["pad_reflect_transposed"] = {
        [](const Inputs& x) { return pad(x[0].transpose(2, 3), {1, 1, 2, 2}, PadMode::reflect); }};
    return c;
}

Tensor leaf(const Shape& s, uint64_t seed) { return random_input(s, seed).set_requires_grad(); }

}  // namespace

TEST_CASE("resize: PyTorch fixtures in f64", "[cpu][resize]") {
    cxr::testing::run_fixture_table("resize", resize_cases(), DType::f64);
}

TEST_CASE("resize: PyTorch fixtures in f32 against the f64 reference", "[cpu][resize]") {
    cxr::testing::run_fixture_table("resize", resize_cases(), DType::f32);
}

TEST_CASE("resize: f64 gradchecks", "[cpu][resize]") {
    SECTION("nearest") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return upsample_nearest2d(x[0], Size2{5, 7}); }, {leaf({1, 2, 3, 4}, 1)});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return upsample_nearest2d(x[0].transpose(2, 3), Size2{2, 3}); },
                             {leaf({2, 1, 5, 4}, 2)});
    }
    SECTION("bilinear") {
        for (bool ac : {false, true}) {
            CXR_EXPECT_GRADCHECK([ac](const Inputs& x) { return upsample_bilinear2d(x[0], Size2{5, 8}, ac); },
                                 {leaf({1, 2, 3, 4}, 3)});
            CXR_EXPECT_GRADCHECK([ac](const Inputs& x) { return upsample_bilinear2d(x[0].transpose(2, 3), Size2{3, 2}, ac); },
                                 {leaf({1, 2, 5, 4}, 4)});
            CXR_EXPECT_GRADCHECK([ac](const Inputs& x) { return upsample_bilinear2d(x[0], 1.7, ac); },
                                 {leaf({2, 1, 3, 3}, 5)});
        }
    }
    SECTION("pad, every mode") {
        for (PadMode m : {PadMode::constant, PadMode::reflect, PadMode::replicate, PadMode::circular}) {
            INFO("mode " << pad_mode_name(m));
            CXR_EXPECT_GRADCHECK([m](const Inputs& x) { return pad(x[0], {2, 1, 1, 2}, m, 0.25); }, {leaf({2, 3, 4}, 6)});
            CXR_EXPECT_GRADCHECK([m](const Inputs& x) { return pad(x[0].transpose(0, 2), {1, 3}, m); },
                                 {leaf({5, 2, 4}, 7)});
        }
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return pad(x[0], {-1, 2, 1, -1, 1, 0}); }, {leaf({2, 3, 4}, 8)});
    }
}

TEST_CASE("resize: values on small examples, integer inputs", "[cpu][resize]") {
    Tensor x = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});
    CHECK(upsample_nearest2d(x, 2.0).to_vector<double>() ==
          std::vector<double>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6});
    CHECK(upsample_bilinear2d(x, Size2{3, 5}, true).to_vector<double>() ==
          std::vector<double>{1, 1.5, 2, 2.5, 3, 2.5, 3, 3.5, 4, 4.5, 4, 4.5, 5, 5.5, 6});
    CHECK(pad(from_vector(std::vector<double>{1, 2, 3}, {3}), {2, 2}, PadMode::reflect).to_vector<double>() ==
          std::vector<double>{3, 2, 1, 2, 3, 2, 1});
    Tensor mask = from_vector(std::vector<int64_t>{1, 0, 0, 1}, {1, 2, 2});
    Tensor up = upsample_nearest2d(mask, Size2{4, 4});
    CHECK(up.dtype() == DType::i64);
    CHECK(pad(mask, {1, 0}, PadMode::constant, 7).to_vector<int64_t>() == std::vector<int64_t>{7, 1, 0, 7, 0, 1});
}

TEST_CASE("resize: argument errors", "[cpu][resize]") {
    CHECK_THROWS_WITH(upsample_nearest2d(zeros({4, 4}), Size2{8, 8}), Catch::Contains("upsample_nearest2d"));
    CHECK_THROWS_WITH(upsample_bilinear2d(zeros({1, 1, 4, 4}), Size2{0, 8}), Catch::Contains("positive"));
    CHECK_THROWS_WITH(upsample_bilinear2d(zeros({1, 1, 4, 4}), -2.0), Catch::Contains("scale"));
    CHECK_THROWS_WITH(pad(zeros({2, 3}), {1, 1, 1}), Catch::Contains("pairs"));
    CHECK_THROWS_WITH(pad(zeros({2, 3}), {3, 0}, PadMode::reflect), Catch::Contains("reflect"));
    CHECK_THROWS_WITH(pad(zeros({2, 3}), {-1, 0}, PadMode::replicate), Catch::Contains(">= 0"));
    CHECK_THROWS_WITH(pad(zeros({2, 3}), {-2, -2}), Catch::Contains("negative size"));
}

TEST_CASE("resize: a CUDA tensor fails loudly unless a CUDA kernel is registered", "[cpu][resize]") {
    if (!device_available(DeviceType::CUDA)) {
        SUCCEED("no CUDA device: nothing to check here");
        return;
    }
    Tensor x = zeros({1, 2, 4, 4}, Options(DType::f32, Device::cuda()));
    if (kernel_registry().find("upsample_nearest2d_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(upsample_nearest2d(x, 2.0), Catch::Contains("cuda"));
    if (kernel_registry().find("upsample_bilinear2d_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(upsample_bilinear2d(x, 2.0), Catch::Contains("cuda"));
    if (kernel_registry().find("pad_forward", DeviceType::CUDA) == nullptr)
        CHECK_THROWS_WITH(pad(x, {1, 1}), Catch::Contains("pad_forward") && Catch::Contains("cuda"));
}
