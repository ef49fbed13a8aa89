// Intensity transforms for float images in [0, 1], batches [N, C, H, W] (or one image [C, H, W]), with the
// semantics of torchvision.transforms.v2.functional on float tensors (bound = 1):
//   adjust_brightness(x, f) = clamp(f·x, 0, 1)
//   adjust_contrast(x, f)   = clamp(f·x + (1 - f)·m, 0, 1), m = per-image mean of the grayscale image (C = 1: x
//                             itself; C = 3: 0.2989 R + 0.587 G + 0.114 B)
//   adjust_gamma(x, g, k)   = x^g, and clamp(k·x^g, 0, 1) when the gain k ≠ 1
//   adjust_sharpness(x, f)  : s = x blurred by [[1,1,1],[1,5,1],[1,1,1]]/13 on the interior (border pixels keep x);
//                             clamp(x + (1 - f)(s - x), 0, 1)   (images smaller than 3x3 are returned as they are)
//   autocontrast(x)         = clamp((x - lo) / (hi - lo), 0, 1) per image and channel (lo = 0, hi - lo = 1 where
//                             the plane is constant)
//   posterize(x, bits)      = min(⌊x·L⌋, L - 1) / L,  L = 2^bits   (torchvision's float mapping: x quantised to L
//                             levels, the float counterpart of keeping the top `bits` bits of a uint8 value)
//   solarize(x, t)          = x ≥ t ? 1 - x : x
//   equalize(x)             : torchvision's (PIL's) histogram equalisation on u = ⌊x·(256 - 10⁻³)⌋ (uint8): per
//                             image/channel histogram h, step = ⌊(#pixels - h[last non-zero bin]) / 255⌋,
//                             lut[0] = 0, lut[k] = min(⌊(cdf[k-1] + ⌊step/2⌋) / step⌋, 255); step = 0 keeps u; result
//                             lut[u] / 255. The histogram is computed on the host (data-dependent table).
//   gaussian_blur(x, {kx, ky}, {sx, sy}): reflect padding by k//2, then a separable normalised Gaussian
//                             g_i ∝ exp(-(i - (k-1)/2)² / (2σ²)); kernel sizes are odd and given as {width, height}
//                             (torchvision's order).
//   normalize(x, mean, std) = (x - mean[c]) / std[c]
//   add_gaussian_noise      = x + σ·z (+ mean), z ~ N(0, 1) from a cxr Generator, optionally clamped to [0, 1]
//                             (torchvision.transforms.v2.GaussianNoise).
// Everything except equalize is built from tensor ops (elementwise, reductions, conv2d, pad, where).
#pragma once

#include <array>
#include <vector>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace cxr::vision {

tensor::Tensor adjust_brightness(const tensor::Tensor& x, double factor);
tensor::Tensor adjust_contrast(const tensor::Tensor& x, double factor);
tensor::Tensor adjust_gamma(const tensor::Tensor& x, double gamma, double gain = 1.0);
tensor::Tensor adjust_sharpness(const tensor::Tensor& x, double factor);
tensor::Tensor autocontrast(const tensor::Tensor& x);
tensor::Tensor posterize(const tensor::Tensor& x, int bits);
tensor::Tensor solarize(const tensor::Tensor& x, double threshold);
tensor::Tensor equalize(const tensor::Tensor& x);
tensor::Tensor gaussian_blur(const tensor::Tensor& x, std::array<int64_t, 2> kernel_size, std::array<double, 2> sigma);
// The normalised 1-D Gaussian kernel of gaussian_blur (double, host).
std::vector<double> gaussian_kernel1d(int64_t size, double sigma);
tensor::Tensor normalize(const tensor::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std);
tensor::Tensor add_gaussian_noise(const tensor::Tensor& x, double sigma, tensor::Generator& gen, double mean = 0.0,
                                  bool clip = true);

// Per-image factors: factors[n] applies to image n of x [N, C, H, W] (used by the random transforms).
tensor::Tensor adjust_brightness(const tensor::Tensor& x, const std::vector<double>& factors);
tensor::Tensor adjust_contrast(const tensor::Tensor& x, const std::vector<double>& factors);
tensor::Tensor adjust_gamma(const tensor::Tensor& x, const std::vector<double>& gammas);

}  // namespace cxr::vision
