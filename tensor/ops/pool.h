// 2-D pooling with torch.nn.functional semantics. Inputs are [N, C, H, W] or [C, H, W]; every leading
// (N, C) pair is one independent plane.
//
//   max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
//     y[i, j] = max_{p < kH, q < kW} x[i·s_h - pad_h + p·d_h, j·s_w - pad_w + q·d_w]  (padding = -inf, i.e. skipped)
//     H_out = ⌊(H + 2 pad_h - d_h (kH - 1) - 1 + (ceil_mode ? s_h - 1 : 0)) / s_h⌋ + 1, minus one when
//     ceil_mode and the last window would start in the right padding ((H_out - 1) s_h >= H + pad_h).
//     Gradient: dy[i, j] goes to the argmax of window (i, j) — the FIRST maximum in row-major window order,
//     as torch; NaN counts as the maximum. stride {0, 0} (the default) means stride = kernel.
//     padding <= effective kernel / 2 (as torch).
//   avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad):
//     window rows [hs, he) with hs = i·s_h - pad_h, he = min(hs + kH, H + pad_h) (columns alike);
//     y[i, j] = Σ_{window ∩ input} x / D, D = (he - hs)(we - ws) when count_include_pad, else the number of
//     input elements in the window.  Gradient: dx[h, w] = Σ over windows containing (h, w) of dy[i, j] / D.
//   adaptive_avg_pool2d(x, {out_h, out_w}):  window rows [⌊i H / out_h⌋, ⌈(i + 1) H / out_h⌉) (columns alike),
//     y = mean over the window;  dx[h, w] = Σ over windows containing (h, w) of dy / |window|.
//
// CPU kernels: tensor/cpu/pool.cpp (plain loops, double accumulation for the averages). f16/bf16 are computed
// in f32 and rounded back.
#pragma once

#include <utility>

#include "tensor/ops/spatial.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0},
                  Size2 dilation = {1, 1}, bool ceil_mode = false);
// Also returns the argmax of each window as an i64 tensor of y's shape, holding the flat index h·W + w in the
// input plane (as torch's return_indices=True).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel, Size2 stride = {0, 0},
                                                  Size2 padding = {0, 0}, Size2 dilation = {1, 1},
                                                  bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0},
                  bool ceil_mode = false, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size);

// Output length of a pooling window sweep along one dim (the H_out formula above).
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam) ----
// x / grad_x are contiguous [planes, H, W]; y / grad_y / indices contiguous [planes, H_out, W_out]; one floating
// dtype; outputs are overwritten. Adaptive pooling uses only planes, H, W, H_out, W_out.
struct Pool2dParams {
    int64_t planes = 1, H = 1, W = 1, H_out = 1, W_out = 1;
    int64_t kH = 1, kW = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
    bool count_include_pad = true;
};
using MaxPool2dForwardKernel = void(const Pool2dParams& p, const Tensor& x, const Tensor& y, const Tensor& indices);
using MaxPool2dBackwardKernel = void(const Pool2dParams& p, const Tensor& grad_y, const Tensor& indices,
                                     const Tensor& grad_x);
// Also the signature of "avg_pool2d_backward", "adaptive_avg_pool2d_forward" and "_backward" (in, out).
using Pool2dKernel = void(const Pool2dParams& p, const Tensor& in, const Tensor& out);
}  // namespace cxr::tensor
