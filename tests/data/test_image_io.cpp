// Tests for data/image_io: decoding PNG (8/16-bit, gray/RGB/RGBA) and JPEG against the values Pillow decodes from
// the same files (tests/fixtures/images, written by tests/fixtures/tools/make_data_io_fixtures.py), luma against
// Pillow's convert("L"), PNG writing by round trip through stb's decoder (an independent implementation of the
// format), corrupt/truncated inputs, and the real NIH PNGs ([real-data]).
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include "data/csv.h"
#include "data/image_io.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tests/support/testing.h"

using cxr::data::ColorMode;
using cxr::tensor::Tensor;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/images/";

nlohmann::json expected() {
    std::ifstream in(kDir + "expected.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

std::vector<uint8_t> bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Pillow's values [C][H][W] (first `channels` channels) scaled by 1/max as an f32 tensor.
Tensor reference(const nlohmann::json& e, int64_t channels) {
    const auto& v = e["values"];
    const int64_t H = e["height"], W = e["width"];
    const double maxv = e["max"];
    std::vector<float> out;
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) out.push_back((float)(v[c][y][x].get<double>() / maxv));
    return cxr::tensor::from_vector(out, {channels, H, W});
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    auto x = a.to_vector<float>(), y = b.to_vector<float>();
    REQUIRE(x.size() == y.size());
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, (double)std::fabs(x[i] - y[i]));
    return m;
}

}  // namespace

TEST_CASE("image_io: PNG 8/16-bit gray, RGB and RGBA decode exactly as Pillow", "[cpu][image_io]") {
    auto ex = expected()["images"];
    struct Case {
        const char* file;
        int64_t channels;  // after dropping alpha
        int bit_depth;
        int file_channels;
    };
    for (const Case& c : {Case{"gray8.png", 1, 8, 1}, Case{"gray16.png", 1, 16, 1}, Case{"rgb8.png", 3, 8, 3},
                          Case{"rgba8.png", 3, 8, 4}}) {
        INFO(c.file);
        const auto& e = ex[c.file];
        Tensor img = cxr::data::read_image(kDir + c.file);
        REQUIRE(img.shape() == cxr::tensor::Shape{c.channels, e["height"].get<int64_t>(), e["width"].get<int64_t>()});
        CHECK(img.dtype() == cxr::tensor::DType::f32);
        CXR_EXPECT_CLOSE(img, reference(e, c.channels), 1e-7, 0.0);
        auto info = cxr::data::read_image_info(kDir + c.file);
        CHECK(info.bit_depth == c.bit_depth);
        CHECK(info.channels == c.file_channels);
        CHECK(info.width == e["width"].get<int>());
    }
}

TEST_CASE("image_io: JPEG decodes within a stated tolerance of libjpeg (Pillow)", "[cpu][image_io]") {
    // Baseline JPEG decoders may differ by a level or two: the standard fixes the IDCT only to an accuracy
    // (ITU-T T.81 Annex A / IEEE 1180), and stb and libjpeg-turbo use different integer IDCTs. 4:4:4 sampling, so
    // chroma upsampling does not enter. Tolerance: 3 levels of 255.
    auto ex = expected()["images"];
    for (auto [file, channels] : {std::pair<const char*, int64_t>{"gray8.jpg", 1}, {"rgb8.jpg", 3}}) {
        INFO(file);
        Tensor img = cxr::data::read_image(kDir + file);
        Tensor ref = reference(ex[file], channels);
        REQUIRE(img.shape() == ref.shape());
        double d = max_abs_diff(img, ref);
        INFO("max |stb - libjpeg| = " << d * 255 << " levels");
        CHECK(d <= 3.0 / 255 + 1e-6);
    }
}

TEST_CASE("image_io: colour conversion (BT.601 luma as Pillow's convert(L); gray to RGB)", "[cpu][image_io]") {
    auto ex = expected()["images"];
    for (const char* file : {"rgb8.png", "rgba8.png"}) {
        INFO(file);
        Tensor g = cxr::data::read_image(kDir + file, ColorMode::gray);  // [1, H, W]
        const auto& pil = ex[file]["gray_pil"];
        auto v = g.to_vector<float>();
        const int64_t H = g.size(1), W = g.size(2);
        REQUIRE(g.size(0) == 1);
        double worst = 0;
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
                worst = std::max(worst, std::fabs(v[y * W + x] * 255.0 - pil[y][x].get<double>()));
        // Pillow rounds its fixed-point luma to an integer level: at most half a level away (+ float rounding).
        CHECK(worst <= 0.5 + 1e-3);
    }
    Tensor rgb = cxr::data::read_image(kDir + "gray8.png", ColorMode::rgb);
    Tensor gray = cxr::data::read_image(kDir + "gray8.png");
    REQUIRE(rgb.size(0) == 3);
    for (int c = 0; c < 3; ++c) CXR_EXPECT_CLOSE(rgb.narrow(0, c, 1).contiguous(), gray, 0.0, 0.0);
}

