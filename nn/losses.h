// Losses used by the classifier trainers, as functions of (logits, targets):
//   masked_bce_with_logits — multi-label binary cross-entropy that ignores unknown labels;
//   sigmoid_focal_loss     — the focal loss of Lin et al. 2017 ("Focal Loss for Dense Object Detection", eq. 5),
//                            in torchvision.ops.sigmoid_focal_loss's form, with the same label masking;
// and re-exports cross_entropy, mse_loss, bce_with_logits and Reduction from tensor/ops/loss.h.
//
// Label masking (CheXpert / NIH conventions): a target is KNOWN when it is a number ≥ 0 (0 negative, 1 positive,
// soft labels in between) and UNKNOWN when it is NaN or negative (−1 "uncertain/unmentioned" under the U-Ignore
// policy of Irvin et al. 2019). Unknown entries contribute 0 to the loss and receive 0 gradient. With
//   ℓ_ij = bce(x_ij, y_ij; pos_weight_j)  (tensor/ops/loss.h: −p·y·log σ(x) − (1 − y)·log(1 − σ(x)))
// the reductions are   none: ℓ·known (0 where unknown)   sum: Σ_known ℓ   mean: Σ_known ℓ / #known
// and mean is 0 (with zero gradient) when no entry is known — a batch without labels adds nothing, instead of NaN.
// With every label known, mean equals torch's F.binary_cross_entropy_with_logits(x, y, pos_weight=p).
//
// Focal loss, p = σ(x), p_t = p·y + (1 − p)·(1 − y), α_t = α·y + (1 − α)·(1 − y):
//   FL = α_t · (1 − p_t)^γ · bce(x, y)        (α < 0 disables the α_t factor, as torchvision)
// masked and reduced as above (mean over known entries; equal to torchvision's mean when all are known).
// Gradients follow by the chain rule through bce_with_logits (exact at x = 0), sigmoid and pow; γ = 0 skips the
// modulating factor (whose derivative 0·0^(−1) would be NaN where p_t = 1).
#pragma once

#include "tensor/ops/loss.h"
#include "tensor/tensor.h"

namespace cxr::nn {

using tensor::bce_with_logits;
using tensor::cross_entropy;
using tensor::mse_loss;
using tensor::Reduction;

// The known-label mask of targets (1 where known, 0 where NaN or negative), in the targets' dtype.
tensor::Tensor known_label_mask(const tensor::Tensor& targets);

// logits and targets of the same shape (usually [N, C]); pos_weight optional, broadcast to it (usually [C]).
tensor::Tensor masked_bce_with_logits(const tensor::Tensor& logits, const tensor::Tensor& targets,
                                      const tensor::Tensor& pos_weight = tensor::Tensor(),
                                      Reduction reduction = Reduction::mean);

tensor::Tensor sigmoid_focal_loss(const tensor::Tensor& logits, const tensor::Tensor& targets, double alpha = 0.25,
                                  double gamma = 2.0, Reduction reduction = Reduction::mean);

}  // namespace cxr::nn
