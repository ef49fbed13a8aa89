// CPU GEMM kernels on raw row-major pointers: a plain reference and a fast blocked version.
//
// Math (row-major, BLAS-like semantics):
//   C[m, n] = alpha * sum_k op(A)[m, k] * op(B)[k, n] + beta * C[m, n],   0 <= m < M, 0 <= n < N, 0 <= k < K
//   op(A)[m, k] = trans_a ? A[k * lda + m] : A[m * lda + k]        (A stored [M, K] or, transposed, [K, M])
//   op(B)[k, n] = trans_b ? B[n * ldb + k] : B[k * ldb + n]        (B stored [K, N] or, transposed, [N, K])
// When beta == 0, C is never read (NaN/Inf already in C do not propagate), as in BLAS.
// When K == 0 (or alpha == 0), C = beta * C (again without reading C if beta == 0).
//
// gemm_reference: plain triple loop, double accumulation; the oracle every fast path is tested against.
// sgemm_fast:     packed, cache-blocked (BLIS-style loop nest) float GEMM with a register-blocked micro-kernel,
//                 runtime-dispatched to an AVX2+FMA kernel when the CPU has it, OpenMP over the cores.
// dgemm_fast:     the same blocked loop nest with a portable double micro-kernel (double is used on the CPU
//                 for gradient checks, where correctness, not speed, is what matters).
// gemm<T>:        the entry point the ops use: float -> sgemm_fast, double -> dgemm_fast.
// gemm_batched:   `batch` independent GEMMs at constant element strides between consecutive A, B, C matrices.
//
// Leading dimensions must be >= the stored row length (lda >= (trans_a ? M : K), etc.); they are checked.
#pragma once

#include <cstdint>

namespace cxr::tensor::cpu {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

void sgemm_fast(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void dgemm_fast(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// Dispatches on T: float -> sgemm_fast, double -> dgemm_fast. Defined for float and double only.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// For b in [0, batch): gemm on A + b*stride_a, B + b*stride_b, C + b*stride_c (strides in elements).
// Uses the fast path of gemm<T>. stride_c must keep the C matrices disjoint (not checked beyond stride_c != 0
// when batch > 1); A/B strides may be 0 (broadcast of one operand).
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int64_t batch, int64_t stride_a,
                  int64_t stride_b, int64_t stride_c);

// sgemm_fast forced onto the portable micro-kernel (what non-AVX2 CPUs run); for tests and benchmarks.
void sgemm_fast_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Name of the float micro-kernel sgemm_fast uses on this CPU ("avx2+fma 6x16" or "portable 6x16"),
// for benchmark and log output.
const char* sgemm_kernel_name();

}  // namespace cxr::tensor::cpu
