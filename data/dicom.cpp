// DICOM reader for uncompressed little-endian transfer syntaxes. Encoding rules from DICOM PS3.5 (§7.1 data
// elements with explicit/implicit VR, §7.5 sequences and items with defined/undefined lengths, §6.2.2 UN with
// undefined length read as implicit VR little endian, §8 pixel data), file format from PS3.10 §7, transfer syntax
// names from PS3.6 Annex A, pixel/LUT semantics from PS3.3 C.7.6.3 and C.11. See dicom.h.
#include "data/dicom.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "tensor/error.h"
#include "tensor/ops/creation.h"

namespace cxr::data {

using tensor::Tensor;

namespace {

constexpr uint32_t kUndefinedLength = 0xFFFFFFFFu;
constexpr DicomTag kItem = 0xFFFEE000u;
constexpr DicomTag kItemDelimitation = 0xFFFEE00Du;
constexpr DicomTag kSequenceDelimitation = 0xFFFEE0DDu;
constexpr DicomTag kTransferSyntax = 0x00020010u;
constexpr DicomTag kPixelData = 0x7FE00010u;
constexpr int kMaxDepth = 64;  // nesting limit for sequences (protects the stack from crafted files)

const char* kExplicitLE = "1.2.840.10008.1.2.1";
const char* kImplicitLE = "1.2.840.10008.1.2";

std::string tag_str(DicomTag t) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "(%04X,%04X)", (unsigned)(t >> 16), (unsigned)(t & 0xFFFF));
    return buf;
}

// VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1).
bool long_length_vr(const std::string& vr) {
    static const std::set<std::string> k = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
    return k.count(vr) > 0;
}

// The VR of the tags this reader interprets numerically, for implicit VR files (PS3.6 data dictionary).
std::string implicit_vr_of(DicomTag t) {
    switch (t) {
        case 0x00280002: case 0x00280010: case 0x00280011: case 0x00280100: case 0x00280101: case 0x00280102:
        case 0x00280103: return "US";
        case 0x00280008: return "IS";
        case 0x00281050: case 0x00281051: case 0x00281052: case 0x00281053: return "DS";
        case 0x00020000: return "UL";
        default: return "";
    }
}

class Parser {
public:
    Parser(const std::vector<uint8_t>& b, const std::string& name) : b_(b), name_(name) {}

    [[noreturn]] void fail(size_t at, const std::string& what) const {
        CXR_FAIL(name_, ": byte offset ", at, ": ", what);
    }
    void need(size_t k, const char* what, DicomTag tag) const {
        if (pos + k > b_.size() || pos + k < pos)
            fail(pos, std::string("truncated file: ") + std::to_string(k) + " bytes needed for the " + what + " of " +
                          tag_str(tag) + ", " + std::to_string(b_.size() - pos) + " left");
    }
    uint16_t u16() {
        uint16_t v = (uint16_t)(b_[pos] | (b_[pos + 1] << 8));
        pos += 2;
        return v;
    }
    uint32_t u32() {
        uint32_t v = (uint32_t)b_[pos] | ((uint32_t)b_[pos + 1] << 8) | ((uint32_t)b_[pos + 2] << 16) |
                     ((uint32_t)b_[pos + 3] << 24);
        pos += 4;
        return v;
    }

    // Reads one element header and value. Sequences are skipped; other values are stored when `out` is given.
    // Returns the tag.
    DicomTag element(bool explicit_vr, int depth, std::map<DicomTag, DicomElement>* out) {
        const size_t at = pos;
        need(4, "tag", 0);
        uint16_t g = u16(), e = u16();
        const DicomTag tag = ((uint32_t)g << 16) | e;
        if (g == 0xFFFE) fail(at, "unexpected item/delimitation tag " + tag_str(tag) + " outside a sequence");
        std::string vr;
        uint32_t len = 0;
        if (explicit_vr) {
            need(4, "VR and length", tag);
            vr.assign((const char*)&b_[pos], 2);
            pos += 2;
            if (!std::isupper((unsigned char)vr[0]) || !std::isupper((unsigned char)vr[1]))
                fail(at, "invalid VR bytes for element " + tag_str(tag) + " (is the file really explicit VR?)");
            if (long_length_vr(vr)) {
                pos += 2;  // reserved
                need(4, "length", tag);
                len = u32();
            } else {
                len = u16();
            }
        } else {
            need(4, "length", tag);
            len = u32();
        }
        if (len == kUndefinedLength) {
            if (tag == kPixelData)
                fail(at, "encapsulated (compressed) pixel data in an uncompressed transfer syntax");
            if (explicit_vr && vr == "SQ") {
                sequence(true, depth + 1, tag);
            } else if (vr == "UN" || !explicit_vr) {  // PS3.5 §6.2.2: UN of undefined length is implicit VR LE
                sequence(false, depth + 1, tag);
            } else {
                fail(at, "undefined length on element " + tag_str(tag) + " of VR " + vr);
            }
            if (out) (*out)[tag] = DicomElement{vr, {}, at};
            return tag;
        }
        need(len, "value", tag);
        if (out && vr != "SQ") (*out)[tag] = DicomElement{vr, std::vector<uint8_t>(b_.begin() + pos, b_.begin() + pos + len), at};
        else if (out) (*out)[tag] = DicomElement{vr, {}, at};
        pos += len;
        return tag;
    }

