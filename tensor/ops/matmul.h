// Matrix products: matmul (torch.matmul semantics), linear (torch.nn.functional.linear) and baddbmm.
//
//   matmul(a, b):  C = A B,  C[..., m, n] = sum_k A[..., m, k] B[..., k, n]
//     - 1-d · 1-d: dot product (0-d result);
//     - 2-d · 2-d: matrix product;
//     - a 1-d operand is promoted to a matrix ([K] -> [1, K] on the left, [K] -> [K, 1] on the right) and the
//       added dim is removed from the result;
//     - otherwise batched: the batch dims (all but the last two) broadcast by NumPy rules.
//     Gradients: dA = dC Bᵀ, dB = Aᵀ dC, each summed over the batch dims its operand was broadcast along.
//   linear(x, W, b):  y = x Wᵀ + b,  x [..., in], W [out, in], b [out] or undefined, y [..., out]
//     (composed of matmul and add; dx = dy W, dW = Σ dyᵀ x, db = Σ dy over the leading dims).
//   baddbmm(input, b1, b2, beta, alpha):  out = beta · input + alpha · (b1 @ b2),  b1 [B, n, m], b2 [B, m, p],
//     input broadcastable to [B, n, p]; as torch, beta == 0 ignores input (NaN/Inf in it do not propagate).
//
// The CPU kernel ("matmul", tensor/cpu/matmul.cpp) is a batched strided GEMM on top of tensor/cpu/gemm.h:
// operands whose matrices are row-major or transposed-row-major views are passed as they are (with transpose
// flags), anything else is made contiguous first. f16/bf16 are computed in f32 and rounded back.
#pragma once

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, double beta = 1.0,
               double alpha = 1.0);

// CPU switch: when on, the CPU matmul and conv kernels run their plain reference loops (double accumulation)
// instead of the fast blocked GEMM / im2col paths. Off by default; the environment variable
// CXR_CPU_REFERENCE=1 turns it on at start-up. For audits and for tests of the fast paths.
void set_cpu_reference_kernels(bool on);
bool cpu_reference_kernels();

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signature (the backend seam) ----
// a [B, M, K], b [B, K, N] (f32 or f64, same dtype), out [B, M, N] contiguous: out[i] = a[i] @ b[i].
// Each operand's batch stride is arbitrary (0 = broadcast); its matrices are row-major (stride(2) == 1) or
// column-major (stride(1) == 1), with the other stride at least the row length. M, N, K >= 1.
using MatmulKernel = void(const Tensor& a, const Tensor& b, const Tensor& out);
}  // namespace cxr::tensor
