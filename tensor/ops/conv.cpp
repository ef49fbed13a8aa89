// conv2d and conv_transpose2d: argument checks, the geometry, kernel dispatch and the explicit backward of
// each (formulas in conv.h). The transposed convolution reuses the three convolution kernels through its
// adjoint convolution, so a backend that implements conv2d gets conv_transpose2d for free.
#include "tensor/ops/conv.h"

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

void check_common(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
    CXR_CHECK(x.defined() && w.defined(), op, ": undefined input or weight");
    CXR_CHECK(x.dim() == 4, op, ": input must be 4-d [N, C, H, W], got ", shape_str(x.sizes()));
    CXR_CHECK(w.dim() == 4, op, ": weight must be 4-d, got ", shape_str(w.sizes()));
    CXR_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", dtype_name(x.dtype()));
    CXR_CHECK(x.dtype() == w.dtype() && (!bias.defined() || bias.dtype() == x.dtype()), op,
              ": input, weight and bias must have one dtype, got ", dtype_name(x.dtype()), ", ",
              dtype_name(w.dtype()), bias.defined() ? std::string(", ") + dtype_name(bias.dtype()) : std::string());
    CXR_CHECK(x.device() == w.device() && (!bias.defined() || bias.device() == x.device()), op,
              ": input, weight and bias must be on one device");
}

// Kernel wrappers: contiguous inputs in, fresh contiguous outputs back; no graph.
Tensor run_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias) {
    NoGradGuard ng;
    auto* k = get_kernel<Conv2dForwardKernel>("conv2d_forward", x.device());
    Tensor y = Tensor::empty({p.N, p.C_out, p.H_out(), p.W_out()}, x.dtype(), x.device());
    k(p, contiguous(x), contiguous(w), bias.defined() ? contiguous(bias) : Tensor(), y);
    return y;
}

Tensor run_backward_input(const Conv2dParams& p, const Tensor& grad_y, const Tensor& w) {
    NoGradGuard ng;
    auto* k = get_kernel<Conv2dBackwardInputKernel>("conv2d_backward_input", grad_y.device());
    Tensor gx = Tensor::empty({p.N, p.C_in, p.H, p.W}, grad_y.dtype(), grad_y.device());
    k(p, contiguous(grad_y), contiguous(w), gx);
    return gx;
}

Tensor run_backward_weight(const Conv2dParams& p, const Tensor& x, const Tensor& grad_y) {
    NoGradGuard ng;
    auto* k = get_kernel<Conv2dBackwardWeightKernel>("conv2d_backward_weight", x.device());
    Tensor gw = Tensor::empty({p.C_out, p.C_in / p.groups, p.kH, p.kW}, x.dtype(), x.device());
    k(p, contiguous(x), contiguous(grad_y), gw);
    return gw;
}

Tensor bias_grad(const Tensor& g) { return sum(g, {0, 2, 3}); }  // [C]