    // Skips a sequence of undefined length: items until the sequence delimitation item.
    void sequence(bool explicit_vr, int depth, DicomTag owner) {
        if (depth > kMaxDepth) fail(pos, "sequences nested deeper than " + std::to_string(kMaxDepth));
        for (;;) {
            const size_t at = pos;
            need(8, "item header", owner);
            uint16_t g = u16(), e = u16();
            const DicomTag tag = ((uint32_t)g << 16) | e;
            uint32_t len = u32();
            if (tag == kSequenceDelimitation) return;
            if (tag != kItem)
                fail(at, "expected an item or the sequence delimitation in sequence " + tag_str(owner) + ", found " +
                             tag_str(tag));
            if (len == kUndefinedLength) {
                item(explicit_vr, depth, owner);
            } else {
                need(len, "item", owner);
                pos += len;
            }
        }
    }

    // Skips the elements of an item of undefined length, up to its item delimitation.
    void item(bool explicit_vr, int depth, DicomTag owner) {
        for (;;) {
            need(4, "tag in an item", owner);
            if (b_[pos] == 0xFE && b_[pos + 1] == 0xFF && b_[pos + 2] == 0x0D && b_[pos + 3] == 0xE0) {
                need(8, "item delimitation", owner);
                pos += 8;
                return;
            }
            element(explicit_vr, depth, nullptr);
        }
    }

    size_t pos = 0;

private:
    const std::vector<uint8_t>& b_;
    const std::string& name_;
};

std::string trim_padding(const std::vector<uint8_t>& v) {
    std::string s(v.begin(), v.end());
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
}

}  // namespace

