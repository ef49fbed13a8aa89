// Loss functions with PyTorch's definitions (torch.nn.functional.mse_loss, l1_loss,
// binary_cross_entropy_with_logits, cross_entropy, nll_loss), including their class weights, ignore_index,
// label smoothing and the exact normalisation of the weighted mean. Every loss takes a Reduction:
//   none — the per-element (per-sample) losses,  sum — their sum,  mean — as documented per loss.
// mse, l1, nll and cross_entropy are compositions of differentiable ops (their gradients follow by the chain
// rule); bce_with_logits computes its stable forward and records an explicit backward (written below), which
// is exact at x = 0 where a composition through |x| would not be.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::tensor {

enum class Reduction { none, mean, sum };
const char* reduction_name(Reduction r);  // "none", "mean", "sum"

// mse_loss: ℓ = (x − y)²; mean = Σℓ / numel.   dℓ/dx = 2 (x − y),  dℓ/dy = −2 (x − y)
// input and target must have the same shape (floating).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

// l1_loss: ℓ = |x − y|; mean = Σℓ / numel.       dℓ/dx = sign(x − y) (0 where x = y),  dℓ/dy = −dℓ/dx
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

// bce_with_logits: binary cross-entropy on logits x with targets y in [0, 1] (same shape as x), in the stable
// form (no overflow for any x):
//   ℓ = w · [ (1 − y)·x + (1 + (p − 1)·y)·(log(1 + e^(−|x|)) + max(−x, 0)) ]
// which equals w · [ −p·y·log σ(x) − (1 − y)·log(1 − σ(x)) ] since log(1 + e^(−|x|)) + max(−x, 0) = −log σ(x).
// weight w (optional) broadcasts to x's shape; pos_weight p (optional, default 1) broadcasts to x's shape —
// usually [C], one per class on the last dim. mean = Σℓ / numel (weights do not renormalise, as torch).
// Gradients, with s = log(1 + e^(−|x|)) + max(−x, 0) and L = 1 + (p − 1)·y:
//   dℓ/dx = w · (L·σ(x) − p·y)      dℓ/dy = w · (−x + (p − 1)·s)
//   dℓ/dw = (1 − y)·x + L·s         dℓ/dp = w · y · s       (summed over broadcast dims)
Tensor bce_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                       const Tensor& pos_weight = Tensor(), Reduction reduction = Reduction::mean);

// nll_loss: log_probs [N, C] or [N, C, d1, ...] (or unbatched [C]); target class indices (i64/i32) of shape
// [N] or [N, d1, ...] (or 0-d); weight (optional) [C]. For each sample i with target t_i:
//   ℓ_i = −w[t_i] · log_probs[i, t_i],   and ℓ_i = 0 (with weight 0) where t_i == ignore_index
//   none: ℓ (target's shape)   sum: Σ ℓ_i   mean: Σ ℓ_i / Σ_{i not ignored} w[t_i]  (NaN when all are ignored)
// Gradient: dℓ_i/d log_probs[i, c] = −w[t_i] [c = t_i] (divided by the weight sum for mean).
// A target outside [0, C) that is not ignore_index is an error.
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight = Tensor(),
                int64_t ignore_index = -100, Reduction reduction = Reduction::mean);

// cross_entropy: logits [N, C] or [N, C, d1, ...] (or [C]) with class-index targets as in nll_loss.
// logp = log_softmax(logits, class dim). With label smoothing ε (in [0, 1]) and C classes:
//   nll_i    = −w[t_i] · logp[i, t_i]
//   smooth_i = −Σ_c w_c · logp[i, c]        (w_c = 1 without weight)
//   both 0 where t_i == ignore_index
//   none: (1 − ε)·nll_i + (ε / C)·smooth_i          sum: Σ of that
//   mean: [(1 − ε)·Σ nll_i + (ε / C)·Σ smooth_i] / Σ_{i not ignored} w[t_i]
// (torch's definition: the smoothing term of the weighted mean is normalised by the same weight sum).
// Gradient: dℓ_i/dlogits[i, c] = (ε w_sum_i / C + (1−ε) w[t_i]) softmax_c − (1−ε) w[t_i] [c = t_i] − ε w_c / C,
// w_sum_i = Σ_c w_c; it follows by the chain rule through log_softmax.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = Tensor(),
                     int64_t ignore_index = -100, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::mean);

}  // namespace cxr::tensor
