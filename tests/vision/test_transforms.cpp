// Tests of the image transforms (vision/transforms/*.h): every case of the torchvision fixture
// tests/fixtures/transforms.* (made by tests/fixtures/tools/make_transforms_fixtures.py: resize variants with and
// without antialias, center crop, flips, rotate/affine, adjust_*, equalize, posterize, solarize, gaussian_blur,
// normalize, every RandAugment op at bin 9 of 31 through torchvision's own op table) compared by value in f32;
// identities (weights rows sum to 1, flips are involutions); random transforms: the same seed gives the same
// batch, parameters stay in range, RandomResizedCrop's fallback, flip frequency, noise statistics.
#include "tests/support/testing.h"

#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"
#include "vision/transforms.h"

using namespace cxr::vision;
using cxr::tensor::Generator;
using cxr::tensor::Size2;
using cxr::tensor::Tensor;

namespace {

struct Case {
    std::string input;
    std::function<Tensor(const Tensor&)> fn;
};

std::map<std::string, Case> fixture_cases() {
    std::map<std::string, Case> c;
    for (bool aa : {true, false}) {
        const std::string s = aa ? "aa" : "noaa";
        for (auto m : {Interpolation::bilinear, Interpolation::bicubic}) {
            const std::string mn = interpolation_name(m);
            c["resize_" + mn + "_" + s + "_down"] = {"big", [=](const Tensor& x) { return resize(x, {5, 7}, m, aa); }};
            c["resize_" + mn + "_" + s + "_up"] = {"small", [=](const Tensor& x) { return resize(x, {11, 16}, m, aa); }};
        }
    }
    c["resize_bilinear_aa_shorter"] = {"big", [](const Tensor& x) { return resize_shorter_side(x, 8); }};
    c["resize_bilinear_aa_mixed"] = {"big", [](const Tensor& x) { return resize(x, {20, 6}); }};
    c["resize_bicubic_aa_unbatched"] = {"chw", [](const Tensor& x) { return resize(x, {4, 6}, Interpolation::bicubic); }};
    c["resize_area_down"] = {"big", [](const Tensor& x) { return resize(x, {5, 7}, Interpolation::area); }};
    c["resize_area_up"] = {"small", [](const Tensor& x) { return resize(x, {11, 16}, Interpolation::area); }};
    c["center_crop"] = {"big", [](const Tensor& x) { return center_crop(x, {8, 10}); }};
    c["center_crop_pad"] = {"small", [](const Tensor& x) { return center_crop(x, {8, 10}); }};
    c["hflip"] = {"big", [](const Tensor& x) { return horizontal_flip(x); }};
    c["vflip"] = {"big", [](const Tensor& x) { return vertical_flip(x); }};
    c["rotate_30_nearest"] = {"sq", [](const Tensor& x) { return rotate(x, 30.0); }};
    c["rotate_m17_bilinear"] = {"big", [](const Tensor& x) { return rotate(x, -17.5, Sampling::bilinear); }};
    c["rotate_40_bilinear_fill"] = {"big", [](const Tensor& x) { return rotate(x, 40.0, Sampling::bilinear, 0.25); }};
    c["rotate_75_nearest_fill"] = {"big", [](const Tensor& x) { return rotate(x, 75.0, Sampling::nearest, 0.5); }};
    c["rotate_90_square"] = {"sq", [](const Tensor& x) { return rotate(x, 90.0); }};
    c["rotate_90_nonsquare"] = {"big", [](const Tensor& x) { return rotate(x, 90.0, Sampling::bilinear); }};
    c["rotate_180"] = {"big", [](const Tensor& x) { return rotate(x, 180.0); }};
    c["affine_bilinear"] = {"big", [](const Tensor& x) {
                                AffineParams p;
                                p.angle = 10.0;
                                p.translate = {2.0, -1.0};
                                p.scale = 1.1;
                                p.shear = {5.0, -3.0};
                                return affine(x, p, Sampling::bilinear, 0.1);
                            }};
    c["brightness"] = {"one", [](const Tensor& x) { return adjust_brightness(x, 1.3); }};
    c["contrast_gray"] = {"one", [](const Tensor& x) { return adjust_contrast(x, 0.6); }};
    c["contrast_gray_up"] = {"one", [](const Tensor& x) { return adjust_contrast(x, 1.7); }};
    c["contrast_rgb"] = {"rgb", [](const Tensor& x) { return adjust_contrast(x, 1.4); }};
    c["gamma"] = {"one", [](const Tensor& x) { return adjust_gamma(x, 0.7); }};
    c["gamma_gain"] = {"one", [](const Tensor& x) { return adjust_gamma(x, 1.5, 1.2); }};
    c["sharpness_up"] = {"one", [](const Tensor& x) { return adjust_sharpness(x, 1.8); }};
    c["sharpness_down"] = {"one", [](const Tensor& x) { return adjust_sharpness(x, 0.3); }};
    c["autocontrast"] = {"mid", [](const Tensor& x) { return autocontrast(x); }};
    c["autocontrast_constant"] = {"const", [](const Tensor& x) { return autocontrast(x); }};
    c["posterize3"] = {"one", [](const Tensor& x) { return posterize(x, 3); }};
    c["solarize"] = {"one", [](const Tensor& x) { return solarize(x, 0.6); }};
    c["equalize"] = {"mid", [](const Tensor& x) { return equalize(x); }};
    c["gaussian_blur"] = {"one", [](const Tensor& x) { return gaussian_blur(x, {5, 3}, {1.2, 0.7}); }};
    c["gaussian_blur_rgb"] = {"rgb", [](const Tensor& x) { return gaussian_blur(x, {3, 3}, {0.9, 0.9}); }};
    c["normalize"] = {"rgb", [](const Tensor& x) {
                          return normalize(x, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
                      }};
    // RandAugment ops: torchvision's names -> ours; magnitudes from our table (checked against torchvision's by
    // these very outputs, since the fixture used torchvision's table).
    const std::map<std::string, AugmentOp> names = {
        {"Identity", AugmentOp::identity},       {"ShearX", AugmentOp::shear_x},
        {"ShearY", AugmentOp::shear_y},          {"TranslateX", AugmentOp::translate_x},
        {"TranslateY", AugmentOp::translate_y},  {"Rotate", AugmentOp::rotate},
        {"Brightness", AugmentOp::brightness},   {"Contrast", AugmentOp::contrast},
        {"Sharpness", AugmentOp::sharpness},     {"Posterize", AugmentOp::posterize},
        {"Solarize", AugmentOp::solarize},       {"AutoContrast", AugmentOp::autocontrast},
        {"Equalize", AugmentOp::equalize}};
    for (const auto& kv : names) {
        const AugmentOp op = kv.second;
        for (double sign : {1.0, -1.0}) {
            if (sign < 0 && !augment_op_signed(op)) continue;
            c["randaug_" + kv.first + (sign < 0 ? "_neg" : "")] = {"ra", [=](const Tensor& x) {
                const double m = sign * augment_magnitude(op, 9, 31, x.size(-2), x.size(-1));
                return apply_augment_op(x, op, m);
            }};
        }
    }
    return c;
}

Tensor image(const cxr::tensor::Shape& s, uint64_t seed) {
    return cxr::testing::random_input(s, seed, 0.0, 1.0, cxr::tensor::DType::f32);
}

}  // namespace

TEST_CASE("transforms: torchvision fixtures by value (f32)", "[cpu][transforms]") {
    const cxr::testing::Fixtures fx("transforms");
    const auto cases = fixture_cases();
    std::set<std::string> in_file;
    for (const std::string& n : fx.names_with_prefix(""))
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".out") == 0) in_file.insert(n.substr(0, n.size() - 4));
    for (const std::string& n : in_file) {
        INFO("fixture case '" << n << "' has no entry in the C++ table");
        CHECK(cases.count(n) == 1);
    }
    for (const auto& kv : cases) {
        INFO("case " << kv.first);
        REQUIRE(in_file.count(kv.first) == 1);
        const Tensor x = fx.get("input." + kv.second.input);
        const Tensor y = kv.second.fn(x);
        const Tensor ref = fx.get(kv.first + ".out");
        REQUIRE(y.sizes() == ref.sizes());
        CXR_EXPECT_CLOSE(y, ref, 2e-6, 2e-5);
    }
}