std::string transfer_syntax_name(const std::string& uid) {
    static const std::map<std::string, std::string> k = {
        {"1.2.840.10008.1.2", "Implicit VR Little Endian"},
        {"1.2.840.10008.1.2.1", "Explicit VR Little Endian"},
        {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"},
        {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"},
        {"1.2.840.10008.1.2.2", "Explicit VR Big Endian (retired)"},
        {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"},
        {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"},
        {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"},
        {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])"},
        {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression"},
        {"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression"},
        {"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)"},
        {"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression"},
        {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)"},
        {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)"},
        {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression"},
        {"1.2.840.10008.1.2.5", "RLE Lossless"},
    };
    auto it = k.find(uid);
    return it == k.end() ? "" : it->second;
}

DicomFile DicomFile::read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) CXR_FAIL(path, ": cannot open for reading (", std::strerror(errno), ")");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) CXR_FAIL(path, ": read error");
    return parse(bytes, path);
}

DicomFile DicomFile::parse(const std::vector<uint8_t>& bytes, const std::string& name) {
    DicomFile f;
    f.source_ = name;
    if (bytes.size() < 132 || std::memcmp(bytes.data() + 128, "DICM", 4) != 0)
        CXR_FAIL(name, ": not a DICOM Part 10 file (no \"DICM\" marker after the 128-byte preamble)");
    Parser p(bytes, name);
    p.pos = 132;
    // File meta information: group 0002, always explicit VR little endian (PS3.10 §7.1).
    while (p.pos + 2 <= bytes.size() && bytes[p.pos] == 0x02 && bytes[p.pos + 1] == 0x00)
        p.element(true, 0, &f.elements_);
    f.transfer_syntax_ = f.get_string(kTransferSyntax);
    if (f.transfer_syntax_.empty())
        CXR_FAIL(name, ": no Transfer Syntax UID (0002,0010) in the file meta information");
    if (f.transfer_syntax_ == kExplicitLE) {
        f.explicit_vr_ = true;
    } else if (f.transfer_syntax_ == kImplicitLE) {
        f.explicit_vr_ = false;
    } else {
        const std::string n = transfer_syntax_name(f.transfer_syntax_);
        CXR_FAIL(name, ": transfer syntax ", f.transfer_syntax_, " (", n.empty() ? "unknown" : n,
                 ") is not supported; cxr reads only Explicit VR Little Endian (1.2.840.10008.1.2.1) and Implicit VR "
                 "Little Endian (1.2.840.10008.1.2): decompress the file first (e.g. gdcmconv --raw or dcmdjpeg)");
    }
    while (p.pos < bytes.size()) p.element(f.explicit_vr_, 0, &f.elements_);
    return f;
}

const DicomElement* DicomFile::find(DicomTag tag) const {
    auto it = elements_.find(tag);
    return it == elements_.end() ? nullptr : &it->second;
}

std::string DicomFile::get_string(DicomTag tag) const {
    const DicomElement* e = find(tag);
    return e ? trim_padding(e->value) : std::string();
}

std::optional<double> DicomFile::get_number(DicomTag tag, size_t index) const {
    const DicomElement* e = find(tag);
    if (!e || e->value.empty()) return std::nullopt;
    std::string vr = e->vr.empty() ? implicit_vr_of(tag) : e->vr;
    const auto& v = e->value;
    auto binary = [&](size_t width) -> const uint8_t* {
        if ((index + 1) * width > v.size()) return nullptr;
        return v.data() + index * width;
    };
    auto le = [](const uint8_t* p, size_t n) {
        uint64_t x = 0;
        for (size_t i = 0; i < n; ++i) x |= (uint64_t)p[i] << (8 * i);
        return x;
    };
    if (vr == "US" || vr == "SS") {
        const uint8_t* p = binary(2);
        if (!p) return std::nullopt;
        uint16_t x = (uint16_t)le(p, 2);
        return vr == "US" ? (double)x : (double)(int16_t)x;
    }
    if (vr == "UL" || vr == "SL") {
        const uint8_t* p = binary(4);
        if (!p) return std::nullopt;
        uint32_t x = (uint32_t)le(p, 4);
        return vr == "UL" ? (double)x : (double)(int32_t)x;
    }
    if (vr == "FL") {
        const uint8_t* p = binary(4);
        if (!p) return std::nullopt;
        uint32_t x = (uint32_t)le(p, 4);
        float f;
        std::memcpy(&f, &x, 4);
        return (double)f;
    }
    if (vr == "FD") {
        const uint8_t* p = binary(8);
        if (!p) return std::nullopt;
        uint64_t x = le(p, 8);
        double d;
        std::memcpy(&d, &x, 8);
        return d;
    }
    // Text (DS, IS, or an unknown VR in implicit files): backslash-separated values.
    std::string s = trim_padding(v);
    size_t start = 0;
    for (size_t i = 0; i < index; ++i) {
        start = s.find('\\', start);
        if (start == std::string::npos) return std::nullopt;
        ++start;
    }
    std::string item = s.substr(start, s.find('\\', start) - start);
    const char* b = item.c_str();
    while (*b == ' ') ++b;
    char* end = nullptr;
    double d = std::strtod(b, &end);
    if (end == b) return std::nullopt;
    while (*end == ' ') ++end;
    if (*end != '\0' || !std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<double> DicomFile::patient_age_years() const {
    std::string a = patient_age();
    if (a.size() != 4) return std::nullopt;
    for (int i = 0; i < 3; ++i)
        if (!std::isdigit((unsigned char)a[i])) return std::nullopt;
    double n = std::atof(a.substr(0, 3).c_str());
    switch (a[3]) {
        case 'D': return n / 365.25;
        case 'W': return n * 7.0 / 365.25;
        case 'M': return n / 12.0;
        case 'Y': return n;
        default: return std::nullopt;
    }
}

namespace {
int required_int(const DicomFile& f, DicomTag tag, const char* what) {
    auto v = f.get_number(tag);
    if (!v) CXR_FAIL(f.source(), ": missing or unreadable ", what, " ", tag_str(tag));
    return (int)*v;
}
}  // namespace

int DicomFile::rows() const { return required_int(*this, 0x00280010, "Rows"); }
int DicomFile::columns() const { return required_int(*this, 0x00280011, "Columns"); }
int DicomFile::bits_allocated() const { return required_int(*this, 0x00280100, "Bits Allocated"); }
int DicomFile::bits_stored() const {
    auto v = get_number(0x00280101);
    return v ? (int)*v : bits_allocated();
}
int DicomFile::pixel_representation() const {
    auto v = get_number(0x00280103);
    return v ? (int)*v : 0;
}
double DicomFile::rescale_slope() const { return get_number(0x00281053).value_or(1.0); }
double DicomFile::rescale_intercept() const { return get_number(0x00281052).value_or(0.0); }
std::optional<double> DicomFile::window_center() const { return get_number(0x00281050); }
std::optional<double> DicomFile::window_width() const { return get_number(0x00281051); }

Tensor DicomFile::stored_values() const {
    const int H = rows(), W = columns(), ba = bits_allocated(), bs = bits_stored(), pr = pixel_representation();
    const int spp = (int)get_number(0x00280002).value_or(1.0);
    if (spp != 1) CXR_FAIL(source_, ": Samples per Pixel ", spp, " not supported (monochrome images only)");
    if (ba != 8 && ba != 16) CXR_FAIL(source_, ": Bits Allocated ", ba, " not supported (8 or 16)");
    if (bs < 1 || bs > ba) CXR_FAIL(source_, ": Bits Stored ", bs, " is outside 1..Bits Allocated (", ba, ")");
    if (pr != 0 && pr != 1) CXR_FAIL(source_, ": Pixel Representation ", pr, " is neither 0 nor 1");
    if (H <= 0 || W <= 0) CXR_FAIL(source_, ": bad image size ", H, "x", W);
    const int hb = (int)get_number(0x00280102).value_or(bs - 1);
    if (hb < bs - 1 || hb >= ba) CXR_FAIL(source_, ": High Bit ", hb, " inconsistent with Bits Stored ", bs);
    const DicomElement* pd = find(kPixelData);
    if (!pd) CXR_FAIL(source_, ": no Pixel Data (7FE0,0010)");
    const size_t npix = (size_t)H * W, bytes_per = (size_t)ba / 8;
    if (pd->value.size() < npix * bytes_per)
        CXR_FAIL(source_, ": byte offset ", pd->offset, ": Pixel Data holds ", pd->value.size(), " bytes, one ", H, "x",
                 W, " frame of ", ba, "-bit samples needs ", npix * bytes_per);
    const int shift = hb + 1 - bs;
    const uint32_t mask = (bs == 32) ? 0xFFFFFFFFu : ((1u << bs) - 1u);
    std::vector<double> out(npix);
    const uint8_t* p = pd->value.data();
    for (size_t i = 0; i < npix; ++i) {
        uint32_t raw = ba == 8 ? p[i] : (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8));
        uint32_t s = (raw >> shift) & mask;
        int64_t v = s;
        if (pr == 1 && (s & (1u << (bs - 1)))) v = (int64_t)s - ((int64_t)1 << bs);
        out[i] = (double)v;
    }
    return tensor::from_vector(out, {H, W});
}

Tensor DicomFile::modality_values() const {
    Tensor s = stored_values();
    const double slope = rescale_slope(), intercept = rescale_intercept();
    std::vector<double> v = s.to_vector<double>();
    for (double& x : v) x = x * slope + intercept;
    return tensor::from_vector(v, s.shape());
}

Tensor DicomFile::image() const {
    const std::string pi = photometric_interpretation();
    if (pi != "MONOCHROME1" && pi != "MONOCHROME2")
        CXR_FAIL(source_, ": Photometric Interpretation '", pi, "' not supported (MONOCHROME1 or MONOCHROME2)");
    Tensor m = modality_values();  // [H, W] f64
    std::vector<double> v = m.to_vector<double>();
    std::vector<float> out(v.size());
    auto c = window_center(), w = window_width();
    if (c && w && *w >= 1.0) {
        // PS3.3 C.11.2.1.2.1, linear function, output range [0, 1].
        const double lo = *c - 0.5 - (*w - 1.0) / 2.0, hi = *c - 0.5 + (*w - 1.0) / 2.0;
        for (size_t i = 0; i < v.size(); ++i) {
            double x = v[i], y;
            if (x <= lo) y = 0.0;
            else if (x > hi) y = 1.0;
            else y = (*w == 1.0) ? 1.0 : ((x - (*c - 0.5)) / (*w - 1.0) + 0.5);
            out[i] = (float)std::min(1.0, std::max(0.0, y));
        }
    } else {
        double lo = v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
        double hi = v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
        for (size_t i = 0; i < v.size(); ++i) out[i] = hi > lo ? (float)((v[i] - lo) / (hi - lo)) : 0.0f;
    }
    if (pi == "MONOCHROME1")
        for (float& x : out) x = 1.0f - x;
    return tensor::from_vector(out, {1, m.size(0), m.size(1)});
}

Tensor read_dicom_image(const std::string& path) { return DicomFile::read(path).image(); }

}  // namespace cxr::data
