// Intensity transforms (see color.h), following torchvision.transforms.v2.functional (_color.py, _misc.py)
// for float images; gaussian_blur as torchvision's (reflect padding, separable Gaussian), equalize as PIL's
// ImageOps.equalize lookup table (as torchvision's batched version).
#include "vision/transforms/color.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

using tensor::Shape;
using tensor::Tensor;

namespace {

void check_image(const Tensor& x, const char* what) {
    CXR_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4), what, ": expected [N, C, H, W] or [C, H, W], got ",
              x.defined() ? tensor::shape_str(x.sizes()) : std::string("an undefined tensor"));
    CXR_CHECK(tensor::is_floating(x.dtype()), what, ": expected a floating-point image, got ",
              tensor::dtype_name(x.dtype()));
}

// [N, 1, 1, 1] (or [1, 1, 1] for an unbatched image) tensor of per-image values.
Tensor per_image(const std::vector<double>& v, const Tensor& x) {
    const int64_t n = x.dim() == 4 ? x.size(0) : 1;
    CXR_CHECK((int64_t)v.size() == n, "per-image factors: ", v.size(), " values for a batch of ", n);
    Shape s = x.dim() == 4 ? Shape{n, 1, 1, 1} : Shape{1, 1, 1};
    return tensor::from_vector(v, s).to(x.dtype()).to(x.device());
}

// Per-image mean of the grayscale image: [N, 1, 1, 1] (or [1, 1, 1]).
Tensor gray_mean(const Tensor& x) {
    const int64_t cdim = x.dim() - 3;
    const int64_t C = x.size(cdim);
    CXR_CHECK(C == 1 || C == 3, "adjust_contrast: images must have 1 or 3 channels, got ", C);
    Tensor g = x;
    if (C == 3) {  // ITU-R 601-2 luma, as torchvision's rgb_to_grayscale
        g = x.narrow(cdim, 0, 1) * 0.2989 + x.narrow(cdim, 1, 1) * 0.587 + x.narrow(cdim, 2, 1) * 0.114;
    }
    return tensor::mean(g, {cdim, cdim + 1, cdim + 2}, true);
}

Tensor blend(const Tensor& a, const Tensor& b, const Tensor& ratio) {
    return tensor::clamp(a * ratio + b * (1.0 - ratio), 0.0, 1.0);
}

}  // namespace

Tensor adjust_brightness(const Tensor& x, double factor) {
    check_image(x, "adjust_brightness");
    CXR_CHECK(factor >= 0.0, "adjust_brightness: factor must be non-negative, got ", factor);
    return tensor::clamp(x * factor, 0.0, 1.0);
}

Tensor adjust_brightness(const Tensor& x, const std::vector<double>& factors) {
    check_image(x, "adjust_brightness");
    return tensor::clamp(x * per_image(factors, x), 0.0, 1.0);
}

Tensor adjust_contrast(const Tensor& x, double factor) {
    check_image(x, "adjust_contrast");
    CXR_CHECK(factor >= 0.0, "adjust_contrast: factor must be non-negative, got ", factor);
    return tensor::clamp(x * factor + gray_mean(x) * (1.0 - factor), 0.0, 1.0);
}

Tensor adjust_contrast(const Tensor& x, const std::vector<double>& factors) {
    check_image(x, "adjust_contrast");
    return blend(x, gray_mean(x), per_image(factors, x));
}

Tensor adjust_gamma(const Tensor& x, double gamma, double gain) {
    check_image(x, "adjust_gamma");
    CXR_CHECK(gamma >= 0.0, "adjust_gamma: gamma must be non-negative, got ", gamma);
    Tensor y = tensor::pow(x, gamma);
    if (gain != 1.0) y = tensor::clamp(y * gain, 0.0, 1.0);
    return y;
}

Tensor adjust_gamma(const Tensor& x, const std::vector<double>& gammas) {
    check_image(x, "adjust_gamma");
    return tensor::pow(x, per_image(gammas, x));
}