TEST_CASE("transforms: interpolation matrices are row-stochastic; identities", "[cpu][transforms]") {
    for (auto m : {Interpolation::nearest, Interpolation::bilinear, Interpolation::bicubic, Interpolation::area})
        for (bool aa : {false, true})
            for (auto io : {std::pair<int64_t, int64_t>{13, 5}, {5, 11}, {7, 7}, {1, 4}}) {
                const auto w = resize_weights(io.first, io.second, m, aa);
                for (int64_t i = 0; i < io.second; ++i) {
                    double s = 0.0;
                    for (int64_t j = 0; j < io.first; ++j) s += w[(size_t)(i * io.first + j)];
                    CHECK(std::abs(s - 1.0) < 1e-12);
                }
            }
    const Tensor x = image({2, 1, 6, 9}, 3);
    CXR_EXPECT_CLOSE(horizontal_flip(horizontal_flip(x)), x, 0.0, 0.0);
    CXR_EXPECT_CLOSE(rotate(rotate(image({1, 1, 5, 5}, 4), 90.0), 270.0), image({1, 1, 5, 5}, 4), 0.0, 0.0);
    CXR_EXPECT_CLOSE(resize(x, {6, 9}, Interpolation::bicubic), x, 0.0, 0.0);
    // a constant image stays constant under every resize
    const Tensor c = cxr::tensor::full({1, 1, 9, 7}, 0.4);
    for (auto m : {Interpolation::bilinear, Interpolation::bicubic, Interpolation::area})
        CXR_EXPECT_CLOSE(resize(c, {4, 11}, m, true), cxr::tensor::full({1, 1, 4, 11}, 0.4), 1e-6, 0.0);
}

