// Resizing (see resize.h): separable interpolation matrices following PyTorch's UpSample kernels
// (aten/src/ATen/native/UpSample.h area_pixel_compute_source_index, the cubic convolution coefficients of
// Keys 1981 "Cubic convolution interpolation for digital image processing", and the antialiased index/weight
// computation of _upsample_bilinear2d_aa / _upsample_bicubic2d_aa), applied with tensor matmul.
#include "vision/transforms/resize.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

using tensor::Size2;
using tensor::Tensor;

const char* interpolation_name(Interpolation m) {
    switch (m) {
        case Interpolation::nearest: return "nearest";
        case Interpolation::bilinear: return "bilinear";
        case Interpolation::bicubic: return "bicubic";
        case Interpolation::area: return "area";
    }
    return "?";
}

namespace {

// Keys' cubic convolution kernel with parameter a.
double cubic(double x, double a) {
    x = std::abs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

double triangle(double x) { return std::max(0.0, 1.0 - std::abs(x)); }

}  // namespace

std::vector<double> resize_weights(int64_t in, int64_t out, Interpolation mode, bool antialias) {
    CXR_CHECK(in > 0 && out > 0, "resize_weights: sizes must be positive, got in=", in, " out=", out);
    std::vector<double> m((size_t)(out * in), 0.0);  // [out, in]
    auto at = [&](int64_t i, int64_t j) -> double& { return m[(size_t)(i * in + j)]; };
    // PyTorch computes the scale in float (opmath of a float tensor).
    const double scale = (double)((float)in / (float)out);
    if (mode == Interpolation::nearest) {
        for (int64_t i = 0; i < out; ++i) at(i, std::min((int64_t)std::floor((float)i * (float)scale), in - 1)) = 1.0;
    } else if (mode == Interpolation::area) {
        for (int64_t i = 0; i < out; ++i) {
            const int64_t start = (i * in) / out;
            const int64_t end = ((i + 1) * in + out - 1) / out;
            for (int64_t j = start; j < end; ++j) at(i, j) = 1.0 / (double)(end - start);
        }
    } else if (antialias) {
        const bool bicubic = mode == Interpolation::bicubic;
        const double radius = bicubic ? 2.0 : 1.0;
        const double support = scale >= 1.0 ? radius * scale : radius;
        const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
        for (int64_t i = 0; i < out; ++i) {
            const double center = scale * ((double)i + 0.5);
            const int64_t lo = std::max((int64_t)(center - support + 0.5), (int64_t)0);
            const int64_t hi = std::min((int64_t)(center + support + 0.5), in);
            double total = 0.0;
            for (int64_t j = lo; j < hi; ++j) {
                const double x = ((double)j - center + 0.5) * inv;
                const double w = bicubic ? cubic(x, -0.5) : triangle(x);
                at(i, j) = w;
                total += w;
            }
            if (total != 0.0)
                for (int64_t j = lo; j < hi; ++j) at(i, j) /= total;
        }
    } else if (mode == Interpolation::bilinear) {
        for (int64_t i = 0; i < out; ++i) {
            const double src = std::max(scale * ((double)i + 0.5) - 0.5, 0.0);
            const int64_t i0 = std::min((int64_t)src, in - 1);
            const int64_t i1 = std::min(i0 + 1, in - 1);
            const double l = src - (double)i0;
            at(i, i0) += 1.0 - l;
            at(i, i1) += l;
        }
    } else {  // bicubic, a = -0.75, clamped taps
        const double a = -0.75;
        for (int64_t i = 0; i < out; ++i) {
            const double src = scale * ((double)i + 0.5) - 0.5;
            const double f = std::floor(src);
            const double t = src - f;
            const double w[4] = {cubic(t + 1.0, a), cubic(t, a), cubic(1.0 - t, a), cubic(2.0 - t, a)};
            for (int k = 0; k < 4; ++k) {
                const int64_t j = std::min(std::max((int64_t)f - 1 + k, (int64_t)0), in - 1);
                at(i, j) += w[k];
            }
        }
    }
    return m;
}

namespace {

// The matrix of resize_weights as a tensor of x's dtype on x's device.
Tensor weight_tensor(int64_t in, int64_t out, Interpolation mode, bool antialias, const Tensor& like) {
    Tensor m = tensor::from_vector(resize_weights(in, out, mode, antialias), {out, in});  // [out, in] f64
    return m.to(like.dtype()).to(like.device());
}

}  // namespace

Tensor resize(const Tensor& x, Size2 size, Interpolation mode, bool antialias) {
    CXR_CHECK(x.dim() == 3 || x.dim() == 4, "resize: expected [N, C, H, W] or [C, H, W], got ", tensor::shape_str(x.sizes()));
    CXR_CHECK(size[0] > 0 && size[1] > 0, "resize: output size must be positive, got ", tensor::size2_str(size));
    CXR_CHECK(tensor::is_floating(x.dtype()), "resize: expected a floating-point image, got ", tensor::dtype_name(x.dtype()));
    const int64_t H = x.size(-2), W = x.size(-1);
    if (H == size[0] && W == size[1]) return x;
    if (mode == Interpolation::nearest) return tensor::upsample_nearest2d(x, size);
    if (mode == Interpolation::area) {
        if (x.dim() == 3) return tensor::adaptive_avg_pool2d(x.unsqueeze(0), size).squeeze(0);
        return tensor::adaptive_avg_pool2d(x, size);
    }
    if (mode == Interpolation::bilinear && !antialias) return tensor::upsample_bilinear2d(x, size, false);
    const Tensor ah = weight_tensor(H, size[0], mode, antialias, x);                   // [H_out, H]
    const Tensor aw = weight_tensor(W, size[1], mode, antialias, x).transpose(0, 1);   // [W, W_out]
    return tensor::matmul(tensor::matmul(ah, x), aw);                                  // [..., H_out, W_out]
}

Size2 shorter_side_size(int64_t height, int64_t width, int64_t size) {
    CXR_CHECK(size > 0 && height > 0 && width > 0, "shorter_side_size: sizes must be positive");
    const bool h_short = height <= width;
    const int64_t shorter = h_short ? height : width, longer = h_short ? width : height;
    const int64_t new_long = (int64_t)((double)size * (double)longer / (double)shorter);
    return h_short ? Size2{size, new_long} : Size2{new_long, size};
}

Tensor resize_shorter_side(const Tensor& x, int64_t size, Interpolation mode, bool antialias) {
    return resize(x, shorter_side_size(x.size(-2), x.size(-1), size), mode, antialias);
}

}  // namespace cxr::vision
