// Image file I/O: PNG (8- and 16-bit) and JPEG to float tensors, and PNG writing.
//
// Decoding uses stb_image from Debian's libstb-dev (the compiled libstb.so; no implementation is compiled here).
// A decoded image becomes an f32 tensor [C, H, W] on the CPU with values in [0, 1]:
//     x = v / 255 for 8-bit samples, x = v / 65535 for 16-bit samples (PNG only; JPEG is 8-bit).
// Channels: the file's own (1 gray, 3 RGB; an alpha channel is dropped) or converted on request:
//     gray from RGB: ITU-R BT.601 luma  Y = 0.299 R + 0.587 G + 0.114 B  (the weights PIL's convert("L") uses),
//                    computed in float on the normalised values (stb's own integer luma is not used);
//     RGB from gray: the gray plane repeated three times.
//
// Writing: 8-bit PNG through stb_image_write (libstb). stb_image_write has no 16-bit PNG output, so 16-bit PNGs
// are written by a minimal encoder here (PNG specification, W3C/ISO 15948: signature, IHDR, one IDAT holding the
// zlib-compressed rows with filter type 0 and big-endian samples, IEND; CRC-32 and deflate from zlib).
// Values are clamped to [0, 1] and rounded to the nearest level: v = round(x * (2^bits - 1)); NaN is an error.
// Files are written to a temporary name beside the target and renamed when complete.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::data {

enum class ColorMode { keep, gray, rgb };

struct ImageInfo {
    int width = 0;
    int height = 0;
    int channels = 0;   // as stored in the file (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
    int bit_depth = 8;  // 8 or 16
};

// Reads a PNG or JPEG file into f32 [C, H, W] in [0, 1]. Throws cxr::Error naming the file and stb's reason on
// unreadable, corrupt or truncated input.
tensor::Tensor read_image(const std::string& path, ColorMode mode = ColorMode::keep);
// The same from bytes in memory; `name` is what errors call the input.
tensor::Tensor decode_image(const uint8_t* data, size_t size, const std::string& name,
                            ColorMode mode = ColorMode::keep);
ImageInfo read_image_info(const std::string& path);
ImageInfo image_info(const uint8_t* data, size_t size, const std::string& name);

// Writes image ([C, H, W] with C in {1, 2, 3, 4}, or [H, W]; any dtype, any device; values in [0, 1]) as a PNG
// with 8 or 16 bits per sample.
void write_png(const std::string& path, const tensor::Tensor& image, int bit_depth = 8);
std::vector<uint8_t> encode_png(const tensor::Tensor& image, int bit_depth = 8);

}  // namespace cxr::data