TEST_CASE("transforms: random transforms are deterministic per seed", "[cpu][transforms]") {
    Compose pipe;
    pipe.add(std::make_shared<RandomResizedCrop>(Size2{12, 12}))
        .add(std::make_shared<RandomHorizontalFlip>())
        .add(std::make_shared<RandomRotation>(std::array<double, 2>{-10.0, 10.0}, Sampling::bilinear, 0.0))
        .add(std::make_shared<RandomIntensity>(RandomIntensity::Kind::contrast, std::array<double, 2>{0.8, 1.2}))
        .add(std::make_shared<RandAugment>())
        .add(std::make_shared<GaussianBlur>(std::array<int64_t, 2>{3, 3}))
        .add(std::make_shared<GaussianNoise>(0.02))
        .add(std::make_shared<Normalize>(std::vector<double>{0.5}, std::vector<double>{0.25}));
    CHECK(pipe.name().find("RandAugment") != std::string::npos);
    const Tensor x = image({4, 1, 16, 20}, 7);
    Generator g1(123), g2(123), g3(124);
    const Tensor a = pipe(x, g1), b = pipe(x, g2), c = pipe(x, g3);
    CHECK(a.sizes() == cxr::tensor::Shape{4, 1, 12, 12});
    CXR_EXPECT_CLOSE(a, b, 0.0, 0.0);
    CHECK(cxr::tensor::amax(cxr::tensor::abs(a - c)).item() > 1e-3);
    CHECK(g1.offset() == g2.offset());
}

