// 2-D convolution and transposed convolution with torch.nn.functional semantics (NCHW).
//
//   conv2d(x, w, bias, stride, padding, dilation, groups):  x [N, C_in, H, W], w [C_out, C_in/G, kH, kW],
//     bias [C_out] or undefined, y [N, C_out, H_out, W_out], zero padding, cross-correlation:
//       y[n, o, i, j] = bias[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, g(o)·C_in/G + c, i·s_h - pad_h + p·d_h,
//                                                                                j·s_w - pad_w + q·d_w]
//       H_out = ⌊(H + 2 pad_h - d_h (kH - 1) - 1) / s_h⌋ + 1   (same for W)
//     Gradients: dx = the adjoint of x -> conv(x; w) applied to dy ("backward input"), dw = the adjoint of
//     w -> conv(x; w) applied to dy ("backward weight"), dbias[o] = Σ_{n, i, j} dy[n, o, i, j].
//   conv_transpose2d(x, w, bias, stride, padding, output_padding, groups, dilation):  x [N, C_in, H, W],
//     w [C_in, C_out/G, kH, kW] (PyTorch's ConvTranspose2d layout), y [N, C_out, H_out, W_out],
//       H_out = (H - 1) s_h - 2 pad_h + d_h (kH - 1) + output_padding_h + 1,   0 <= output_padding < stride.
//     It is the adjoint of the convolution that maps y's shape to x's shape with the same w ("the adjoint
//     conv" p, see tensor/cpu/conv2d.h): forward = backward-input of p, dx = forward of p applied to dy,
//     dw = backward-weight of p with the roles of x and dy exchanged, dbias = Σ dy over n, h, w.
//
// Both ops use three registered kernels per device: "conv2d_forward", "conv2d_backward_input",
// "conv2d_backward_weight" (CPU: tensor/cpu/conv.cpp over tensor/cpu/conv2d.h; the fast im2col + GEMM path
// unless set_cpu_reference_kernels(true) / CXR_CPU_REFERENCE=1 selects the direct-loop reference).
// f16/bf16 inputs are computed in f32 and rounded back.
#pragma once

#include "tensor/cpu/conv2d.h"
#include "tensor/ops/spatial.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = {1, 1},
              Size2 padding = {0, 0}, Size2 dilation = {1, 1}, int64_t groups = 1);

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = {1, 1},
                        Size2 padding = {0, 0}, Size2 output_padding = {0, 0}, int64_t groups = 1,
                        Size2 dilation = {1, 1});

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam) ----
// The geometry is the plain struct of tensor/cpu/conv2d.h (sizes, stride, padding, dilation, groups; no CPU
// code). All tensors are contiguous NCHW of one floating dtype; outputs are overwritten, never accumulated.
using Conv2dParams = cpu::Conv2dParams;
// x [N, C_in, H, W], w [C_out, C_in/G, kH, kW], bias [C_out] or undefined -> y [N, C_out, H_out, W_out]
using Conv2dForwardKernel = void(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias,
                                 const Tensor& y);
// grad_y [N, C_out, H_out, W_out], w -> grad_x [N, C_in, H, W]
using Conv2dBackwardInputKernel = void(const Conv2dParams& p, const Tensor& grad_y, const Tensor& w,
                                       const Tensor& grad_x);
// x, grad_y -> grad_w [C_out, C_in/G, kH, kW]
using Conv2dBackwardWeightKernel = void(const Conv2dParams& p, const Tensor& x, const Tensor& grad_y,
                                        const Tensor& grad_w);
}  // namespace cxr::tensor