void check_pairs(const char* op, Size2 stride, Size2 padding, Size2 dilation, int64_t groups) {
    CXR_CHECK(stride[0] >= 1 && stride[1] >= 1 && dilation[0] >= 1 && dilation[1] >= 1 && padding[0] >= 0 &&
                  padding[1] >= 0 && groups >= 1,
              op, ": stride ", size2_str(stride), " and dilation ", size2_str(dilation),
              " must be >= 1, padding ", size2_str(padding), " >= 0 and groups ", groups, " >= 1");
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding, Size2 dilation,
              int64_t groups) {
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h)
        Tensor xl = autocast_lower(x), wl = autocast_lower(weight), bl = autocast_lower(bias);
        AutocastGuard off(std::nullopt);
        return conv2d(xl, wl, bl, stride, padding, dilation, groups);
    }
    check_common("conv2d", x, weight, bias);
    check_pairs("conv2d", stride, padding, dilation, groups);
    // The CPU computes f16/bf16 in f32 and rounds the result; CUDA runs them natively (cuDNN or im2col, f32
    // accumulation).
    if (is_half(x.dtype()) && x.is_cpu()) {
        Tensor b32 = bias.defined() ? cast(bias, DType::f32) : Tensor();
        return cast(conv2d(cast(x, DType::f32), cast(weight, DType::f32), b32, stride, padding, dilation, groups),
                    x.dtype());
    }
    CXR_CHECK(x.size(1) % groups == 0 && weight.size(0) % groups == 0 && x.size(1) == weight.size(1) * groups,
              "conv2d: input ", shape_str(x.sizes()), " with groups=", groups, " does not fit weight ",
              shape_str(weight.sizes()), " (need C_in = weight.size(1) * groups and C_out divisible by groups)");
    CXR_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "conv2d: bias must be [",
              weight.size(0), "], got ", bias.defined() ? shape_str(bias.sizes()) : "");
    Conv2dParams p;
    p.N = x.size(0), p.C_in = x.size(1), p.H = x.size(2), p.W = x.size(3);
    p.C_out = weight.size(0), p.kH = weight.size(2), p.kW = weight.size(3);
    p.stride_h = stride[0], p.stride_w = stride[1], p.pad_h = padding[0], p.pad_w = padding[1];
    p.dil_h = dilation[0], p.dil_w = dilation[1], p.groups = groups;
    p.validate();

    Tensor xc = contiguous(x).detach(), wc = contiguous(weight).detach();  // saved for the backward
    Tensor y = run_forward(p, xc, wc, bias.defined() ? bias.detach() : Tensor());  // [N, C_out, H_out, W_out]
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
               need_b = bias.defined() && bias.requires_grad();
    return record("conv2d", y, {x, weight, bias},
                  [p, xc, wc, need_x, need_w, need_b](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gc = contiguous(g);  // [N, C_out, H_out, W_out]
                      Tensor gx = need_x ? run_backward_input(p, gc, wc) : Tensor();
                      Tensor gw = need_w ? run_backward_weight(p, xc, gc) : Tensor();
                      Tensor gb = need_b ? bias_grad(gc) : Tensor();
                      return {gx, gw, gb};
                  });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                        Size2 output_padding, int64_t groups, Size2 dilation) {
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h)
        Tensor xl = autocast_lower(x), wl = autocast_lower(weight), bl = autocast_lower(bias);
        AutocastGuard off(std::nullopt);
        return conv_transpose2d(xl, wl, bl, stride, padding, output_padding, groups, dilation);
    }
    check_common("conv_transpose2d", x, weight, bias);
    check_pairs("conv_transpose2d", stride, padding, dilation, groups);
    if (is_half(x.dtype()) && x.is_cpu()) {
        Tensor b32 = bias.defined() ? cast(bias, DType::f32) : Tensor();
        return cast(conv_transpose2d(cast(x, DType::f32), cast(weight, DType::f32), b32, stride, padding,
                                     output_padding, groups, dilation),
                    x.dtype());
    }
    CXR_CHECK(x.size(1) == weight.size(0) && weight.size(0) % groups == 0, "conv_transpose2d: input ",
              shape_str(x.sizes()), " with groups=", groups, " does not fit weight ", shape_str(weight.sizes()),
              " (need C_in = weight.size(0), divisible by groups)");
    const int64_t c_out = weight.size(1) * groups;
    CXR_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == c_out), "conv_transpose2d: bias must be [",
              c_out, "], got ", bias.defined() ? shape_str(bias.sizes()) : "");
    cpu::ConvTranspose2dShape s;
    s.N = x.size(0), s.C_in = x.size(1), s.H_in = x.size(2), s.W_in = x.size(3);
    s.C_out = c_out, s.kH = weight.size(2), s.kW = weight.size(3);
    s.stride_h = stride[0], s.stride_w = stride[1], s.pad_h = padding[0], s.pad_w = padding[1];
    s.dil_h = dilation[0], s.dil_w = dilation[1], s.groups = groups;
    s.output_padding_h = output_padding[0], s.output_padding_w = output_padding[1];
    CXR_CHECK(s.H_out() >= 1 && s.W_out() >= 1, "conv_transpose2d: output size ", s.H_out(), "x", s.W_out(),
              " is empty for input ", shape_str(x.sizes()), " and weight ", shape_str(weight.sizes()));
    const Conv2dParams p = s.adjoint();  // the conv from y's shape [N, C_out, H_out, W_out] to x's shape

    Tensor xc = contiguous(x).detach(), wc = contiguous(weight).detach();
    Tensor y = run_backward_input(p, xc, wc);  // [N, C_out, H_out, W_out]
    if (bias.defined()) {
        NoGradGuard ng;
        y = add(y, reshape(bias.detach(), {1, c_out, 1, 1}));
    }
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
               need_b = bias.defined() && bias.requires_grad();
    return record("conv_transpose2d", y, {x, weight, bias},
                  [p, xc, wc, need_x, need_w, need_b](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gc = contiguous(g);  // [N, C_out, H_out, W_out]
                      Tensor gx = need_x ? run_forward(p, gc, wc, Tensor()) : Tensor();
                      Tensor gw = need_w ? run_backward_weight(p, gc, xc) : Tensor();
                      Tensor gb = need_b ? bias_grad(gc) : Tensor();
                      return {gx, gw, gb};
                  });
}

}  // namespace cxr::tensor