TEST_CASE("transforms: random parameter ranges and statistics", "[cpu][transforms]") {
    // RandomResizedCrop boxes stay inside the image with area and aspect within range (up to rounding).
    Generator g(5);
    const std::vector<double> u = draw_uniforms(g, 200, 40);
    for (int n = 0; n < 200; ++n) {
        const CropBox b = random_resized_crop_box(32, 24, {0.08, 1.0}, {0.75, 4.0 / 3.0}, u.data() + 40 * n);
        CHECK(b.top >= 0);
        CHECK(b.left >= 0);
        CHECK(b.top + b.height <= 32);
        CHECK(b.left + b.width <= 24);
        CHECK((double)(b.height * b.width) >= 0.08 * 32 * 24 * 0.6);
    }
    // All attempts failing (scale far above the image) -> torchvision's central fallback with a clamped aspect.
    std::vector<double> ones(40, 0.99);
    const CropBox f = random_resized_crop_box(10, 30, {50.0, 60.0}, {0.75, 4.0 / 3.0}, ones.data());
    CHECK(f.height == 10);
    CHECK(f.width == 13);  // round(10 · 4/3)
    CHECK(f.top == 0);
    CHECK(f.left == 8);
    // Flip frequency ~ p over many images.
    const Tensor x = image({400, 1, 1, 2}, 9);
    Generator gf(11);
    const Tensor y = RandomHorizontalFlip(0.3)(x, gf);
    const Tensor flipped = cxr::tensor::ne(y.narrow(3, 0, 1), x.narrow(3, 0, 1));
    const double rate = cxr::tensor::mean(cxr::tensor::cast(flipped, cxr::tensor::DType::f32)).item();
    CHECK(rate > 0.22);
    CHECK(rate < 0.38);
    // Noise: mean and std of y - x for an unclipped mid-grey batch.
    const Tensor grey = cxr::tensor::full({8, 1, 16, 16}, 0.5);
    Generator gn(13);
    const Tensor d = GaussianNoise(0.05, 0.0, false)(grey, gn) - grey;
    CHECK(std::abs(cxr::tensor::mean(d).item()) < 0.005);
    CHECK(std::abs(cxr::tensor::std(d).item() - 0.05) < 0.005);
    // RandAugment picks every op and both signs over many draws; magnitudes match the table.
    RandAugment ra(2, 9, 31);
    const std::vector<double> ur = draw_uniforms(g, 300, 4);
    std::set<std::string> seen;
    int negative = 0;
    for (int n = 0; n < 300; ++n)
        for (const auto& om : ra.choose(ur.data() + 4 * n, 14, 16)) {
            seen.insert(augment_op_name(om.first));
            CHECK(std::abs(std::abs(om.second) - augment_magnitude(om.first, 9, 31, 14, 16)) < 1e-12);
            negative += om.second < 0;
        }
    CHECK(seen.size() == grayscale_augment_ops().size());
    CHECK(negative > 100);
    CHECK(augment_magnitude(AugmentOp::posterize, 9, 31, 8, 8) == 7.0);
    CHECK(std::abs(augment_magnitude(AugmentOp::rotate, 9, 31, 8, 8) - 9.0) < 1e-5);
}

TEST_CASE("transforms: argument errors", "[cpu][transforms]") {
    const Tensor x = image({1, 1, 6, 6}, 1);
    CHECK_THROWS_AS(crop(x, 2, 2, 5, 5), cxr::Error);
    CHECK_THROWS_AS(gaussian_blur(x, {4, 3}, {1.0, 1.0}), cxr::Error);
    CHECK_THROWS_AS(normalize(x, {0.5, 0.5}, {1.0, 1.0}), cxr::Error);
    CHECK_THROWS_AS(posterize(x, 9), cxr::Error);
    CHECK_THROWS_AS(resize(image({6, 6}, 1), {3, 3}), cxr::Error);
    CHECK_THROWS_AS(RandAugment(2, 31, 31), cxr::Error);
}