TEST_CASE("image_io: PNG writing round-trips through stb's decoder (8 and 16 bits)", "[cpu][image_io]") {
    fs::path dir = fs::temp_directory_path() / ("cxr_test_image_io_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // 8-bit: values on the level grid come back exactly; clamping and round-half-up.
    std::vector<float> v8;
    for (int i = 0; i < 2 * 3 * 5; ++i) v8.push_back((float)((i * 37) % 256) / 255.0f);
    Tensor a = cxr::tensor::from_vector(v8, {2, 3, 5});  // gray + alpha
    cxr::data::write_png((dir / "a.png").string(), a, 8);
    auto info = cxr::data::read_image_info((dir / "a.png").string());
    CHECK(info.channels == 2);
    CHECK(info.bit_depth == 8);
    Tensor b = cxr::tensor::from_vector(std::vector<float>{-0.5f, 2.0f, 0.5f, 1.0f / 255.0f}, {1, 2, 2});
    cxr::data::write_png((dir / "b.png").string(), b, 8);
    Tensor bb = cxr::data::read_image((dir / "b.png").string());
    CXR_EXPECT_CLOSE(bb, cxr::tensor::from_vector(std::vector<float>{0.f, 1.f, 128.f / 255, 1.f / 255}, {1, 2, 2}),
                     1e-7, 0.0);

    // 16-bit: Pillow's 16-bit file, re-encoded by our encoder, decodes to the same levels; RGB 16-bit too.
    Tensor g16 = cxr::data::read_image(kDir + "gray16.png");
    cxr::data::write_png((dir / "g16.png").string(), g16, 16);
    auto i16 = cxr::data::read_image_info((dir / "g16.png").string());
    CHECK(i16.bit_depth == 16);
    CHECK(i16.channels == 1);
    CXR_EXPECT_CLOSE(cxr::data::read_image((dir / "g16.png").string()), g16, 1e-7, 0.0);
    std::vector<float> v16;
    for (int i = 0; i < 3 * 4 * 3; ++i) v16.push_back((float)((i * 4099) % 65536) / 65535.0f);
    Tensor c16 = cxr::tensor::from_vector(v16, {3, 4, 3});
    cxr::data::write_png((dir / "c16.png").string(), c16, 16);
    CXR_EXPECT_CLOSE(cxr::data::read_image((dir / "c16.png").string()), c16, 1e-7, 0.0);
    // [H, W] input is one channel.
    cxr::data::write_png((dir / "hw.png").string(), g16.squeeze(0), 16);
    CHECK(cxr::data::read_image_info((dir / "hw.png").string()).channels == 1);

    // Bad inputs.
    Tensor nan = cxr::tensor::full({1, 2, 2}, std::nan(""));
    CHECK_THROWS_AS(cxr::data::encode_png(nan, 8), cxr::Error);
    CHECK_THROWS_AS(cxr::data::encode_png(a, 12), cxr::Error);
    CHECK_THROWS_AS(cxr::data::encode_png(cxr::tensor::zeros({5, 2, 2}), 8), cxr::Error);
    CHECK_FALSE(fs::exists(dir / "a.png.tmp-cxr"));
    fs::remove_all(dir);
}

TEST_CASE("image_io: corrupt and truncated files give errors, never crashes", "[cpu][image_io]") {
    for (const char* file : {"gray8.png", "gray16.png", "rgb8.png", "rgba8.png", "gray8.jpg", "rgb8.jpg"}) {
        INFO(file);
        auto bytes = bytes_of(kDir + file);
        const bool png = std::string(file).find(".png") != std::string::npos;
        for (size_t n = 0; n < bytes.size(); ++n) {
            INFO("first " << n << " bytes");
            try {
                Tensor t = cxr::data::decode_image(bytes.data(), n, file);
                // stb's JPEG decoder fills a cut-off scan instead of failing; a PNG cut anywhere before its final
                // 12-byte IEND chunk (i.e. with image data missing) must fail.
                CHECK_FALSE((png && n + 12 < bytes.size()));
                CHECK(t.dim() == 3);
            } catch (const cxr::Error& e) {
                CHECK(std::string(e.what()).find(file) != std::string::npos);
            }
        }
        // Flipped bytes in the body: error or an image, never a crash.
        for (size_t k = 16; k < bytes.size(); k += 7) {
            auto bad = bytes;
            bad[k] ^= 0xA5;
            try {
                cxr::data::decode_image(bad.data(), bad.size(), file);
            } catch (const cxr::Error&) {
            }
        }
    }
    std::string garbage = "this is not an image at all";
    CHECK_THROWS_AS(cxr::data::decode_image((const uint8_t*)garbage.data(), garbage.size(), "garbage"), cxr::Error);
    CHECK_THROWS_AS(cxr::data::read_image("/nonexistent/x.png"), cxr::Error);
}

TEST_CASE("image_io: the real NIH PNGs are 64x64 RGB with equal channels", "[cpu][image_io][real-data]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const std::string dir = cxr::testing::real_data_dir() + "/nih1000/";
    auto names = cxr::data::CsvTable::read(dir + "Data_Entry_2017_v2020.csv").column_values("Image Index");
    REQUIRE(names.size() == 1000);
    int checked = 0;
    for (size_t i = 0; i < names.size(); i += 10) {  // 100 of the 1,000 images
        const std::string path = dir + "images/" + names[i];
        Tensor img = cxr::data::read_image(path);
        REQUIRE(img.shape() == cxr::tensor::Shape{3, 64, 64});
        auto v = img.to_vector<float>();
        bool equal = true, in_range = true;
        for (int64_t p = 0; p < 64 * 64; ++p) {
            equal = equal && v[p] == v[4096 + p] && v[p] == v[8192 + p];
            in_range = in_range && v[p] >= 0.f && v[p] <= 1.f;
        }
        CHECK(equal);
        CHECK(in_range);
        // Gray mode gives the shared channel (0.299 + 0.587 + 0.114 = 1, up to float rounding).
        Tensor g = cxr::data::read_image(path, ColorMode::gray);
        CXR_EXPECT_CLOSE(g, img.narrow(0, 0, 1).contiguous(), 1e-6, 0.0);
        checked++;
    }
    CHECK(checked == 100);
}
