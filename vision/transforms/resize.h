// Image resizing for batches [N, C, H, W] (or one image [C, H, W]) with the semantics of
// torchvision.transforms.v2.functional.resize / torch.nn.functional.interpolate (align_corners=False).
//
//   nearest   F.interpolate(mode='nearest'): src = min(⌊dst · in/out⌋, in - 1)          (antialias ignored)
//   bilinear  antialias off: F.interpolate(mode='bilinear'): src = max((dst + ½)·in/out - ½, 0), two taps.
//   bicubic   antialias off: F.interpolate(mode='bicubic'), Keys' cubic convolution with a = -0.75:
//               src = (dst + ½)·s - ½, i0 = ⌊src⌋, t = src - i0, taps i0-1..i0+2 clamped to [0, in-1] with
//               weights W(t+1), W(t), W(1-t), W(2-t),  W(x) = (a+2)|x|³ - (a+3)|x|² + 1          for |x| ≤ 1,
//                                                      W(x) = a|x|³ - 5a|x|² + 8a|x| - 4a         for 1 < |x| < 2.
//   area      F.interpolate(mode='area') = adaptive average pooling: out[i] = mean of in[⌊i·in/out⌋, ⌈(i+1)·in/out⌉).
//   antialias (bilinear/bicubic, torchvision's default; PyTorch's _upsample_*_aa, the PIL-style separable filter):
//             with s = in/out, support = R · max(s, 1) (R = 1 bilinear, 2 bicubic), center c = s·(i + ½):
//               taps j in [max(int(c - support + ½), 0), min(int(c + support + ½), in))   (int truncates),
//               w_j = f((j - c + ½) / max(s, 1)), normalised to sum 1,
//             f = triangle max(0, 1 - |x|) for bilinear, Keys' cubic with a = -0.5 (PIL's choice, as PyTorch)
//             for bicubic. When upsampling (s < 1) the filter is not stretched.
// Every mode is separable: bicubic and the antialiased modes are applied as two small matrices built on the host,
// y = A_h · x · A_wᵀ (A_h [H_out, H], A_w [W_out, W]) with tensor matmul, so the same code runs on every device.
// An output size equal to the input size returns the input unchanged (as torchvision).
#pragma once

#include "tensor/ops/spatial.h"
#include "tensor/tensor.h"

namespace cxr::vision {

enum class Interpolation { nearest, bilinear, bicubic, area };
const char* interpolation_name(Interpolation m);

// Resizes to size = {height, width}.
tensor::Tensor resize(const tensor::Tensor& x, tensor::Size2 size, Interpolation mode = Interpolation::bilinear,
                      bool antialias = true);
// torchvision's resize(img, size: int): the shorter side becomes `size`, the longer one int(size · long / short).
tensor::Size2 shorter_side_size(int64_t height, int64_t width, int64_t size);
tensor::Tensor resize_shorter_side(const tensor::Tensor& x, int64_t size, Interpolation mode = Interpolation::bilinear,
                                   bool antialias = true);

// The [out, in] interpolation matrix of one dimension (rows sum to 1), in double on the host: the weights
// described above for bilinear (antialias off: PyTorch's linear taps), bicubic and area.
std::vector<double> resize_weights(int64_t in, int64_t out, Interpolation mode, bool antialias);

}  // namespace cxr::vision
