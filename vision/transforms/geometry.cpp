// Geometric transforms (see geometry.h). The affine matrix follows torchvision's _get_inverse_affine_matrix and
// _affine_grid (PIL's inverse-mapping convention), the sampling follows torch.nn.functional.grid_sample
// (align_corners=False, padding_mode='zeros'); pixels are gathered with tensor ops.
#include "vision/transforms/geometry.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

using tensor::Shape;
using tensor::Size2;
using tensor::Tensor;

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_image(const Tensor& x, const char* what) {
    CXR_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4), what, ": expected [N, C, H, W] or [C, H, W], got ",
              x.defined() ? tensor::shape_str(x.sizes()) : std::string("an undefined tensor"));
}

Tensor reversed_index(int64_t n, const Tensor& like) {
    std::vector<int64_t> idx((size_t)n);
    for (int64_t i = 0; i < n; ++i) idx[(size_t)i] = n - 1 - i;
    return tensor::from_vector(idx, {n}).to(like.device());
}

}  // namespace

Tensor crop(const Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width) {
    check_image(x, "crop");
    CXR_CHECK(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= x.size(-2) &&
                  left + width <= x.size(-1),
              "crop: box (top ", top, ", left ", left, ", ", height, "x", width, ") is not inside the ",
              x.size(-2), "x", x.size(-1), " image");
    return x.narrow(-2, top, height).narrow(-1, left, width);
}

Tensor center_crop(const Tensor& x, Size2 size) {
    check_image(x, "center_crop");
    CXR_CHECK(size[0] > 0 && size[1] > 0, "center_crop: size must be positive, got ", tensor::size2_str(size));
    Tensor img = x;
    int64_t H = x.size(-2), W = x.size(-1);
    if (size[0] > H || size[1] > W) {
        const int64_t l = size[1] > W ? (size[1] - W) / 2 : 0, r = size[1] > W ? (size[1] - W + 1) / 2 : 0;
        const int64_t t = size[0] > H ? (size[0] - H) / 2 : 0, b = size[0] > H ? (size[0] - H + 1) / 2 : 0;
        img = tensor::pad(x, {l, r, t, b}, tensor::PadMode::constant, 0.0);
        H = img.size(-2);
        W = img.size(-1);
    }
    const int64_t top = (int64_t)std::nearbyint((double)(H - size[0]) / 2.0);
    const int64_t left = (int64_t)std::nearbyint((double)(W - size[1]) / 2.0);
    return crop(img, top, left, size[0], size[1]);
}

Tensor horizontal_flip(const Tensor& x) {
    check_image(x, "horizontal_flip");
    return tensor::index_select(x, x.dim() - 1, reversed_index(x.size(-1), x));
}

Tensor vertical_flip(const Tensor& x) {
    check_image(x, "vertical_flip");
    return tensor::index_select(x, x.dim() - 2, reversed_index(x.size(-2), x));
}

std::array<double, 6> inverse_affine_matrix(const AffineParams& p, int64_t height, int64_t width) {
    CXR_CHECK(p.scale > 0.0, "affine: scale must be positive, got ", p.scale);
    double cx = 0.0, cy = 0.0;  // centre relative to the image centre
    if (p.center) {
        cx = (*p.center)[0] - (double)width * 0.5;
        cy = (*p.center)[1] - (double)height * 0.5;
    }
    const double rot = p.angle * kPi / 180.0, sx = p.shear[0] * kPi / 180.0, sy = p.shear[1] * kPi / 180.0;
    const double a = std::cos(rot - sy) / std::cos(sy);
    const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
    const double c = std::sin(rot - sy) / std::cos(sy);
    const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
    // inverse of [[a, b], [c, d]] (determinant 1), divided by the scale
    std::array<double, 6> m = {d / p.scale, -b / p.scale, 0.0, -c / p.scale, a / p.scale, 0.0};
    const double tx = p.translate[0], ty = p.translate[1];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    return m;
}

