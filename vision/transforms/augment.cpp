// Random transforms, RandAugment and Compose (see augment.h). Parameter sampling follows torchvision.transforms.v2
// (RandomResizedCrop.get_params, RandAugment's _AUGMENTATION_SPACE and op dispatch) with the cxr Philox stream.
#include "vision/transforms/augment.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

using tensor::Generator;
using tensor::Tensor;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Applies fn to a batch view of x ([C, H, W] -> [1, C, H, W] and back).
template <class Fn> Tensor batched(const Tensor& x, const char* what, Fn fn) {
    CXR_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4), what, ": expected [N, C, H, W] or [C, H, W], got ",
              x.defined() ? tensor::shape_str(x.sizes()) : std::string("an undefined tensor"));
    if (x.dim() == 3) return fn(x.unsqueeze(0)).squeeze(0);
    return fn(x);
}

Tensor per_image_mask(const std::vector<double>& u, double p, const Tensor& like) {  // [N, 1, 1, 1] bool
    std::vector<float> m(u.size());
    for (size_t i = 0; i < u.size(); ++i) m[i] = u[i] < p ? 1.0f : 0.0f;
    return tensor::gt(tensor::from_vector(m, {(int64_t)u.size(), 1, 1, 1}).to(like.device()), 0.5);
}

double lerp(const std::array<double, 2>& r, double u) { return r[0] + u * (r[1] - r[0]); }

// torch.linspace(start, end, steps)[i] in float32.
double linspace_f32(double start, double end, int steps, int i) {
    const float s = (float)start, e = (float)end;
    const float step = (e - s) / (float)(steps - 1);
    return i < steps / 2 ? (double)(s + step * (float)i) : (double)(e - step * (float)(steps - 1 - i));
}

}  // namespace

std::vector<double> draw_uniforms(Generator& gen, int64_t n, int64_t k) {
    CXR_CHECK(n >= 0 && k >= 0, "draw_uniforms: negative count");
    std::vector<double> u((size_t)(n * k));
    if (u.empty()) return u;
    const uint64_t offset = gen.reserve((uint64_t)(2 * n * k));
    tensor::fill_uniform_f64(u.data(), n * k, gen.seed(), offset, 0.0, 1.0);
    return u;
}

// ---- Compose and deterministic wrappers ----
Compose& Compose::add(TransformPtr t) {
    CXR_CHECK(t != nullptr, "Compose::add: null transform");
    transforms_.push_back(std::move(t));
    return *this;
}

Tensor Compose::operator()(const Tensor& x, Generator& gen) const {
    Tensor y = x;
    for (const auto& t : transforms_) y = (*t)(y, gen);
    return y;
}

std::string Compose::name() const {
    std::string s = "Compose(";
    for (size_t i = 0; i < transforms_.size(); ++i) s += (i ? ", " : "") + transforms_[i]->name();
    return s + ")";
}

Tensor Resize::operator()(const Tensor& x, Generator&) const { return resize(x, size_, mode_, antialias_); }
Tensor CenterCrop::operator()(const Tensor& x, Generator&) const { return center_crop(x, size_); }
Tensor Normalize::operator()(const Tensor& x, Generator&) const { return normalize(x, mean_, std_); }

// ---- RandomResizedCrop ----
CropBox random_resized_crop_box(int64_t height, int64_t width, std::array<double, 2> scale,
                                std::array<double, 2> ratio, const double* u) {
    const double area = (double)(height * width);
    const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
    for (int a = 0; a < 10; ++a) {
        const double* v = u + 4 * a;
        const double target = area * lerp(scale, v[0]);
        const double aspect = std::exp(log_lo + v[1] * (log_hi - log_lo));
        const auto w = (int64_t)std::nearbyint(std::sqrt(target * aspect));
        const auto h = (int64_t)std::nearbyint(std::sqrt(target / aspect));
        if (0 < w && w <= width && 0 < h && h <= height) {
            CropBox b;
            b.height = h;
            b.width = w;
            b.top = std::min((int64_t)(v[2] * (double)(height - h + 1)), height - h);
            b.left = std::min((int64_t)(v[3] * (double)(width - w + 1)), width - w);
            return b;
        }
    }
    CropBox b;  // fallback: central crop
    const double in_ratio = (double)width / (double)height;
    if (in_ratio < std::min(ratio[0], ratio[1])) {
        b.width = width;
        b.height = (int64_t)std::nearbyint((double)width / std::min(ratio[0], ratio[1]));
    } else if (in_ratio > std::max(ratio[0], ratio[1])) {
        b.height = height;
        b.width = (int64_t)std::nearbyint((double)height * std::max(ratio[0], ratio[1]));
    } else {
        b.width = width;
        b.height = height;
    }
    b.top = (height - b.height) / 2;
    b.left = (width - b.width) / 2;
    return b;
}