Tensor adjust_sharpness(const Tensor& x, double factor) {
    check_image(x, "adjust_sharpness");
    CXR_CHECK(factor >= 0.0, "adjust_sharpness: factor must be non-negative, got ", factor);
    const int64_t H = x.size(-2), W = x.size(-1);
    if (H <= 2 || W <= 2) return x;
    const Shape shape = x.sizes();
    const Tensor planes = x.reshape({-1, 1, H, W});  // [N·C, 1, H, W]
    const double a = 1.0 / 13.0, b = 5.0 / 13.0;
    const Tensor k = tensor::from_vector(std::vector<double>{a, a, a, a, b, a, a, a, a}, {1, 1, 3, 3})
                         .to(x.dtype())
                         .to(x.device());
    const Tensor blurred = tensor::conv2d(planes, k);  // [N·C, 1, H-2, W-2]
    Tensor degenerate = tensor::clone(planes);
    tensor::copy_into(degenerate.narrow(2, 1, H - 2).narrow(3, 1, W - 2), blurred);
    const Tensor y = tensor::clamp(planes + (degenerate - planes) * (1.0 - factor), 0.0, 1.0);
    return y.reshape(shape);
}

Tensor autocontrast(const Tensor& x) {
    check_image(x, "autocontrast");
    const Tensor lo = tensor::amin(x, {-2, -1}, true);
    const Tensor hi = tensor::amax(x, {-2, -1}, true);
    const Tensor constant = tensor::eq(hi, lo);
    const Tensor inv_scale = tensor::where(constant, tensor::ones_like(hi), hi - lo);
    const Tensor offset = tensor::where(constant, tensor::zeros_like(lo), lo);
    return tensor::clamp((x - offset) / inv_scale, 0.0, 1.0);
}

Tensor posterize(const Tensor& x, int bits) {
    check_image(x, "posterize");
    CXR_CHECK(bits >= 0 && bits <= 8, "posterize: bits must be in [0, 8], got ", bits);
    const double levels = (double)(1 << bits);
    // clamp then truncate (= floor for the non-negative clamped values), then back to the float levels
    const Tensor q = tensor::cast(tensor::clamp(x * levels, 0.0, levels - 1.0), tensor::DType::i32);
    return tensor::cast(q, x.dtype()) * (1.0 / levels);
}

Tensor solarize(const Tensor& x, double threshold) {
    check_image(x, "solarize");
    CXR_CHECK(threshold <= 1.0, "solarize: threshold must be <= 1 for float images, got ", threshold);
    return tensor::where(tensor::lt(x, threshold), x, tensor::neg(x) + 1.0);
}

Tensor equalize(const Tensor& x) {
    check_image(x, "equalize");
    const Shape shape = x.sizes();
    const int64_t P = x.size(-2) * x.size(-1);
    const int64_t planes = x.numel() / P;
    const std::vector<float> v = x.to(tensor::DType::f32).to_vector<float>();
    std::vector<float> out(v.size());
    for (int64_t p = 0; p < planes; ++p) {
        std::vector<int64_t> u((size_t)P);
        int64_t hist[256] = {0};
        for (int64_t i = 0; i < P; ++i) {
            float s = v[(size_t)(p * P + i)] * 255.999f;  // torchvision's float -> uint8 (scale 256 - 1e-3)
            int64_t q = s <= 0.0f ? 0 : (int64_t)s;
            q = q > 255 ? 255 : q;
            u[(size_t)i] = q;
            ++hist[q];
        }
        int64_t last = 255;
        while (last > 0 && hist[last] == 0) --last;
        const int64_t step = (P - hist[last]) / 255;
        int64_t lut[256];
        lut[0] = 0;
        int64_t cdf = 0;
        for (int k = 1; k < 256; ++k) {
            cdf += hist[k - 1];
            const int64_t val = (cdf + step / 2) / (step > 0 ? step : 1);
            lut[k] = val > 255 ? 255 : val;
        }
        for (int64_t i = 0; i < P; ++i) {
            const int64_t q = u[(size_t)i];
            out[(size_t)(p * P + i)] = (float)(step != 0 ? lut[q] : q) * (float)(1.0 / 255.0);
        }
    }
    return tensor::from_vector(out, shape).to(x.dtype()).to(x.device());
}

