// Random and composable transforms on image batches [N, C, H, W] (one image [C, H, W] is treated as N = 1), and a
// grayscale RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a reduced
// search space", with torchvision.transforms.v2.RandAugment's op table and magnitudes).
//
// Randomness: every random transform draws from the cxr::tensor::Generator passed to it (Philox, tensor/philox.h),
// so a seed fixes the augmentation. Order: one call on a batch of N images reserves one block of N·k uniforms in
// [0, 1) (fill_uniform_f64, 2 words each) and image n uses values [n·k, (n+1)·k) — k per transform below. A
// Compose applies its transforms in order with the same generator. (add_gaussian_noise draws one N(0,1) tensor of
// the batch's shape instead.) Values therefore depend on the seed and on the image's position in the batch, never
// on the other images' content.
//   RandomResizedCrop (k = 40): torchvision's get_params: up to 10 attempts, attempt a uses u[4a..4a+3]:
//     area = H·W·U(scale), aspect = exp(U(log ratio)), w = round(√(area·aspect)), h = round(√(area/aspect));
//     accepted when 0 < w ≤ W and 0 < h ≤ H, then top = ⌊u·(H - h + 1)⌋, left = ⌊u·(W - w + 1)⌋; after 10 failures
//     the central crop with the aspect clamped to the ratio range. Then resize (bilinear, antialias) to `size`.
//   RandomHorizontalFlip / RandomVerticalFlip (k = 1): flip when u < p.
//   RandomRotation (k = 1): angle = lo + u·(hi - lo) degrees, rotate with the sampling mode and fill.
//   RandomBrightness / RandomContrast / RandomGamma (k = 1): factor = lo + u·(hi - lo).
//   GaussianBlur (k = 1): sigma = lo + u·(hi - lo) for both axes (torchvision v2 GaussianBlur).
//   RandAugment (k = 2·num_ops): for each of num_ops rounds: op = ops[⌊u·#ops⌋], and for a signed op the magnitude
//     is negated when the next u ≤ ½ (torchvision's torch.rand(()) <= 0.5).
// RandAugment ops for grayscale X-rays: identity, shear_x/y, translate_x/y, rotate, brightness, contrast,
// sharpness, posterize, solarize, autocontrast, equalize — torchvision's list without Color (saturation is the
// identity on one channel). Magnitudes at bin b of B (torchvision's table, float32 linspace):
//   shear 0..0.3 (affine shear = atan(m) in degrees, about the top-left corner), translate 0..150/331·W (or H)
//   pixels (truncated to int), rotate 0..30°, brightness/contrast/sharpness factor 1 + m with m in 0..0.9,
//   posterize bits 8 - round(b / ((B - 1)/4)), solarize threshold linspace(1, 0)[b] (on [0, 1] floats);
//   identity/autocontrast/equalize have none. Geometric ops use nearest sampling and fill (none -> 0) by default.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tensor/generator.h"
#include "tensor/tensor.h"
#include "vision/transforms/color.h"
#include "vision/transforms/geometry.h"
#include "vision/transforms/resize.h"

namespace cxr::vision {

// n·k uniforms in [0, 1) from one reservation of gen (the order described above).
std::vector<double> draw_uniforms(tensor::Generator& gen, int64_t n, int64_t k);

class Transform {
public:
    virtual ~Transform() = default;
    // x: [N, C, H, W] or [C, H, W]; deterministic transforms ignore gen.
    virtual tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const = 0;
    virtual std::string name() const = 0;
};
using TransformPtr = std::shared_ptr<const Transform>;

class Compose : public Transform {
public:
    Compose() = default;
    explicit Compose(std::vector<TransformPtr> transforms) : transforms_(std::move(transforms)) {}
    Compose& add(TransformPtr t);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override;  // "Compose(Resize, RandomHorizontalFlip, ...)"
    size_t size() const { return transforms_.size(); }

private:
    std::vector<TransformPtr> transforms_;
};

// ---- deterministic ----
class Resize : public Transform {
public:
    explicit Resize(tensor::Size2 size, Interpolation mode = Interpolation::bilinear, bool antialias = true)
        : size_(size), mode_(mode), antialias_(antialias) {}
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "Resize"; }

private:
    tensor::Size2 size_;
    Interpolation mode_;
    bool antialias_;
};

class CenterCrop : public Transform {
public:
    explicit CenterCrop(tensor::Size2 size) : size_(size) {}
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "CenterCrop"; }

