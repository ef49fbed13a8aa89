// Geometric image transforms for batches [N, C, H, W] (or one image [C, H, W]) with the semantics of
// torchvision.transforms.v2.functional: crop, center_crop, horizontal/vertical flip, rotate and affine.
//
//   center_crop(x, {h, w}): top = round((H - h) / 2), left = round((W - w) / 2) (round half to even, as Python);
//     a crop larger than the image first pads with zeros: left (w - W) // 2, right (w - W + 1) // 2 (same for H).
//   affine / rotate: inverse mapping of every output pixel (torchvision's _get_inverse_affine_matrix, PIL's
//     convention). With the image centre as origin (x' = j + ½ - W/2, y' = i + ½ - H/2), the forward map is
//       M = T(translate) · C(center) · R(angle) · S(scale) · SHy(shear_y) · SHx(shear_x) · C⁻¹,
//       R·S·SH = s [cos(a - sy)/cos(sy),  -cos(a - sy) tan(sx)/cos(sy) - sin(a)]
//                  [sin(a - sy)/cos(sy),  -sin(a - sy) tan(sx)/cos(sy) + cos(a)]
//     and the output pixel samples the input at M⁻¹(x', y') + ((W-1)/2, (H-1)/2) (grid_sample with
//     align_corners=False, zero padding). Angles are in degrees; rotate(angle) is affine with -angle (so a positive
//     angle turns the image counter-clockwise, as torchvision). Sampling is nearest (round half to even) or bilinear.
//     fill: none -> out-of-image samples read 0; a value v -> torchvision's mask trick: with m = the sampled
//     "inside" mask (the same interpolation of a ones image), bilinear gives m·(y - v) + v, nearest gives v where
//     m < ½. rotate keeps torchvision's fast paths: 0° copies, 180° reverses both axes, 90°/270° on a square image
//     transpose (exact, no fill).
// The sampling positions are computed on the host in float (as torchvision's float grid); the pixels are read
// with tensor gather, so the same code runs on every device. Per-image matrices are supported (random transforms).
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "tensor/ops/spatial.h"
#include "tensor/tensor.h"

namespace cxr::vision {

enum class Sampling { nearest, bilinear };

tensor::Tensor crop(const tensor::Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width);
tensor::Tensor center_crop(const tensor::Tensor& x, tensor::Size2 size);
tensor::Tensor horizontal_flip(const tensor::Tensor& x);  // reverses W
tensor::Tensor vertical_flip(const tensor::Tensor& x);    // reverses H

struct AffineParams {
    double angle = 0.0;                   // degrees (torchvision affine convention)
    std::array<double, 2> translate{};    // pixels {x, y}
    double scale = 1.0;
    std::array<double, 2> shear{};        // degrees {x, y}
    std::optional<std::array<double, 2>> center;  // pixel coordinates {x, y}; none = the image centre
};

// The 2x3 inverse matrix [a, b, c, d, e, f] in centred coordinates (torchvision's _get_inverse_affine_matrix).
std::array<double, 6> inverse_affine_matrix(const AffineParams& p, int64_t height, int64_t width);

tensor::Tensor affine(const tensor::Tensor& x, const AffineParams& p, Sampling mode = Sampling::nearest,
                      std::optional<double> fill = std::nullopt);
tensor::Tensor rotate(const tensor::Tensor& x, double angle, Sampling mode = Sampling::nearest,
                      std::optional<double> fill = std::nullopt);
// One inverse matrix per image of x [N, C, H, W] (output size = input size).
tensor::Tensor warp_affine(const tensor::Tensor& x, const std::vector<std::array<double, 6>>& inverse_matrices,
                           Sampling mode, std::optional<double> fill);

}  // namespace cxr::vision