std::vector<double> gaussian_kernel1d(int64_t size, double sigma) {
    CXR_CHECK(size > 0 && size % 2 == 1, "gaussian_blur: kernel size must be odd and positive, got ", size);
    CXR_CHECK(sigma > 0.0, "gaussian_blur: sigma must be positive, got ", sigma);
    std::vector<double> k((size_t)size);
    double total = 0.0;
    const double c = (double)(size - 1) / 2.0;
    for (int64_t i = 0; i < size; ++i) {
        const double d = ((double)i - c) / sigma;
        k[(size_t)i] = std::exp(-0.5 * d * d);
        total += k[(size_t)i];
    }
    for (double& w : k) w /= total;
    return k;
}

Tensor gaussian_blur(const Tensor& x, std::array<int64_t, 2> kernel_size, std::array<double, 2> sigma) {
    check_image(x, "gaussian_blur");
    const std::vector<double> kx = gaussian_kernel1d(kernel_size[0], sigma[0]);
    const std::vector<double> ky = gaussian_kernel1d(kernel_size[1], sigma[1]);
    const int64_t H = x.size(-2), W = x.size(-1);
    CXR_CHECK(kernel_size[0] / 2 < W && kernel_size[1] / 2 < H, "gaussian_blur: kernel ", kernel_size[0], "x",
              kernel_size[1], " too large for reflect padding of a ", H, "x", W, " image");
    const Shape shape = x.sizes();
    const Tensor planes = x.reshape({-1, 1, H, W});  // [N·C, 1, H, W]
    const Tensor padded = tensor::pad(planes, {kernel_size[0] / 2, kernel_size[0] / 2, kernel_size[1] / 2,
                                               kernel_size[1] / 2},
                                      tensor::PadMode::reflect);
    const Tensor wx = tensor::from_vector(kx, {1, 1, 1, kernel_size[0]}).to(x.dtype()).to(x.device());
    const Tensor wy = tensor::from_vector(ky, {1, 1, kernel_size[1], 1}).to(x.dtype()).to(x.device());
    return tensor::conv2d(tensor::conv2d(padded, wx), wy).reshape(shape);
}

Tensor normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& std) {
    check_image(x, "normalize");
    const int64_t C = x.size(x.dim() - 3);
    CXR_CHECK((int64_t)mean.size() == C && (int64_t)std.size() == C, "normalize: ", mean.size(), " means and ",
              std.size(), " stds for ", C, " channels");
    for (double s : std) CXR_CHECK(s != 0.0, "normalize: a std of zero would divide by zero");
    const Tensor m = tensor::from_vector(mean, {C, 1, 1}).to(x.dtype()).to(x.device());
    const Tensor s = tensor::from_vector(std, {C, 1, 1}).to(x.dtype()).to(x.device());
    return (x - m) / s;
}

Tensor add_gaussian_noise(const Tensor& x, double sigma, tensor::Generator& gen, double mean, bool clip) {
    check_image(x, "add_gaussian_noise");
    CXR_CHECK(sigma >= 0.0, "add_gaussian_noise: sigma must be non-negative, got ", sigma);
    const Tensor z = tensor::randn(x.sizes(), tensor::Options(x.dtype(), x.device()), &gen);
    Tensor y = x + z * sigma + mean;
    if (clip) y = tensor::clamp(y, 0.0, 1.0);
    return y;
}

}  // namespace cxr::vision