Tensor warp_affine(const Tensor& x, const std::vector<std::array<double, 6>>& inverse_matrices, Sampling mode,
                   std::optional<double> fill) {
    CXR_CHECK(x.dim() == 4, "warp_affine: expected [N, C, H, W], got ", tensor::shape_str(x.sizes()));
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), P = H * W;
    CXR_CHECK((int64_t)inverse_matrices.size() == N, "warp_affine: ", inverse_matrices.size(),
              " matrices for a batch of ", N);
    const int corners = mode == Sampling::bilinear ? 4 : 1;
    // Host: per image, per output pixel, per corner: source index and weight (0 outside the image).
    std::vector<int64_t> index((size_t)(corners * N * P), 0);  // [corners, N, P]
    std::vector<float> weight((size_t)(corners * N * P), 0.0f);
    std::vector<float> inside((size_t)(N * P), 0.0f);  // grid_sample of a ones image
    const float hw = 0.5f * (float)W, hh = 0.5f * (float)H;
    for (int64_t n = 0; n < N; ++n) {
        const auto& md = inverse_matrices[(size_t)n];
        float m[6];
        for (int k = 0; k < 6; ++k) m[k] = (float)md[(size_t)k];
        // torchvision's _affine_grid: theta^T divided by (W/2, H/2), applied to the centred base grid (float).
        const float r00 = m[0] / hw, r10 = m[1] / hw, r20 = m[2] / hw;  // x column
        const float r01 = m[3] / hh, r11 = m[4] / hh, r21 = m[5] / hh;  // y column
        for (int64_t i = 0; i < H; ++i) {
            for (int64_t j = 0; j < W; ++j) {
                const float bx = (float)j + (1.0f - (float)W) * 0.5f, by = (float)i + (1.0f - (float)H) * 0.5f;
                const float gx = bx * r00 + by * r10 + r20, gy = bx * r01 + by * r11 + r21;
                const float ix = ((gx + 1.0f) * (float)W - 1.0f) / 2.0f;  // grid_sample unnormalise
                const float iy = ((gy + 1.0f) * (float)H - 1.0f) / 2.0f;
                const int64_t p = i * W + j;
                auto put = [&](int corner, float sx, float sy, float w) {
                    const int64_t xi = (int64_t)sx, yi = (int64_t)sy;
                    if (sx < 0.0f || sy < 0.0f || xi >= W || yi >= H || w == 0.0f) return;
                    const size_t k = (size_t)((corner * N + n) * P + p);
                    index[k] = yi * W + xi;
                    weight[k] = w;
                    inside[(size_t)(n * P + p)] += w;
                };
                if (mode == Sampling::nearest) {
                    put(0, std::nearbyint(ix), std::nearbyint(iy), 1.0f);
                } else {
                    const float x0 = std::floor(ix), y0 = std::floor(iy), x1 = x0 + 1.0f, y1 = y0 + 1.0f;
                    put(0, x0, y0, (x1 - ix) * (y1 - iy));
                    put(1, x1, y0, (ix - x0) * (y1 - iy));
                    put(2, x0, y1, (x1 - ix) * (iy - y0));
                    put(3, x1, y1, (ix - x0) * (iy - y0));
                }
            }
        }
    }
    const Tensor flat = x.reshape({N, C, P});                                              // [N, C, P]
    const Tensor idx = tensor::from_vector(index, {corners, N, 1, P}).to(x.device());
    const Tensor wts = tensor::from_vector(weight, {corners, N, 1, P}).to(x.dtype()).to(x.device());
    Tensor out;                                                                            // [N, C, P]
    for (int k = 0; k < corners; ++k) {
        const Tensor ik = idx.narrow(0, k, 1).squeeze(0).expand({N, C, P});
        const Tensor term = tensor::gather(flat, 2, ik) * wts.narrow(0, k, 1).squeeze(0);
        out = out.defined() ? out + term : term;
    }
    if (fill) {
        const Tensor mask = tensor::from_vector(inside, {N, 1, P}).to(x.dtype()).to(x.device());  // [N, 1, P]
        if (mode == Sampling::bilinear) {
            out = (out - *fill) * mask + *fill;
        } else {
            out = tensor::where(tensor::lt(mask, 0.5), tensor::full_like(out, *fill), out);
        }
    }
    return out.reshape({N, C, H, W});
}

Tensor affine(const Tensor& x, const AffineParams& p, Sampling mode, std::optional<double> fill) {
    check_image(x, "affine");
    const bool single = x.dim() == 3;
    const Tensor x4 = single ? x.unsqueeze(0) : x;
    const auto m = inverse_affine_matrix(p, x4.size(2), x4.size(3));
    const Tensor y = warp_affine(x4, std::vector<std::array<double, 6>>((size_t)x4.size(0), m), mode, fill);
    return single ? y.squeeze(0) : y;
}

Tensor rotate(const Tensor& x, double angle, Sampling mode, std::optional<double> fill) {
    check_image(x, "rotate");
    double a = std::fmod(angle, 360.0);
    if (a < 0.0) a += 360.0;
    if (a == 0.0) return tensor::clone(x);
    if (a == 180.0) return vertical_flip(horizontal_flip(x));
    if (x.size(-1) == x.size(-2)) {
        const int64_t d = x.dim();
        // torch.rot90 k=1 (counter-clockwise): out[i][j] = in[j][W-1-i] = transpose of the horizontal flip.
        if (a == 90.0) return tensor::contiguous(horizontal_flip(x).transpose(d - 2, d - 1));
        if (a == 270.0) return tensor::contiguous(vertical_flip(x).transpose(d - 2, d - 1));
    }
    AffineParams p;
    p.angle = -a;  // torchvision: angle % 360, then the affine convention is the opposite sign
    return affine(x, p, mode, fill);
}

}  // namespace cxr::vision
