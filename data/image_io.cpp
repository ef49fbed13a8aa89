// Image file I/O: decoding through stb_image (libstb), 8-bit PNG writing through stb_image_write, and a minimal
// 16-bit PNG encoder (PNG specification, W3C Recommendation / ISO/IEC 15948: chunks, IHDR fields, filter type 0,
// zlib-wrapped deflate data, CRC-32 over chunk type + data). See image_io.h for the value mapping.
#include "data/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "tensor/error.h"
#include "tensor/ops/creation.h"

namespace cxr::data {

using tensor::DType;
using tensor::Tensor;

namespace {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) CXR_FAIL(path, ": cannot open for reading (", std::strerror(errno), ")");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) CXR_FAIL(path, ": read error");
    return bytes;
}

const char* stb_reason() {
    const char* r = stbi_failure_reason();
    return r ? r : "unknown reason";
}

// Writes bytes to a temporary file beside `path`, then renames it over `path`.
void write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
    const std::string tmp = path + ".tmp-cxr";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) CXR_FAIL(tmp, ": cannot open for writing (", std::strerror(errno), ")");
        out.write((const char*)bytes.data(), (std::streamsize)bytes.size());
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            CXR_FAIL(tmp, ": write error");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        CXR_FAIL(path, ": cannot rename the temporary file into place (", ec.message(), ")");
    }
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back((uint8_t)(v >> 24));
    out.push_back((uint8_t)(v >> 16));
    out.push_back((uint8_t)(v >> 8));
    out.push_back((uint8_t)v);
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
    put_u32_be(out, (uint32_t)data.size());
    const size_t type_at = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, out.data() + type_at, (uInt)(4 + data.size()));
    put_u32_be(out, (uint32_t)crc);
}

}  // namespace

ImageInfo image_info(const uint8_t* data, size_t size, const std::string& name) {
    CXR_CHECK(size <= (size_t)INT32_MAX, name, ": file too large for the image decoder (", size, " bytes)");
    ImageInfo info;
    if (!stbi_info_from_memory(data, (int)size, &info.width, &info.height, &info.channels))
        CXR_FAIL(name, ": not a readable PNG/JPEG image (", stb_reason(), ")");
    info.bit_depth = stbi_is_16_bit_from_memory(data, (int)size) ? 16 : 8;
    return info;
}

ImageInfo read_image_info(const std::string& path) {
    auto bytes = read_file_bytes(path);
    return image_info(bytes.data(), bytes.size(), path);
}

Tensor decode_image(const uint8_t* data, size_t size, const std::string& name, ColorMode mode) {
    const ImageInfo info = image_info(data, size, name);
    int w = 0, h = 0, comp = 0;
    const int64_t npix = (int64_t)info.width * info.height;
    std::vector<float> planes;  // [comp, H, W] normalised samples of the file's channels
    if (info.bit_depth == 16) {
        std::unique_ptr<stbi_us, void (*)(void*)> px(stbi_load_16_from_memory(data, (int)size, &w, &h, &comp, 0),
                                                     stbi_image_free);
        if (!px) CXR_FAIL(name, ": cannot decode the 16-bit image (", stb_reason(), ")");
        planes.resize((size_t)comp * npix);
        for (int64_t i = 0; i < npix; ++i)
            for (int c = 0; c < comp; ++c) planes[(size_t)c * npix + i] = (float)px.get()[i * comp + c] / 65535.0f;
    } else {
        std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, (int)size, &w, &h, &comp, 0),
                                                     stbi_image_free);
        if (!px) CXR_FAIL(name, ": cannot decode the image (", stb_reason(), ")");
        planes.resize((size_t)comp * npix);
        for (int64_t i = 0; i < npix; ++i)
            for (int c = 0; c < comp; ++c) planes[(size_t)c * npix + i] = (float)px.get()[i * comp + c] / 255.0f;
    }
    CXR_CHECK(w == info.width && h == info.height, name, ": decoder size disagrees with the header");
    const int color = (comp >= 3) ? 3 : 1;  // colour channels, alpha (channel 2 or 4) dropped
    const int out_c = mode == ColorMode::keep ? color : (mode == ColorMode::gray ? 1 : 3);
    std::vector<float> out((size_t)out_c * npix);
    if (out_c == color) {
        std::copy(planes.begin(), planes.begin() + (int64_t)color * npix, out.begin());
    } else if (out_c == 1) {  // RGB -> BT.601 luma
        for (int64_t i = 0; i < npix; ++i)
            out[i] = 0.299f * planes[i] + 0.587f * planes[npix + i] + 0.114f * planes[2 * npix + i];
    } else {  // gray -> RGB
        for (int c = 0; c < 3; ++c) std::copy(planes.begin(), planes.begin() + npix, out.begin() + c * npix);
    }
    return tensor::from_vector(out, {out_c, h, w});
}

