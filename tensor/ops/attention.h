// Scaled dot-product attention, matching torch.nn.functional.scaled_dot_product_attention with dropout_p = 0
// (Vaswani et al. 2017, "Attention Is All You Need", eq. 1).
//
//   q [..., L, E], k [..., S, E], v [..., S, Ev]   (batch dims broadcast as in matmul)
//   A = scale · q kᵀ + B                           [..., L, S],  scale = 1/√E unless given
//   P = softmax(A, -1),  out = P v                 [..., L, Ev]
// B comes from the mask (broadcastable to [..., L, S]):
//   bool mask:     B = 0 where True (attend), −∞ where False (as torch: True = take part in attention);
//   float mask:    B = mask (added; it receives a gradient when it requires one);
//   is_causal:     B = −∞ where j > i (top-left aligned lower triangle, as torch), incompatible with a mask.
// A row whose scores are all −∞ (fully masked) gives P = 0 and out = 0 there, with zero gradients (torch's
// "safe softmax" rule), instead of NaN.
// Gradients follow from the composition (matmul, softmax, where, add):
//   dP = dout vᵀ, dv = Pᵀ dout, dA = P ⊙ (dP − Σ_j dP ⊙ P), dq = scale · dA k, dk = scale · dAᵀ q, dB = dA.
// The CPU path is this composed reference; a fused kernel can be added beside it and tested against it.
#pragma once

#include <optional>

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

}  // namespace cxr::tensor
