// CPU 2-D convolution kernels on raw contiguous NCHW pointers (float and double): direct-loop references,
// fast im2col + GEMM versions, and the transposed convolution expressed through them.
//
// Convolution (cross-correlation, as torch.nn.functional.conv2d), zero padding, G = groups,
// Cg = C_in / G input channels and Og = C_out / G output channels per group; output channel o is in group
// g = o / Og and reads input channels c = g*Cg + ci, ci in [0, Cg):
//   y[n, o, oh, ow] = bias[o] + sum_{ci, kh, kw} w[o, ci, kh, kw] * x[n, g*Cg + ci, ih, iw],
//   ih = oh*stride_h - pad_h + kh*dil_h,  iw = ow*stride_w - pad_w + kw*dil_w   (x = 0 outside [0,H) x [0,W))
//   H_out = (H + 2*pad_h - dil_h*(kH - 1) - 1) / stride_h + 1   (same for W)
// Shapes: x [N, C_in, H, W], w [C_out, C_in/G, kH, kW], bias [C_out] or null, y [N, C_out, H_out, W_out].
// Gradients (all outputs are overwritten, never accumulated into):
//   grad_x[n, c, ih, iw]    = sum over (o in c's group, kh, kw, oh, ow) that read (ih, iw) of grad_y[n,o,oh,ow]*w[o,ci,kh,kw]
//   grad_w[o, ci, kh, kw]   = sum_{n, oh, ow} grad_y[n, o, oh, ow] * x[n, g*Cg + ci, ih, iw]
//   grad_bias[o]            = sum_{n, oh, ow} grad_y[n, o, oh, ow]
// The backward-input map is the adjoint (transpose) of the forward map x -> conv(x; w), and the
// backward-weight map is the adjoint of w -> conv(x; w); the tests check both identities in double.
//
// Reference: direct loops in gather form, double accumulation (every output element is one dot product).
// Fast: per image and group, im2col (col[(ci*kH + kh)*kW + kw, oh*W_out + ow] = x[n, g*Cg+ci, ih, iw])
//   forward          y_ng [Og, HWo]        = w_g [Og, Cg*kH*kW]   x col [Cg*kH*kW, HWo]
//   backward input   col  [Cg*kH*kW, HWo]  = w_g^T                x grad_y_ng [Og, HWo],  then col2im (scatter-add)
//   backward weight  grad_w_g [Og, Cg*kH*kW] += grad_y_ng [Og, HWo] x col^T,   summed over n
// using gemm<T> (sgemm_fast for float). 1x1, stride 1, no padding skips im2col (col is x itself). Output
// positions are processed in column chunks so the col buffer stays bounded (4 MiB in float) at any image size.
// OpenMP: across (image, group) pairs when there are enough of them, otherwise inside im2col/col2im and GEMM.
//
// Transposed convolution (torch.nn.functional.conv_transpose2d) is the adjoint of a convolution. Take the
// convolution p that maps the transposed conv's OUTPUT shape to its INPUT shape ("the adjoint conv"):
//   p.N = N, p.C_in = C_out_t, p.H = H_out_t, p.W = W_out_t, p.C_out = C_in_t, same k, stride, pad, dil, groups,
//   with H_out_t = (H_in_t - 1)*stride - 2*pad + dil*(k - 1) + output_padding + 1, so that p.H_out() == H_in_t
//   (this needs output_padding < stride; ConvTranspose2dShape::adjoint() checks it).
// PyTorch's ConvTranspose2d weight [C_in_t, C_out_t/G, kH, kW] is exactly p's weight layout [p.C_out, p.C_in/G, ...].
// Then, with x_t [N, C_in_t, H_in_t, W_in_t] = [N, p.C_out, p.H_out, p.W_out] and y_t [N, p.C_in, p.H, p.W]:
//   conv_transpose2d_forward(p, x_t, w, bias, y_t)         y_t     = conv2d_backward_input(p, grad_y = x_t, w) + bias
//   conv_transpose2d_backward_input(p, grad_y_t, w, gx_t)  gx_t    = conv2d_forward(p, x = grad_y_t, w)
//   conv_transpose2d_backward_weight(p, x_t, grad_y_t, gw) gw      = conv2d_backward_weight(p, x = grad_y_t, grad_y = x_t)
//   conv_transpose2d_backward_bias(p, grad_y_t, gb)        gb[c]   = sum_{n, h, w} grad_y_t[n, c, h, w], c < p.C_in
// These use the fast kernels.
#pragma once

#include <cstdint>

namespace cxr::tensor::cpu {

struct Conv2dParams {
    int64_t N = 1, C_in = 1, H = 1, W = 1;
    int64_t C_out = 1, kH = 1, kW = 1;
    int64_t stride_h = 1, stride_w = 1;
    int64_t pad_h = 0, pad_w = 0;
    int64_t dil_h = 1, dil_w = 1;
    int64_t groups = 1;

    int64_t H_out() const { return (H + 2 * pad_h - dil_h * (kH - 1) - 1) / stride_h + 1; }
    int64_t W_out() const { return (W + 2 * pad_w - dil_w * (kW - 1) - 1) / stride_w + 1; }
    // Throws cxr::Error unless sizes are positive, channels divide by groups and the output is non-empty.
    void validate() const;
    // 2 * N * C_out * H_out * W_out * (C_in / groups) * kH * kW: multiply-adds of one forward pass, times 2.
    double flops() const;
};

// The transposed convolution's own shape, PyTorch style; adjoint() gives the Conv2dParams the
// conv_transpose2d_* functions take.
struct ConvTranspose2dShape {
    int64_t N = 1, C_in = 1, H_in = 1, W_in = 1;
    int64_t C_out = 1, kH = 1, kW = 1;
    int64_t stride_h = 1, stride_w = 1;
    int64_t pad_h = 0, pad_w = 0;
    int64_t dil_h = 1, dil_w = 1;
    int64_t groups = 1;
    int64_t output_padding_h = 0, output_padding_w = 0;

    int64_t H_out() const { return (H_in - 1) * stride_h - 2 * pad_h + dil_h * (kH - 1) + output_padding_h + 1; }
    int64_t W_out() const { return (W_in - 1) * stride_w - 2 * pad_w + dil_w * (kW - 1) + output_padding_w + 1; }
    Conv2dParams adjoint() const;  // validated; requires 0 <= output_padding < stride
};

// ---- references (direct loops, double accumulation) ----
template <class T>
void conv2d_forward_reference(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_backward_input_reference(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_reference(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w);
// grad_bias[o] = sum over n, oh, ow of grad_y[n, o, oh, ow] (double accumulation; used by both paths).
template <class T>
void conv2d_backward_bias(const Conv2dParams& p, const T* grad_y, T* grad_bias);

// ---- fast (im2col / col2im + gemm<T>) ----
template <class T>
void conv2d_forward_fast(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_backward_input_fast(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_fast(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w);

// ---- transposed convolution; p is the ADJOINT convolution (see the header comment / ConvTranspose2dShape) ----
// x [N, p.C_out, p.H_out(), p.W_out()], w [p.C_out, p.C_in/G, kH, kW], bias [p.C_in] or null, y [N, p.C_in, p.H, p.W]
template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv_transpose2d_backward_input(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv_transpose2d_backward_weight(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w);
template <class T>
void conv_transpose2d_backward_bias(const Conv2dParams& p, const T* grad_y, T* grad_bias);

}  // namespace cxr::tensor::cpu
