// DICOM reading for uncompressed monochrome radiographs (DICOM PS3.10 file format, PS3.5 data encoding,
// PS3.3 C.7.6.3 image pixel module, C.11.1 modality LUT and C.11.2 VOI LUT).
//
// Supported: a Part 10 file (128-byte preamble, "DICM", the file meta group 0002 in explicit VR little endian)
// whose transfer syntax is
//     1.2.840.10008.1.2.1  Explicit VR Little Endian
//     1.2.840.10008.1.2    Implicit VR Little Endian.
// Every other transfer syntax (deflated, big endian, JPEG, JPEG-LS, JPEG 2000, RLE, ...) is rejected with a message
// naming its UID and, when known, its name. Sequences (SQ, and UN of undefined length, PS3.5 §6.2.2) of defined
// or undefined length, with items of defined or undefined length, are skipped correctly; only top-level elements
// are kept. Pixel data: one frame (the first when Number of Frames > 1), Samples per Pixel 1, Bits Allocated 8 or
// 16, Bits Stored <= Bits Allocated (the bits above High Bit = Bits Stored - 1 are masked off), Pixel
// Representation 0 (unsigned) or 1 (two's complement, sign-extended from Bits Stored).
//
// Values:
//   modality value  m = stored * RescaleSlope + RescaleIntercept        (PS3.3 C.11.1.2; slope 1, intercept 0
//                                                                        when absent)
//   display value in [0, 1]: with Window Center c and Width w (the first value of each), the linear VOI function
//   of PS3.3 C.11.2.1.2.1:  m <= c - 0.5 - (w-1)/2 -> 0;  m > c - 0.5 + (w-1)/2 -> 1;
//                           else ((m - (c - 0.5)) / (w - 1) + 0.5);
//   without a window: (m - min m) / (max m - min m) over the image (0 for a constant image).
//   MONOCHROME1 (minimum is white) is inverted after windowing: 1 - value, so that 1 is always white.
// Errors (cxr::Error) name the file, the byte offset and the tag being read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::data {

// A tag as (group << 16) | element, e.g. 0x00100040 for PatientSex (0010,0040).
using DicomTag = uint32_t;
constexpr DicomTag dicom_tag(uint16_t group, uint16_t element) { return ((uint32_t)group << 16) | element; }

struct DicomElement {
    std::string vr;              // as in the file (explicit VR) or "" (implicit VR)
    std::vector<uint8_t> value;  // raw little-endian value bytes (empty for skipped sequences)
    uint64_t offset = 0;         // byte offset of the element's tag in the file
};

// The name of a transfer syntax UID ("" when unknown to this table).
std::string transfer_syntax_name(const std::string& uid);

class DicomFile {
public:
    static DicomFile read(const std::string& path);
    static DicomFile parse(const std::vector<uint8_t>& bytes, const std::string& name);

    const std::string& source() const { return source_; }
    const std::string& transfer_syntax_uid() const { return transfer_syntax_; }
    bool has(DicomTag tag) const { return elements_.count(tag) > 0; }
    const DicomElement* find(DicomTag tag) const;
    // A string-valued element with trailing padding (spaces, NULs) removed; "" when absent.
    std::string get_string(DicomTag tag) const;
    // Numeric value `index` of an element: US/SS/UL/SL/FL/FD read as binary, DS/IS parsed from text
    // (backslash-separated values). In implicit VR the binary type comes from the tag (a small built-in table).
    std::optional<double> get_number(DicomTag tag, size_t index = 0) const;

    // Demographic and acquisition tags ("" when absent).
    std::string patient_sex() const { return get_string(dicom_tag(0x0010, 0x0040)); }    // M, F, O
    std::string patient_age() const { return get_string(dicom_tag(0x0010, 0x1010)); }    // e.g. "045Y"
    std::string view_position() const { return get_string(dicom_tag(0x0018, 0x5101)); }  // PA, AP, LL, ...
    std::string patient_id() const { return get_string(dicom_tag(0x0010, 0x0020)); }
    std::string modality() const { return get_string(dicom_tag(0x0008, 0x0060)); }
    std::string photometric_interpretation() const { return get_string(dicom_tag(0x0028, 0x0004)); }
    // PatientAge "nnnD/W/M/Y" in years (days/365.25, weeks*7/365.25, months/12); nullopt when absent or malformed.
    std::optional<double> patient_age_years() const;

    int rows() const;
    int columns() const;
    int bits_allocated() const;
    int bits_stored() const;
    int pixel_representation() const;  // 0 unsigned, 1 signed
    double rescale_slope() const;
    double rescale_intercept() const;
    std::optional<double> window_center() const;
    std::optional<double> window_width() const;

    // Stored pixel values of the first frame as f64 [H, W] (masked and sign-extended as described above).
    tensor::Tensor stored_values() const;
    // Modality values m (f64 [H, W]).
    tensor::Tensor modality_values() const;
    // Display image f32 [1, H, W] in [0, 1] (windowed or min-max, MONOCHROME1 inverted).
    tensor::Tensor image() const;

    const std::map<DicomTag, DicomElement>& elements() const { return elements_; }

private:
    std::string source_;
    std::string transfer_syntax_;
    bool explicit_vr_ = true;
    std::map<DicomTag, DicomElement> elements_;  // file meta group and top-level dataset
};

// Convenience: DicomFile::read(path).image().
tensor::Tensor read_dicom_image(const std::string& path);

}  // namespace cxr::data