RandomResizedCrop::RandomResizedCrop(tensor::Size2 size, std::array<double, 2> scale, std::array<double, 2> ratio,
                                     Interpolation mode, bool antialias)
    : size_(size), scale_(scale), ratio_(ratio), mode_(mode), antialias_(antialias) {
    CXR_CHECK(scale[0] > 0.0 && scale[0] <= scale[1], "RandomResizedCrop: bad scale range [", scale[0], ", ",
              scale[1], "]");
    CXR_CHECK(ratio[0] > 0.0 && ratio[0] <= ratio[1], "RandomResizedCrop: bad ratio range [", ratio[0], ", ",
              ratio[1], "]");
}

Tensor RandomResizedCrop::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandomResizedCrop", [&](const Tensor& xb) {
        const int64_t N = xb.size(0), H = xb.size(2), W = xb.size(3);
        const std::vector<double> u = draw_uniforms(gen, N, 40);
        std::vector<Tensor> out;
        for (int64_t n = 0; n < N; ++n) {
            const CropBox b = random_resized_crop_box(H, W, scale_, ratio_, u.data() + 40 * n);
            out.push_back(resize(crop(xb.narrow(0, n, 1), b.top, b.left, b.height, b.width), size_, mode_, antialias_));
        }
        return tensor::cat(out, 0);
    });
}

// ---- flips ----
RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
}
Tensor RandomHorizontalFlip::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandomHorizontalFlip", [&](const Tensor& xb) {
        const Tensor mask = per_image_mask(draw_uniforms(gen, xb.size(0), 1), p_, xb);
        return tensor::where(mask, horizontal_flip(xb), xb);
    });
}

RandomVerticalFlip::RandomVerticalFlip(double p) : p_(p) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "RandomVerticalFlip: p must be in [0, 1], got ", p);
}
Tensor RandomVerticalFlip::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandomVerticalFlip", [&](const Tensor& xb) {
        const Tensor mask = per_image_mask(draw_uniforms(gen, xb.size(0), 1), p_, xb);
        return tensor::where(mask, vertical_flip(xb), xb);
    });
}

// ---- rotation ----
RandomRotation::RandomRotation(std::array<double, 2> degrees, Sampling mode, std::optional<double> fill)
    : degrees_(degrees), mode_(mode), fill_(fill) {
    CXR_CHECK(degrees[0] <= degrees[1], "RandomRotation: bad range [", degrees[0], ", ", degrees[1], "]");
}
Tensor RandomRotation::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandomRotation", [&](const Tensor& xb) {
        const int64_t N = xb.size(0), H = xb.size(2), W = xb.size(3);
        const std::vector<double> u = draw_uniforms(gen, N, 1);
        std::vector<std::array<double, 6>> m;
        for (int64_t n = 0; n < N; ++n) {
            AffineParams p;
            p.angle = -lerp(degrees_, u[(size_t)n]);  // rotate(angle) = affine(-angle)
            m.push_back(inverse_affine_matrix(p, H, W));
        }
        return warp_affine(xb, m, mode_, fill_);
    });
}

// ---- intensity ----
RandomIntensity::RandomIntensity(Kind kind, std::array<double, 2> range) : kind_(kind), range_(range) {
    CXR_CHECK(range[0] >= 0.0 && range[0] <= range[1], name(), ": bad factor range [", range[0], ", ", range[1],
              "]");
}
std::string RandomIntensity::name() const {
    switch (kind_) {
        case Kind::brightness: return "RandomBrightness";
        case Kind::contrast: return "RandomContrast";
        case Kind::gamma: return "RandomGamma";
    }
    return "RandomIntensity";
}
Tensor RandomIntensity::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandomIntensity", [&](const Tensor& xb) {
        std::vector<double> f = draw_uniforms(gen, xb.size(0), 1);
        for (double& v : f) v = lerp(range_, v);
        switch (kind_) {
            case Kind::brightness: return adjust_brightness(xb, f);
            case Kind::contrast: return adjust_contrast(xb, f);
            case Kind::gamma: return adjust_gamma(xb, f);
        }
        return xb;
    });
}

