// Resizing and padding with torch.nn.functional semantics. Upsampling inputs are [N, C, H, W] or [C, H, W]
// (every leading (N, C) pair is one plane).
//
//   upsample_nearest2d(x, size | scale)   (F.interpolate mode='nearest'):
//     src = min(⌊dst · r⌋, in - 1),  r = 1 / scale when a scale factor is given (output ⌊in · scale⌋),
//     else in / out — computed in float, as torch does, so the picked indices match torch exactly.
//     Gradient: dx[src] += dy[dst] (each output reads one input).
//   upsample_bilinear2d(x, size | scale, align_corners)   (F.interpolate mode='bilinear'):
//     per dim, align_corners:  src = dst · (in - 1) / (out - 1)   (0 when out == 1)
//              otherwise:      src = max((dst + ½) · r - ½, 0),  r = 1 / scale or in / out
//     i0 = min(⌊src⌋, in - 1), i1 = min(i0 + 1, in - 1), λ = src - i0;
//     y = (1-λh)(1-λw) x[i0, j0] + (1-λh) λw x[i0, j1] + λh (1-λw) x[i1, j0] + λh λw x[i1, j1].
//     Gradient: the same four weights scatter dy back to the four source pixels.
//   pad(x, pads, mode, value)   (F.pad): pads = {left, right} pairs starting from the LAST dim
//     ({l_W, r_W, l_H, r_H, ...}); out = in + left + right per padded dim. With s = o - left:
//       constant:  x[s] if 0 <= s < in else value   (negative pads crop)
//       reflect:   mirror without repeating the edge (needs pad < in)
//       replicate: x[clamp(s, 0, in - 1)]
//       circular:  x[s mod in] (needs pad <= in)
//     Gradient: dx[src(o)] += dy[o] over the outputs that read an input element.
//
// CPU kernels: tensor/cpu/resize.cpp (plain loops). f16/bf16 float inputs are computed in f32 and rounded
// back; nearest upsampling and constant padding also take integer and bool tensors (no gradient).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/ops/spatial.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor upsample_nearest2d(const Tensor& x, Size2 size);
Tensor upsample_nearest2d(const Tensor& x, double scale_factor);
Tensor upsample_bilinear2d(const Tensor& x, Size2 size, bool align_corners = false);
Tensor upsample_bilinear2d(const Tensor& x, double scale_factor, bool align_corners = false);

enum class PadMode { constant, reflect, replicate, circular };
const char* pad_mode_name(PadMode m);
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::constant, double value = 0.0);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam) ----
// Upsampling: in/out contiguous [planes, H, W] / [planes, H_out, W_out] (backward: grad_y -> grad_x, which the
// kernel overwrites). scale_h/scale_w are the user's scale factors (0 = none: derived from the sizes).
struct ResizeParams {
    int64_t planes = 1, H = 1, W = 1, H_out = 1, W_out = 1;
    double scale_h = 0.0, scale_w = 0.0;
    bool align_corners = false;
};
using ResizeKernel = void(const ResizeParams& p, const Tensor& in, const Tensor& out);
// Padding: contiguous tensors of in_sizes / out_sizes; before[d] = the left pad of dim d (0 for unpadded dims).
struct PadParams {
    Shape in_sizes, out_sizes, before;
    PadMode mode = PadMode::constant;
    double value = 0.0;
};
// ---- source-index tables shared by the CPU and CUDA kernels (host code) ----
// Nearest: the input index each output index reads along one axis, as torch's nearest_idx (float arithmetic).
std::vector<int64_t> resize_nearest_table(int64_t in, int64_t out, double scale);
// Bilinear along one axis: output o reads i0[o] with weight l0[o] and i1[o] with weight l1[o], from torch's
// area_pixel_compute_scale / area_pixel_compute_source_index (non-cubic) computed in precision T.
template <class T>
struct ResizeLinearTable {
    std::vector<int64_t> i0, i1;
    std::vector<T> l0, l1;
};
template <class T>
ResizeLinearTable<T> resize_linear_table(int64_t in, int64_t out, double scale, bool align_corners) {
    ResizeLinearTable<T> t;
    t.i0.resize(out), t.i1.resize(out), t.l0.resize(out), t.l1.resize(out);
    T r;
    if (align_corners) r = out > 1 ? T(in - 1) / T(out - 1) : T(0);
    else r = scale > 0.0 ? T(1.0 / scale) : T(in) / T(out);
    for (int64_t o = 0; o < out; ++o) {
        const T src = align_corners ? r * T(o) : std::max(r * (T(o) + T(0.5)) - T(0.5), T(0));
        const int64_t a = std::min((int64_t)std::floor(src), in - 1);
        const T lam = std::min(std::max(src - T(a), T(0)), T(1));
        t.i0[o] = a;
        t.i1[o] = a < in - 1 ? a + 1 : a;
        t.l1[o] = lam;
        t.l0[o] = T(1) - lam;
    }
    return t;
}
// Per padded dim d: for each output index o, the input index it reads (mode rules above), or -1 for constant
// padding outside the input. Shared by the CPU and CUDA pad kernels.
std::vector<std::vector<int64_t>> pad_source_tables(const PadParams& p);
using PadKernel = void(const PadParams& p, const Tensor& in, const Tensor& out);  // forward x->y, backward gy->gx
}  // namespace cxr::tensor
