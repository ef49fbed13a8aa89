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
// The composed reference above is what runs for f64, with a mask, or with E ≠ Ev. When there is no attn_mask
// (is_causal allowed), q, k, v are f32, f16 or bf16, E == Ev ≥ 1 and L, S ≥ 1, the op runs the fused tiled
// online-softmax kernels instead (FlashAttention-2 style, Dao 2023), which never hold the [..., L, S] matrix:
// on the CPU tensor/cpu/attention.cpp (any E; OpenMP over (batch, query block) and (batch, key block), tile
// products through the f32 sgemm), on CUDA tensor/cuda/attention.cu (only for E in [kAttentionMinHeadDim,
// kAttentionMaxHeadDim]):
//   forward   m_i = max_j A_ij,  l_i = Σ_j e^(A_ij − m_i),  out_i = Σ_j e^(A_ij − m_i) v_j / l_i, accumulated one
//             key tile at a time with the running (m, l) rescaled; lse_i = m_i + log l_i is saved;
//   backward  P_ij = e^(A_ij − lse_i),  Δ_i = Σ_d dout_id out_id (= Σ_j P_ij dP_ij),  dA = P ⊙ (dP − Δ), then
//             dv, dk from one kernel over key tiles and dq from one over query tiles (no atomics: deterministic).
// All sums in f32 (f16/bf16 are read and written in their dtype; the CPU kernels widen them to f32 once and keep
// the softmax row sums in double). Everything else (a mask, f64, E ≠ Ev, L = 0 or S = 0, on CUDA another head
// dim) takes the composed path.
// Switch: the environment variable CXR_ATTN_FUSED=OFF (or off, 0, false; read at each call) forces the composed
// path on every device (for audits, tests and benchmarks of the fused kernels against it).
#pragma once

#include <optional>

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// Head dims the fused CUDA kernels are used for (the SIMT kernels pad E up to one of 32, 40, 64, 80, 96, 128, 160;
// the tensor-core forward for f16/bf16 up to one of 32, 48, 64, 80, 96, 128, 160). The CPU kernels take any E.
constexpr int kAttentionMinHeadDim = 32;
constexpr int kAttentionMaxHeadDim = 160;

// True when scaled_dot_product_attention(q, k, v, attn_mask, is_causal) takes the fused kernels (for tests and
// benchmarks; the rule, CXR_ATTN_FUSED included, is in the header comment above).
bool attention_uses_fused_kernel(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& attn_mask = Tensor(), bool is_causal = false);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam) ----
// Every tensor contiguous, on one device, one dtype T (f32, f16 or bf16) unless said otherwise; B = flattened batch.
// "attention_forward": q [B, L, E], k, v [B, S, E] (S ≥ 1), scale the score multiplier; writes out [B, L, E] (T)
// and lse [B, L] (f32, lse_i = log Σ_j e^(scale·q_i·k_j) over the unmasked keys).
using AttentionForwardKernel = void(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool is_causal,
                                    const Tensor& out, const Tensor& lse);
// "attention_backward": the forward's inputs, its out and lse, and dout = dL/dout [B, L, E]; writes dq [B, L, E],
// dk, dv [B, S, E].
using AttentionBackwardKernel = void(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& dout, const Tensor& lse, double scale, bool is_causal,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv);
}  // namespace cxr::tensor