GaussianBlur::GaussianBlur(std::array<int64_t, 2> kernel_size, std::array<double, 2> sigma)
    : kernel_size_(kernel_size), sigma_(sigma) {
    CXR_CHECK(sigma[0] > 0.0 && sigma[0] <= sigma[1], "GaussianBlur: bad sigma range [", sigma[0], ", ", sigma[1],
              "]");
    gaussian_kernel1d(kernel_size[0], sigma[0]);  // validates the sizes
    gaussian_kernel1d(kernel_size[1], sigma[0]);
}
Tensor GaussianBlur::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "GaussianBlur", [&](const Tensor& xb) {
        const std::vector<double> u = draw_uniforms(gen, xb.size(0), 1);
        std::vector<Tensor> out;
        for (int64_t n = 0; n < xb.size(0); ++n) {
            const double s = lerp(sigma_, u[(size_t)n]);
            out.push_back(gaussian_blur(xb.narrow(0, n, 1), kernel_size_, {s, s}));
        }
        return tensor::cat(out, 0);
    });
}

GaussianNoise::GaussianNoise(double sigma, double mean, bool clip) : sigma_(sigma), mean_(mean), clip_(clip) {
    CXR_CHECK(sigma >= 0.0, "GaussianNoise: sigma must be non-negative, got ", sigma);
}
Tensor GaussianNoise::operator()(const Tensor& x, Generator& gen) const {
    return add_gaussian_noise(x, sigma_, gen, mean_, clip_);
}

// ---- RandAugment ----
const char* augment_op_name(AugmentOp op) {
    switch (op) {
        case AugmentOp::identity: return "identity";
        case AugmentOp::shear_x: return "shear_x";
        case AugmentOp::shear_y: return "shear_y";
        case AugmentOp::translate_x: return "translate_x";
        case AugmentOp::translate_y: return "translate_y";
        case AugmentOp::rotate: return "rotate";
        case AugmentOp::brightness: return "brightness";
        case AugmentOp::contrast: return "contrast";
        case AugmentOp::sharpness: return "sharpness";
        case AugmentOp::posterize: return "posterize";
        case AugmentOp::solarize: return "solarize";
        case AugmentOp::autocontrast: return "autocontrast";
        case AugmentOp::equalize: return "equalize";
    }
    return "?";
}

std::vector<AugmentOp> grayscale_augment_ops() {
    return {AugmentOp::identity,  AugmentOp::shear_x,    AugmentOp::shear_y,   AugmentOp::translate_x,
            AugmentOp::translate_y, AugmentOp::rotate,   AugmentOp::brightness, AugmentOp::contrast,
            AugmentOp::sharpness, AugmentOp::posterize,  AugmentOp::solarize,  AugmentOp::autocontrast,
            AugmentOp::equalize};
}

bool augment_op_signed(AugmentOp op) {
    switch (op) {
        case AugmentOp::shear_x:
        case AugmentOp::shear_y:
        case AugmentOp::translate_x:
        case AugmentOp::translate_y:
        case AugmentOp::rotate:
        case AugmentOp::brightness:
        case AugmentOp::contrast:
        case AugmentOp::sharpness: return true;
        default: return false;
    }
}

double augment_magnitude(AugmentOp op, int bin, int num_bins, int64_t height, int64_t width) {
    CXR_CHECK(num_bins >= 2 && bin >= 0 && bin < num_bins, "RandAugment: magnitude bin ", bin, " outside [0, ",
              num_bins, ")");
    switch (op) {
        case AugmentOp::shear_x:
        case AugmentOp::shear_y: return linspace_f32(0.0, 0.3, num_bins, bin);
        case AugmentOp::translate_x: return linspace_f32(0.0, 150.0 / 331.0 * (double)width, num_bins, bin);
        case AugmentOp::translate_y: return linspace_f32(0.0, 150.0 / 331.0 * (double)height, num_bins, bin);
        case AugmentOp::rotate: return linspace_f32(0.0, 30.0, num_bins, bin);
        case AugmentOp::brightness:
        case AugmentOp::contrast:
        case AugmentOp::sharpness: return linspace_f32(0.0, 0.9, num_bins, bin);
        case AugmentOp::posterize: {
            const float q = (float)bin / ((float)(num_bins - 1) / 4.0f);
            return 8.0 - (double)std::nearbyint(q);
        }
        case AugmentOp::solarize: return linspace_f32(1.0, 0.0, num_bins, bin);
        default: return 0.0;
    }
}

