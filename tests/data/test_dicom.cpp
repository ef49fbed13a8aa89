// Tests for data/dicom against pydicom: tiny files written by pydicom (tests/fixtures/dicom, made by
// tests/fixtures/tools/make_dicom_fixtures.py) with the stored values (ds.pixel_array), modality values
// (apply_modality_lut) and windowed display values (apply_windowing, normalised; MONOCHROME1 inverted) that pydicom
// computes; explicit and implicit VR, sequences of defined and undefined length, signed/unsigned, 8/12/16 bits.
// Also: rejection of a JPEG transfer syntax by UID and name, truncated and corrupted files.
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/dicom.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tests/support/testing.h"

using cxr::data::DicomFile;
using cxr::tensor::Tensor;

namespace {

const std::string kDir = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/dicom/";

nlohmann::json expected() {
    std::ifstream in(kDir + "expected.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

std::vector<uint8_t> bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Tensor grid(const nlohmann::json& v, bool channel_dim) {
    std::vector<double> out;
    const int64_t H = (int64_t)v.size(), W = (int64_t)v[0].size();
    for (const auto& row : v)
        for (const auto& x : row) out.push_back(x.get<double>());
    Tensor t = cxr::tensor::from_vector(out, {H, W});
    return channel_dim ? t.unsqueeze(0) : t;
}

const char* kFiles[] = {"explicit_mono2_u12.dcm", "implicit_mono1_u8.dcm", "explicit_signed16_rescale.dcm",
                        "implicit_mono1_s12_rescale.dcm"};

}  // namespace

TEST_CASE("dicom: pixel values, rescale, window and MONOCHROME1 match pydicom", "[cpu][dicom]") {
    auto ex = expected()["files"];
    for (const char* file : kFiles) {
        INFO(file);
        const auto& e = ex[file];
        DicomFile f = DicomFile::read(kDir + file);
        CHECK(f.transfer_syntax_uid() == e["transfer_syntax"].get<std::string>());
        CHECK(f.rows() == e["rows"].get<int>());
        CHECK(f.columns() == e["columns"].get<int>());
        CHECK(f.bits_allocated() == e["bits_allocated"].get<int>());
        CHECK(f.bits_stored() == e["bits_stored"].get<int>());
        CHECK(f.pixel_representation() == e["pixel_representation"].get<int>());
        CHECK(f.photometric_interpretation() == e["photometric"].get<std::string>());
        CHECK(f.patient_sex() == e["sex"].get<std::string>());
        CHECK(f.patient_age() == e["age"].get<std::string>());
        CHECK(f.view_position() == e["view"].get<std::string>());
        CHECK(f.modality() == "DX");
        CXR_EXPECT_CLOSE(f.stored_values(), grid(e["stored"], false), 0.0, 0.0);
        CXR_EXPECT_CLOSE(f.modality_values(), grid(e["modality"], false), 1e-9, 1e-12);
        Tensor img = f.image();
        CHECK(img.dtype() == cxr::tensor::DType::f32);
        CXR_EXPECT_CLOSE(img, grid(e["display"], true), 1e-6, 0.0);  // f32 output
    }
}

TEST_CASE("dicom: tags and ages", "[cpu][dicom]") {
    DicomFile f = DicomFile::read(kDir + "explicit_signed16_rescale.dcm");
    CHECK(f.rescale_slope() == 2.5);
    CHECK(f.rescale_intercept() == -1024.0);
    CHECK(f.window_center() == 40.0);  // first of "40\400"
    CHECK(f.get_number(cxr::data::dicom_tag(0x0028, 0x1050), 1) == 400.0);
    CHECK(f.window_width() == 400.0);
    REQUIRE(f.patient_age_years());
    CHECK(*f.patient_age_years() == 2.5);  // "030M"
    CHECK(f.patient_id() == "TEST030M");
    DicomFile g = DicomFile::read(kDir + "implicit_mono1_u8.dcm");
    CHECK(*g.patient_age_years() == 70.0);
    CHECK_FALSE(g.window_center());
    CHECK(g.rescale_slope() == 1.0);
    // The sequence before the pixel module was skipped and the elements after it are found.
    CHECK(g.has(cxr::data::dicom_tag(0x0008, 0x1032)));
    CHECK(g.has(cxr::data::dicom_tag(0x7FE0, 0x0010)));
    CHECK_FALSE(g.has(cxr::data::dicom_tag(0x0008, 0x0100)));  // CodeValue lives inside the items only
}

TEST_CASE("dicom: compressed transfer syntaxes are rejected by UID and name", "[cpu][dicom]") {
    std::string msg;
    try {
        DicomFile::read(kDir + "jpeg_baseline.dcm");
    } catch (const cxr::Error& e) {
        msg = e.what();
    }
    CHECK(msg.find("jpeg_baseline.dcm") != std::string::npos);
    CHECK(msg.find("1.2.840.10008.1.2.4.50") != std::string::npos);
    CHECK(msg.find("JPEG Baseline (Process 1)") != std::string::npos);
    CHECK(cxr::data::transfer_syntax_name("1.2.840.10008.1.2.1.99") == "Deflated Explicit VR Little Endian");
    CHECK(cxr::data::transfer_syntax_name("1.2.840.10008.1.2.2") == "Explicit VR Big Endian (retired)");
}

TEST_CASE("dicom: truncated and corrupted files give errors, never crashes", "[cpu][dicom]") {
    for (const char* file : kFiles) {
        INFO(file);
        auto bytes = bytes_of(kDir + file);
        for (size_t n = 0; n < bytes.size(); ++n) {
            std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
            INFO("first " << n << " bytes");
            bool threw = false;
            try {
                DicomFile::parse(cut, file).image();
            } catch (const cxr::Error& e) {
                threw = true;
                CHECK(std::string(e.what()).find(file) != std::string::npos);
            }
            CHECK(threw);  // the pixel data is last: every cut loses part of it or what precedes it
        }
        for (size_t k = 128; k < bytes.size(); k += 3) {  // flip one byte at a time
            auto bad = bytes;
            bad[k] ^= 0xFF;
            try {
                DicomFile::parse(bad, file).image();
            } catch (const cxr::Error&) {
            }
        }
    }
    std::vector<uint8_t> not_dicom(300, 0x41);
    CHECK_THROWS_AS(DicomFile::parse(not_dicom, "plain.bin"), cxr::Error);
    CHECK_THROWS_AS(DicomFile::read("/nonexistent/x.dcm"), cxr::Error);
}
