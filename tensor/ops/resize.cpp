// Upsampling and padding ops: output geometry, argument checks, kernel dispatch and each op's backward
// (formulas in resize.h).
#include "tensor/ops/resize.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

ResizeParams resize_params(const char* op, const Tensor& x, Size2 size, double scale_h, double scale_w) {
    CXR_CHECK(x.defined(), op, ": undefined input");
    CXR_CHECK(x.dim() == 3 || x.dim() == 4, op, ": input must be [N, C, H, W] or [C, H, W], got ",
              shape_str(x.sizes()));
    ResizeParams p;
    p.H = x.size(-2), p.W = x.size(-1);
    CXR_CHECK(p.H >= 1 && p.W >= 1, op, ": empty spatial size in ", shape_str(x.sizes()));
    p.planes = x.numel() / (p.H * p.W);
    p.H_out = size[0], p.W_out = size[1];
    p.scale_h = scale_h, p.scale_w = scale_w;
    CXR_CHECK(p.H_out >= 1 && p.W_out >= 1, op, ": output size ", size2_str(size), " must be positive (input ",
              shape_str(x.sizes()), ")");
    return p;
}

Size2 scaled_size(const char* op, const Tensor& x, double scale) {
    CXR_CHECK(scale > 0.0 && std::isfinite(scale), op, ": scale factor must be positive, got ", scale);
    CXR_CHECK(x.dim() >= 2, op, ": input must be [N, C, H, W] or [C, H, W], got ", shape_str(x.sizes()));
    return {(int64_t)std::floor((double)x.size(-2) * scale), (int64_t)std::floor((double)x.size(-1) * scale)};
}

Shape with_spatial(const Tensor& x, int64_t h, int64_t w) {
    Shape s = x.sizes();
    s[s.size() - 2] = h;
    s[s.size() - 1] = w;
    return s;
}

Tensor run_resize(const char* name, const ResizeParams& p, const Tensor& in, const Shape& out_sizes) {
    NoGradGuard ng;
    auto* k = get_kernel<ResizeKernel>(name, in.device());
    Tensor out = Tensor::empty(out_sizes, in.dtype(), in.device());
    k(p, contiguous(in), out);
    return out;
}

Tensor upsample(const char* op, const std::string& kernel, const Tensor& x, const ResizeParams& p) {
    Tensor y = run_resize((kernel + "_forward").c_str(), p, x, with_spatial(x, p.H_out, p.W_out));
    return record(op, y, {x}, [p, kernel, in_sizes = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        return {run_resize((kernel + "_backward").c_str(), p, g, in_sizes)};
    });
}

Tensor nearest(const Tensor& x, Size2 size, double scale) {
    if (is_half(x.dtype())) return cast(nearest(cast(x, DType::f32), size, scale), x.dtype());
    ResizeParams p = resize_params("upsample_nearest2d", x, size, scale, scale);
    return upsample("upsample_nearest2d", "upsample_nearest2d", x, p);
}

Tensor bilinear(const Tensor& x, Size2 size, double scale, bool align_corners) {
    CXR_CHECK(!x.defined() || is_floating(x.dtype()), "upsample_bilinear2d: expected a floating input, got ",
              dtype_name(x.dtype()));
    if (is_half(x.dtype())) return cast(bilinear(cast(x, DType::f32), size, scale, align_corners), x.dtype());
    ResizeParams p = resize_params("upsample_bilinear2d", x, size, scale, scale);
    p.align_corners = align_corners;
    return upsample("upsample_bilinear2d", "upsample_bilinear2d", x, p);
}

}  // namespace

Tensor upsample_nearest2d(const Tensor& x, Size2 size) { return nearest(x, size, 0.0); }
Tensor upsample_nearest2d(const Tensor& x, double scale_factor) {
    return nearest(x, scaled_size("upsample_nearest2d", x, scale_factor), scale_factor);
}
Tensor upsample_bilinear2d(const Tensor& x, Size2 size, bool align_corners) {
    return bilinear(x, size, 0.0, align_corners);
}
Tensor upsample_bilinear2d(const Tensor& x, double scale_factor, bool align_corners) {
    return bilinear(x, scaled_size("upsample_bilinear2d", x, scale_factor), scale_factor, align_corners);
}