Tensor read_image(const std::string& path, ColorMode mode) {
    auto bytes = read_file_bytes(path);
    return decode_image(bytes.data(), bytes.size(), path, mode);
}

std::vector<uint8_t> encode_png(const Tensor& image, int bit_depth) {
    CXR_CHECK(bit_depth == 8 || bit_depth == 16, "encode_png: bit_depth must be 8 or 16, got ", bit_depth);
    CXR_CHECK(image.dim() == 2 || image.dim() == 3, "encode_png: expected [C, H, W] or [H, W], got ",
              tensor::shape_str(image.shape()));
    Tensor img = image.dim() == 2 ? image.unsqueeze(0) : image;  // [C, H, W]
    const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
    CXR_CHECK(C >= 1 && C <= 4, "encode_png: 1 to 4 channels supported, got ", C);
    CXR_CHECK(H > 0 && W > 0 && H < (1 << 30) && W < (1 << 30), "encode_png: bad image size ",
              tensor::shape_str(img.shape()));
    std::vector<float> v = img.detach().to(tensor::Device::cpu()).to(DType::f32).contiguous().to_vector<float>();
    const double maxv = bit_depth == 8 ? 255.0 : 65535.0;
    auto level = [&](int64_t c, int64_t y, int64_t x) -> uint32_t {
        float f = v[(size_t)((c * H + y) * W + x)];
        CXR_CHECK(!std::isnan(f), "encode_png: NaN at channel ", c, ", row ", y, ", column ", x);
        double d = std::min(1.0, std::max(0.0, (double)f));
        return (uint32_t)std::lround(d * maxv);
    };
    if (bit_depth == 8) {
        std::vector<uint8_t> px((size_t)(C * H * W));  // interleaved [H, W, C]
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
                for (int64_t c = 0; c < C; ++c) px[(size_t)((y * W + x) * C + c)] = (uint8_t)level(c, y, x);
        std::vector<uint8_t> out;
        auto sink = [](void* ctx, void* data, int n) {
            auto* o = static_cast<std::vector<uint8_t>*>(ctx);
            o->insert(o->end(), (uint8_t*)data, (uint8_t*)data + n);
        };
        if (!stbi_write_png_to_func(sink, &out, (int)W, (int)H, (int)C, px.data(), (int)(W * C)))
            CXR_FAIL("encode_png: stb_image_write failed");
        return out;
    }
    // 16-bit: our own encoder. Raw scanlines: a filter-type byte (0 = None) then big-endian samples.
    const size_t row_bytes = 1 + (size_t)(W * C * 2);
    std::vector<uint8_t> raw(row_bytes * (size_t)H);
    for (int64_t y = 0; y < H; ++y) {
        uint8_t* r = raw.data() + (size_t)y * row_bytes;
        r[0] = 0;
        for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c) {
                uint32_t s = level(c, y, x);
                r[1 + (x * C + c) * 2] = (uint8_t)(s >> 8);
                r[2 + (x * C + c) * 2] = (uint8_t)s;
            }
    }
    uLongf zlen = compressBound((uLong)raw.size());
    std::vector<uint8_t> z(zlen);
    if (compress2(z.data(), &zlen, raw.data(), (uLong)raw.size(), Z_DEFAULT_COMPRESSION) != Z_OK)
        CXR_FAIL("encode_png: zlib compression failed");
    z.resize(zlen);
    static const uint8_t kColorType[5] = {0, 0, 4, 2, 6};  // by channel count: gray, gray+alpha, RGB, RGBA
    std::vector<uint8_t> ihdr;
    put_u32_be(ihdr, (uint32_t)W);
    put_u32_be(ihdr, (uint32_t)H);
    ihdr.push_back(16);              // bit depth
    ihdr.push_back(kColorType[C]);   // colour type
    ihdr.push_back(0);               // compression method: deflate
    ihdr.push_back(0);               // filter method 0
    ihdr.push_back(0);               // no interlace
    std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    put_chunk(out, "IHDR", ihdr);
    put_chunk(out, "IDAT", z);
    put_chunk(out, "IEND", {});
    return out;
}

void write_png(const std::string& path, const Tensor& image, int bit_depth) {
    write_atomically(path, encode_png(image, bit_depth));
}

}  // namespace cxr::data
