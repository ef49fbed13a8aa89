// Normalisation layers: batch_norm, group_norm and layer_norm, matching torch.nn.functional.batch_norm,
// group_norm and layer_norm (Ioffe & Szegedy 2015; Wu & He 2018; Ba, Kiros & Hinton 2016).
//
// Each normalises x over a set S of elements (M = |S|) and applies a per-channel affine map:
//   μ = (1/M) Σ_S x,   σ² = (1/M) Σ_S (x − μ)²  (biased),   rstd = 1/√(σ² + eps),
//   x̂ = (x − μ)·rstd,  y = γ·x̂ + β                       (γ = 1, β = 0 when weight / bias are undefined)
// Gradients (dy = dL/dy, sums and means over the same set S, ĝ = dy·γ):
//   dx = rstd · (ĝ − mean_S(ĝ) − x̂ · mean_S(ĝ·x̂))
//   dγ_c = Σ dy·x̂,  dβ_c = Σ dy   (summed over every element that uses channel c)
// Statistics accumulate in double in the CPU kernels (tensor/cpu/norm.cpp); mean and rstd are saved for the
// backward. f16/bf16 inputs are computed in f32 and cast back.
#pragma once

#include "tensor/tensor.h"

namespace cxr::tensor {

// x [N, C, ...]; running_mean, running_var [C] or undefined; weight, bias [C] or undefined.
//   training: S = all of (N, ...) for each channel c; uses the batch statistics and, when the running stats are
//     defined, updates them in place (outside autograd):
//       running_mean ← (1 − momentum)·running_mean + momentum·μ
//       running_var  ← (1 − momentum)·running_var  + momentum·σ²·M/(M − 1)   (unbiased, as torch)
//     Needs M > 1.
//   eval: μ = running_mean, σ² = running_var (both required); then dx = dy·γ·rstd (the statistics are constants).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// x [N, C, ...], C divisible by groups; S = the (C/groups)·(...) elements of one (sample, group);
// weight, bias [C] or undefined.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

// x [..., *normalized_shape]; S = the trailing normalized_shape elements of each leading index;
// weight, bias of shape normalized_shape (elementwise affine) or undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam); every tensor contiguous, all of one dtype (f32 or f64) ----
// Group statistics ("group_norm", also layer_norm as [M, D, 1] with one group): x [N, C, S]; weight, bias [C] or
// undefined; writes y [N, C, S], mean [N, G], rstd [N, G].
using GroupNormKernel = void(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                             const Tensor& y, const Tensor& mean, const Tensor& rstd);
// dy, x [N, C, S]; mean, rstd [N, G]; weight [C] or undefined. Writes each of dx [N, C, S], dweight [C],
// dbias [C] that is defined.
using GroupNormBackwardKernel = void(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& weight, int64_t groups, const Tensor& dx, const Tensor& dweight,
                                     const Tensor& dbias);
// Per-channel statistics ("batch_norm"): x [N, C, S]; weight, bias, running_mean, running_var [C] or undefined.
// training: batch statistics, running stats (when defined) updated in place; eval: running stats used.
// Writes y [N, C, S], save_mean [C], save_rstd [C] (the μ and rstd that were applied).
using BatchNormKernel = void(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps, const Tensor& y,
                             const Tensor& save_mean, const Tensor& save_rstd);
// dy, x [N, C, S]; save_mean, save_rstd [C]; weight [C] or undefined. training selects the dx formula (batch
// statistics depend on x) or dx = dy·γ·rstd (eval). Writes each of dx, dweight, dbias that is defined.
using BatchNormBackwardKernel = void(const Tensor& dy, const Tensor& x, const Tensor& save_mean,
                                     const Tensor& save_rstd, const Tensor& weight, bool training, const Tensor& dx,
                                     const Tensor& dweight, const Tensor& dbias);
}  // namespace cxr::tensor