Tensor apply_augment_op(const Tensor& x, AugmentOp op, double magnitude, Sampling mode, std::optional<double> fill) {
    AffineParams p;
    switch (op) {
        case AugmentOp::identity: return x;
        case AugmentOp::shear_x:
            p.shear = {std::atan(magnitude) * 180.0 / kPi, 0.0};
            p.center = std::array<double, 2>{0.0, 0.0};
            return affine(x, p, mode, fill);
        case AugmentOp::shear_y:
            p.shear = {0.0, std::atan(magnitude) * 180.0 / kPi};
            p.center = std::array<double, 2>{0.0, 0.0};
            return affine(x, p, mode, fill);
        case AugmentOp::translate_x:
            p.translate = {std::trunc(magnitude), 0.0};
            return affine(x, p, mode, fill);
        case AugmentOp::translate_y:
            p.translate = {0.0, std::trunc(magnitude)};
            return affine(x, p, mode, fill);
        case AugmentOp::rotate: return rotate(x, magnitude, mode, fill);
        case AugmentOp::brightness: return adjust_brightness(x, 1.0 + magnitude);
        case AugmentOp::contrast: return adjust_contrast(x, 1.0 + magnitude);
        case AugmentOp::sharpness: return adjust_sharpness(x, 1.0 + magnitude);
        case AugmentOp::posterize: return posterize(x, (int)magnitude);
        case AugmentOp::solarize: return solarize(x, magnitude);
        case AugmentOp::autocontrast: return autocontrast(x);
        case AugmentOp::equalize: return equalize(x);
    }
    CXR_FAIL("apply_augment_op: unknown op");
}

RandAugment::RandAugment(int num_ops, int magnitude, int num_bins, Sampling mode, std::optional<double> fill,
                         std::vector<AugmentOp> ops)
    : num_ops_(num_ops), magnitude_(magnitude), num_bins_(num_bins), mode_(mode), fill_(fill), ops_(std::move(ops)) {
    CXR_CHECK(num_ops >= 0, "RandAugment: num_ops must be non-negative, got ", num_ops);
    CXR_CHECK(num_bins >= 2 && magnitude >= 0 && magnitude < num_bins, "RandAugment: magnitude ", magnitude,
              " outside [0, ", num_bins, ")");
    CXR_CHECK(!ops_.empty(), "RandAugment: empty op list");
}

std::vector<std::pair<AugmentOp, double>> RandAugment::choose(const double* u, int64_t height, int64_t width) const {
    std::vector<std::pair<AugmentOp, double>> chosen;
    for (int r = 0; r < num_ops_; ++r) {
        const int64_t k = std::min((int64_t)(u[2 * r] * (double)ops_.size()), (int64_t)ops_.size() - 1);
        const AugmentOp op = ops_[(size_t)k];
        double m = augment_magnitude(op, magnitude_, num_bins_, height, width);
        if (augment_op_signed(op) && u[2 * r + 1] <= 0.5) m = -m;
        chosen.emplace_back(op, m);
    }
    return chosen;
}

Tensor RandAugment::operator()(const Tensor& x, Generator& gen) const {
    return batched(x, "RandAugment", [&](const Tensor& xb) {
        const int64_t N = xb.size(0), H = xb.size(2), W = xb.size(3);
        const std::vector<double> u = draw_uniforms(gen, N, 2 * num_ops_);
        std::vector<Tensor> out;
        for (int64_t n = 0; n < N; ++n) {
            Tensor img = xb.narrow(0, n, 1);
            for (const auto& om : choose(u.data() + 2 * num_ops_ * n, H, W))
                img = apply_augment_op(img, om.first, om.second, mode_, fill_);
            out.push_back(img);
        }
        return tensor::cat(out, 0);
    });
}

}  // namespace cxr::vision