private:
    tensor::Size2 size_;
};

class Normalize : public Transform {
public:
    Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {}
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "Normalize"; }

private:
    std::vector<double> mean_, std_;
};

// ---- random ----
struct CropBox {
    int64_t top = 0, left = 0, height = 0, width = 0;
};
// torchvision's RandomResizedCrop.get_params with the 40 uniforms u (see above).
CropBox random_resized_crop_box(int64_t height, int64_t width, std::array<double, 2> scale,
                                std::array<double, 2> ratio, const double* u);

class RandomResizedCrop : public Transform {
public:
    explicit RandomResizedCrop(tensor::Size2 size, std::array<double, 2> scale = {0.08, 1.0},
                               std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0},
                               Interpolation mode = Interpolation::bilinear, bool antialias = true);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "RandomResizedCrop"; }

private:
    tensor::Size2 size_;
    std::array<double, 2> scale_, ratio_;
    Interpolation mode_;
    bool antialias_;
};

class RandomHorizontalFlip : public Transform {
public:
    explicit RandomHorizontalFlip(double p = 0.5);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "RandomHorizontalFlip"; }

private:
    double p_;
};

class RandomVerticalFlip : public Transform {
public:
    explicit RandomVerticalFlip(double p = 0.5);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "RandomVerticalFlip"; }

private:
    double p_;
};

class RandomRotation : public Transform {
public:
    // Angles uniform in [lo, hi] degrees; torchvision's RandomRotation(degrees=d) is {-d, d}.
    explicit RandomRotation(std::array<double, 2> degrees, Sampling mode = Sampling::nearest,
                            std::optional<double> fill = std::nullopt);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "RandomRotation"; }

private:
    std::array<double, 2> degrees_;
    Sampling mode_;
    std::optional<double> fill_;
};

// Random intensity factor in [lo, hi] per image: brightness, contrast or gamma.
class RandomIntensity : public Transform {
public:
    enum class Kind { brightness, contrast, gamma };
    RandomIntensity(Kind kind, std::array<double, 2> range);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override;

private:
    Kind kind_;
    std::array<double, 2> range_;
};

class GaussianBlur : public Transform {
public:
    GaussianBlur(std::array<int64_t, 2> kernel_size, std::array<double, 2> sigma = {0.1, 2.0});
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "GaussianBlur"; }

private:
    std::array<int64_t, 2> kernel_size_;
    std::array<double, 2> sigma_;
};

class GaussianNoise : public Transform {
public:
    explicit GaussianNoise(double sigma = 0.1, double mean = 0.0, bool clip = true);
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "GaussianNoise"; }

private:
    double sigma_, mean_;
    bool clip_;
};

// ---- RandAugment ----
enum class AugmentOp {
    identity, shear_x, shear_y, translate_x, translate_y, rotate, brightness, contrast, sharpness, posterize,
    solarize, autocontrast, equalize
};
const char* augment_op_name(AugmentOp op);
std::vector<AugmentOp> grayscale_augment_ops();  // the 13 ops above, in torchvision's order
bool augment_op_signed(AugmentOp op);
// The (unsigned) magnitude of op at bin `bin` of `num_bins` for an H x W image (0 for ops without one).
double augment_magnitude(AugmentOp op, int bin, int num_bins, int64_t height, int64_t width);
// Applies one op with a signed magnitude exactly as torchvision's RandAugment does.
tensor::Tensor apply_augment_op(const tensor::Tensor& x, AugmentOp op, double magnitude,
                                Sampling mode = Sampling::nearest, std::optional<double> fill = std::nullopt);

class RandAugment : public Transform {
public:
    explicit RandAugment(int num_ops = 2, int magnitude = 9, int num_bins = 31, Sampling mode = Sampling::nearest,
                         std::optional<double> fill = std::nullopt,
                         std::vector<AugmentOp> ops = grayscale_augment_ops());
    tensor::Tensor operator()(const tensor::Tensor& x, tensor::Generator& gen) const override;
    std::string name() const override { return "RandAugment"; }
    // The ops and signed magnitudes an image gets from its uniforms u (2·num_ops values).
    std::vector<std::pair<AugmentOp, double>> choose(const double* u, int64_t height, int64_t width) const;

private:
    int num_ops_, magnitude_, num_bins_;
    Sampling mode_;
    std::optional<double> fill_;
    std::vector<AugmentOp> ops_;
};

}  // namespace cxr::vision