const char* pad_mode_name(PadMode m) {
    switch (m) {
        case PadMode::constant: return "constant";
        case PadMode::reflect: return "reflect";
        case PadMode::replicate: return "replicate";
        case PadMode::circular: return "circular";
    }
    return "?";
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
    CXR_CHECK(x.defined(), "pad: undefined input");
    CXR_CHECK(pads.size() % 2 == 0 && (int64_t)pads.size() / 2 <= x.dim(), "pad: ", pads.size(),
              " pad values must come in (left, right) pairs, at most one pair per dim of ", shape_str(x.sizes()));
    if (is_half(x.dtype())) return cast(pad(cast(x, DType::f32), pads, mode, value), x.dtype());
    PadParams p;
    p.in_sizes = x.sizes();
    p.out_sizes = x.sizes();
    p.before.assign(x.dim(), 0);
    p.mode = mode;
    p.value = value;
    for (size_t i = 0; i < pads.size() / 2; ++i) {
        const int64_t d = x.dim() - 1 - (int64_t)i, in = x.size(d), left = pads[2 * i], right = pads[2 * i + 1];
        if (mode != PadMode::constant) {
            CXR_CHECK(left >= 0 && right >= 0 && in >= 1, "pad (", pad_mode_name(mode), "): pads of dim ", d,
                      " must be >= 0 on a non-empty dim, got (", left, ", ", right, ") for ", shape_str(x.sizes()));
            CXR_CHECK(mode != PadMode::reflect || (left < in && right < in), "pad (reflect): pads (", left, ", ",
                      right, ") must be smaller than the size ", in, " of dim ", d);
            CXR_CHECK(mode != PadMode::circular || (left <= in && right <= in), "pad (circular): pads (", left,
                      ", ", right, ") must be at most the size ", in, " of dim ", d);
        }
        p.before[d] = left;
        p.out_sizes[d] = in + left + right;
        CXR_CHECK(p.out_sizes[d] >= 0, "pad: pads (", left, ", ", right, ") leave a negative size for dim ", d,
                  " of ", shape_str(x.sizes()));
    }
    Tensor y;
    {
        NoGradGuard ng;
        auto* k = get_kernel<PadKernel>("pad_forward", x.device());
        y = Tensor::empty(p.out_sizes, x.dtype(), x.device());
        k(p, contiguous(x), y);
    }
    return record("pad", y, {x}, [p](const Tensor& g) -> std::vector<Tensor> {
        auto* k = get_kernel<PadKernel>("pad_backward", g.device());
        Tensor gx = Tensor::empty(p.in_sizes, g.dtype(), g.device());
        k(p, contiguous(g), gx);
        return {gx};
    });
}

std::vector<int64_t> resize_nearest_table(int64_t in, int64_t out, double scale) {
    std::vector<int64_t> t(out);
    const float r = scale > 0.0 ? (float)(1.0 / scale) : (float)in / (float)out;
    for (int64_t o = 0; o < out; ++o) {
        if (out == in) t[o] = o;
        else if (out == 2 * in) t[o] = o >> 1;
        else t[o] = std::min((int64_t)std::floor((float)o * r), in - 1);
    }
    return t;
}

std::vector<std::vector<int64_t>> pad_source_tables(const PadParams& p) {
    std::vector<std::vector<int64_t>> t(p.in_sizes.size());
    for (size_t d = 0; d < p.in_sizes.size(); ++d) {
        const int64_t in = p.in_sizes[d];
        t[d].resize(p.out_sizes[d]);
        for (int64_t o = 0; o < p.out_sizes[d]; ++o) {
            int64_t s = o - p.before[d];
            switch (p.mode) {
                case PadMode::constant: s = (s >= 0 && s < in) ? s : -1; break;
                case PadMode::reflect:
                    if (in == 1) {
                        s = 0;
                    } else {
                        const int64_t period = 2 * (in - 1);
                        s = ((s % period) + period) % period;
                        if (s >= in) s = period - s;
                    }
                    break;
                case PadMode::replicate: s = std::min(std::max<int64_t>(s, 0), in - 1); break;
                case PadMode::circular: s = ((s % in) + in) % in; break;
            }
            t[d][o] = s;
        }
    }
    return t;
}

}  // namespace cxr::tensor
