// CPU GEMM kernels: the plain reference and the fast packed/blocked version (see gemm.h for the math).
//
// Fast path (sgemm_fast / dgemm_fast) follows the BLIS loop nest (Van Zee & van de Geijn, "BLIS: A Framework
// for Rapidly Instantiating BLAS Functionality", TOMS 2015; Goto & van de Geijn, TOMS 2008):
//   for jc in N step NC            B block  [KC, NC] packed into NR-wide column panels   (lives in L3)
//     for pc in K step KC
//       pack B block
//       for ic0 in M step MBIG     A region [MBIG, KC] packed into MR-tall row panels    (L3; one MC block in L2)
//         pack A region
//         parallel over tiles (MC rows x a chunk of NR panels), dynamic schedule:
//           for jr (NR panel):  for ir (MR panel):  micro-kernel  C[MR, NR] (+)= A_panel[MR, KC] * B_panel[KC, NR]
// Panels are zero-padded to MR/NR, so the micro-kernel always computes a full tile; edge tiles go through a
// small buffer. beta is applied on the first KC block only (later blocks accumulate with beta = 1); beta == 0
// never reads C. alpha is applied when a tile is written.
//
// Micro-kernels (float, MR = 6, NR = 16: 12 accumulators of 8 lanes, 2 B loads + 6 broadcasts per 12 FMAs):
//   * avx2+fma: AVX2/FMA intrinsics inside a function marked __attribute__((target("avx2,fma"))), selected at
//     run time with __builtin_cpu_supports("avx2") && ("fma"). The file itself is compiled for the portable
//     baseline (no -march=native needed), so one binary runs everywhere and is fast on AVX2 machines.
//     Chosen over a CXR_NATIVE build option because -march=native binaries break when copied to an older
//     cluster node. Chosen over relying on the auto-vectoriser because that is fragile with respect to flags:
//     measured at 1024^3 on 2 Zen 3 cores, the intrinsics kernel gives 151-162 GFLOP/s under every flag set
//     tried, while the plain-C++ kernel gives 27 GFLOP/s at the portable baseline (-O2), 57 at -O2
//     -march=native, and matches the intrinsics (160) only at -O3 -march=native -ffp-contract=fast
//     (ISO -std=c++17 turns FMA contraction off, so the compiler may not fuse a*b+c into an FMA on its own).
//     Only compiled on x86 with GCC/Clang (CXR_GEMM_HAVE_AVX2_KERNEL); elsewhere only the portable kernel exists.
//   * portable: the same tile as plain C++ loops with `#pragma omp simd` on the NR loop; any compiler/ISA.
// The FMA kernel rounds once per multiply-add, the portable kernel twice; both are compared to the double
// reference with a tolerance scaled by K (tests/tensor/test_cpu_gemm.cpp).
// Double uses the portable loop nest and kernel (MR = 6, NR = 8): it serves gradient checks, not speed.
//
// Threading: OpenMP over tiles when the problem is big enough (2*M*N*K >= 2^21 FLOP) and we are not already
// inside a parallel region (conv2d runs per-image GEMMs inside its own parallel loop); packing is parallel too.
// Results do not depend on the number of threads (each C element is computed by one thread, same order).
#include "tensor/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "tensor/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CXR_GEMM_HAVE_AVX2_KERNEL 1
#include <immintrin.h>
#else
#define CXR_GEMM_HAVE_AVX2_KERNEL 0
#endif

namespace cxr::tensor::cpu {

// ------------------------------------------------------------------------------------------------------------
// Reference
// ------------------------------------------------------------------------------------------------------------

namespace {

void check_gemm_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc) {
    CXR_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
    const int64_t a_cols = trans_a ? M : K;
    const int64_t b_cols = trans_b ? K : N;
    CXR_CHECK(lda >= std::max<int64_t>(1, a_cols), "gemm: lda=", lda, " < ", a_cols, " (trans_a=", trans_a, ")");
    CXR_CHECK(ldb >= std::max<int64_t>(1, b_cols), "gemm: ldb=", ldb, " < ", b_cols, " (trans_b=", trans_b, ")");
    CXR_CHECK(ldc >= std::max<int64_t>(1, N), "gemm: ldc=", ldc, " < N=", N);
}

// C = beta * C over an M x N block, not reading C when beta == 0.
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
    for (int64_t m = 0; m < M; ++m) {
        T* row = C + m * ldc;
        if (beta == T(0)) {
            for (int64_t n = 0; n < N; ++n) row[n] = T(0);
        } else if (beta != T(1)) {
            for (int64_t n = 0; n < N; ++n) row[n] = beta * row[n];
        }
    }
}

}  // namespace

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
    check_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; ++k) {
                const double a = trans_a ? A[k * lda + m] : A[m * lda + k];
                const double b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
                acc += a * b;
            }
            const double prior = (beta == T(0)) ? 0.0 : double(beta) * double(C[m * ldc + n]);
            C[m * ldc + n] = T(double(alpha) * acc + prior);
        }
    }
}

template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                    const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                     const double*, int64_t, double, double*, int64_t);

// ------------------------------------------------------------------------------------------------------------
// Fast path: packing, micro-kernels, blocked driver
// ------------------------------------------------------------------------------------------------------------

namespace {

// Blocking parameters. KC x NR float B panel = 16 KiB (L1, 32 KiB/core on Zen 3), MC x KC A block = 240 KiB
// (half of the 512 KiB L2/core), KC x NC B block = 4 MiB (L3). Tuned on AMD EPYC (Zen 3, 2 cores) with 512^3,
// 1024^3 and 2048^3 runs: KC in {192, 256, 320, 384, 512} x MC in {96, 144, 192, 240, 336}; KC = 256,
// MC = 240 was best (1024^3: 177 GFLOP/s vs 157 for MC = 144).
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 240;
constexpr int64_t kNC = 4096;
constexpr int64_t kMBig = 1920;  // rows of A packed at once (multiple of kMC)

// Micro-kernel: C_tile[MR, NR] = alpha * (Ap * Bp) + beta * C_tile, with Ap packed [kc][MR], Bp packed [kc][NR].
// Writes the full tile; the driver passes a scratch tile for edges. beta == 0 does not read C.
template <class T>
using MicroKernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta);

template <class T, int MR, int NR>
void micro_kernel_portable(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, T* __restrict C,
                           int64_t ldc, T alpha, T beta) {
    alignas(64) T acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
    for (int64_t k = 0; k < kc; ++k) {
        const T* a = Ap + k * MR;
        const T* b = Bp + k * NR;
        for (int i = 0; i < MR; ++i) {
            const T ai = a[i];
#pragma omp simd
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
        }
    }
    for (int i = 0; i < MR; ++i) {
        T* c = C + i * ldc;
        if (beta == T(0)) {
            for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
        }
    }
}

#if CXR_GEMM_HAVE_AVX2_KERNEL
// c[0:16] = alpha * (lo, hi) + beta * c[0:16]; c is read only when read_c (beta != 0).
__attribute__((target("avx2,fma"))) inline void store_row_avx2(float* c, __m256 lo, __m256 hi, __m256 va,
                                                                __m256 vb, bool read_c) {
    lo = _mm256_mul_ps(va, lo);
    hi = _mm256_mul_ps(va, hi);
    if (read_c) {
        lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
        hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
    }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
}

// 6 x 16 float micro-kernel with AVX2 + FMA. Each k step: load 16 floats of B (2 ymm), broadcast 6 floats of A,
// 12 FMAs into 12 ymm accumulators (15 of 16 ymm registers live). Unrolled by 4 in k to amortise loop overhead.
__attribute__((target("avx2,fma"))) void micro_kernel_avx2_6x16(int64_t kc, const float* __restrict Ap,
                                                                 const float* __restrict Bp, float* __restrict C,
                                                                 int64_t ldc, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

#define CXR_SGEMM_AVX2_STEP(a, b)                                       \
    {                                                                   \
        const __m256 b0 = _mm256_load_ps(b);                            \
        const __m256 b1 = _mm256_load_ps((b) + 8);                      \
        __m256 av = _mm256_broadcast_ss(a + 0);                         \
        c00 = _mm256_fmadd_ps(av, b0, c00);                             \
        c01 = _mm256_fmadd_ps(av, b1, c01);                             \
        av = _mm256_broadcast_ss(a + 1);                                \
        c10 = _mm256_fmadd_ps(av, b0, c10);                             \
        c11 = _mm256_fmadd_ps(av, b1, c11);                             \
        av = _mm256_broadcast_ss(a + 2);                                \
        c20 = _mm256_fmadd_ps(av, b0, c20);                             \
        c21 = _mm256_fmadd_ps(av, b1, c21);                             \
        av = _mm256_broadcast_ss(a + 3);                                \
        c30 = _mm256_fmadd_ps(av, b0, c30);                             \
        c31 = _mm256_fmadd_ps(av, b1, c31);                             \
        av = _mm256_broadcast_ss(a + 4);                                \
        c40 = _mm256_fmadd_ps(av, b0, c40);                             \
        c41 = _mm256_fmadd_ps(av, b1, c41);                             \
        av = _mm256_broadcast_ss(a + 5);                                \
        c50 = _mm256_fmadd_ps(av, b0, c50);                             \
        c51 = _mm256_fmadd_ps(av, b1, c51);                             \
    }

    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        CXR_SGEMM_AVX2_STEP(Ap, Bp);
        CXR_SGEMM_AVX2_STEP(Ap + 6, Bp + 16);
        CXR_SGEMM_AVX2_STEP(Ap + 12, Bp + 32);
        CXR_SGEMM_AVX2_STEP(Ap + 18, Bp + 48);
        Ap += 24;
        Bp += 64;
    }
    for (; k < kc; ++k) {
        CXR_SGEMM_AVX2_STEP(Ap, Bp);
        Ap += 6;
        Bp += 16;
    }
#undef CXR_SGEMM_AVX2_STEP

    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    const bool read_c = (beta != 0.0f);
    store_row_avx2(C + 0 * ldc, c00, c01, va, vb, read_c);
    store_row_avx2(C + 1 * ldc, c10, c11, va, vb, read_c);
    store_row_avx2(C + 2 * ldc, c20, c21, va, vb, read_c);
    store_row_avx2(C + 3 * ldc, c30, c31, va, vb, read_c);
    store_row_avx2(C + 4 * ldc, c40, c41, va, vb, read_c);
    store_row_avx2(C + 5 * ldc, c50, c51, va, vb, read_c);
}

bool cpu_has_avx2_fma() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

MicroKernel<float> select_sgemm_kernel() {
#if CXR_GEMM_HAVE_AVX2_KERNEL
    if (cpu_has_avx2_fma()) return &micro_kernel_avx2_6x16;
#endif
    return &micro_kernel_portable<float, 6, 16>;
}

// Chosen once, on first use (function-local static: safe against static initialisation order).
MicroKernel<float> sgemm_kernel() {
    static const MicroKernel<float> kernel = select_sgemm_kernel();
    return kernel;
}

// Aligned scratch buffer, one per thread, grown on demand and kept for the thread's lifetime.
template <class T>
T* scratch_buffer(int slot, int64_t count) {
    struct Buffer {
        T* data = nullptr;
        int64_t capacity = 0;
        ~Buffer() { std::free(data); }
    };
    thread_local Buffer buffers[2];
    Buffer& buf = buffers[slot];
    if (buf.capacity < count) {
        std::free(buf.data);
        const size_t bytes = ((size_t(count) * sizeof(T) + 63) / 64) * 64;
        buf.data = static_cast<T*>(std::aligned_alloc(64, bytes));
        CXR_CHECK(buf.data != nullptr, "gemm: cannot allocate ", bytes, " bytes of packing buffer");
        buf.capacity = count;
    }
    return buf.data;
}

// Packs op(A)[m0 : m0+mc, k0 : k0+kc] into MR-row panels: panel p holds rows m0 + p*MR ..., laid out [kc][MR],
// rows past mc zero-filled. Panels are distributed over the threads of the enclosing parallel region (if any).
template <class T, int MR>
void pack_a(bool trans_a, const T* A, int64_t lda, int64_t m0, int64_t mc, int64_t k0, int64_t kc, T* Ap) {
    const int64_t panels = (mc + MR - 1) / MR;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
        T* dst = Ap + p * MR * kc;
        const int64_t rows = std::min<int64_t>(MR, mc - p * MR);
        const int64_t mbase = m0 + p * MR;
        if (!trans_a) {
            for (int64_t k = 0; k < kc; ++k) {
                for (int64_t i = 0; i < rows; ++i) dst[k * MR + i] = A[(mbase + i) * lda + k0 + k];
                for (int64_t i = rows; i < MR; ++i) dst[k * MR + i] = T(0);
            }
        } else {
            for (int64_t k = 0; k < kc; ++k) {
                const T* src = A + (k0 + k) * lda + mbase;
                for (int64_t i = 0; i < rows; ++i) dst[k * MR + i] = src[i];
                for (int64_t i = rows; i < MR; ++i) dst[k * MR + i] = T(0);
            }
        }
    }
}

// Packs op(B)[k0 : k0+kc, n0 : n0+nc] into NR-column panels laid out [kc][NR], zero-filled past nc.
template <class T, int NR>
void pack_b(bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc, T* Bp) {
    const int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
        T* dst = Bp + p * NR * kc;
        const int64_t cols = std::min<int64_t>(NR, nc - p * NR);
        const int64_t nbase = n0 + p * NR;
        if (!trans_b) {
            for (int64_t k = 0; k < kc; ++k) {
                const T* src = B + (k0 + k) * ldb + nbase;
                for (int64_t j = 0; j < cols; ++j) dst[k * NR + j] = src[j];
                for (int64_t j = cols; j < NR; ++j) dst[k * NR + j] = T(0);
            }
        } else {
            for (int64_t j = 0; j < cols; ++j) {
                const T* src = B + (nbase + j) * ldb + k0;
                for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
            }
            for (int64_t k = 0; k < kc; ++k)
                for (int64_t j = cols; j < NR; ++j) dst[k * NR + j] = T(0);
        }
    }
}

template <class T, int MR, int NR>
void gemm_blocked(MicroKernel<T> kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
    check_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == T(0)) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    static_assert(kMC % MR == 0 && kNC % NR == 0 && kMBig % kMC == 0, "blocking must align with the tile");

    const int64_t nc_max = std::min(kNC, ((N + NR - 1) / NR) * NR);
    const int64_t kc_max = std::min(kKC, K);
    const int64_t mbig_max = std::min(kMBig, ((M + MR - 1) / MR) * MR);
    T* Bp = scratch_buffer<T>(0, kc_max * nc_max);    // shared by all threads
    T* Ap = scratch_buffer<T>(1, mbig_max * kc_max);  // shared by all threads

    int threads = 1;
#ifdef _OPENMP
    const double flops = 2.0 * double(M) * double(N) * double(K);
    if (!omp_in_parallel() && flops >= double(1 << 21)) threads = omp_get_max_threads();
#endif

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        alignas(64) T edge[MR * NR];
        for (int64_t jc = 0; jc < N; jc += kNC) {
            const int64_t nc = std::min(kNC, N - jc);
            const int64_t n_panels = (nc + NR - 1) / NR;
            for (int64_t pc = 0; pc < K; pc += kKC) {
                const int64_t kc = std::min(kKC, K - pc);
                const T beta_k = (pc == 0) ? beta : T(1);
                pack_b<T, NR>(trans_b, B, ldb, pc, kc, jc, nc, Bp);  // omp for: implicit barrier
                for (int64_t ic0 = 0; ic0 < M; ic0 += kMBig) {
                    const int64_t mbig = std::min(kMBig, M - ic0);
                    pack_a<T, MR>(trans_a, A, lda, ic0, mbig, pc, kc, Ap);  // omp for: implicit barrier

                    // Work tiles: (MC-row block) x (chunk of NR panels). Enough chunks for load balance.
                    const int64_t m_blocks = (mbig + kMC - 1) / kMC;
                    int64_t n_chunks = 1;
                    const int64_t want = 4 * int64_t(threads);
                    if (threads > 1 && m_blocks < want) n_chunks = std::min(n_panels, (want + m_blocks - 1) / m_blocks);
                    const int64_t panels_per_chunk = (n_panels + n_chunks - 1) / n_chunks;
                    const int64_t tiles = m_blocks * n_chunks;
#pragma omp for schedule(dynamic, 1)
                    for (int64_t t = 0; t < tiles; ++t) {
                        const int64_t mb = t / n_chunks;
                        const int64_t nb = t % n_chunks;
                        const int64_t i_begin = mb * kMC;
                        const int64_t i_end = std::min(mbig, i_begin + kMC);
                        const int64_t p_begin = nb * panels_per_chunk;
                        const int64_t p_end = std::min(n_panels, p_begin + panels_per_chunk);
                        for (int64_t jp = p_begin; jp < p_end; ++jp) {
                            const int64_t j = jp * NR;
                            const int64_t nr = std::min<int64_t>(NR, nc - j);
                            const T* bpanel = Bp + jp * NR * kc;
                            for (int64_t i = i_begin; i < i_end; i += MR) {
                                const int64_t mr = std::min<int64_t>(MR, i_end - i);
                                const T* apanel = Ap + (i / MR) * MR * kc;
                                T* c = C + (ic0 + i) * ldc + jc + j;
                                if (mr == MR && nr == NR) {
                                    kernel(kc, apanel, bpanel, c, ldc, alpha, beta_k);
                                } else {
                                    kernel(kc, apanel, bpanel, edge, NR, alpha, T(0));
                                    for (int64_t ii = 0; ii < mr; ++ii) {
                                        T* crow = c + ii * ldc;
                                        const T* erow = edge + ii * NR;
                                        if (beta_k == T(0)) {
                                            for (int64_t jj = 0; jj < nr; ++jj) crow[jj] = erow[jj];
                                        } else {
                                            for (int64_t jj = 0; jj < nr; ++jj)
                                                crow[jj] = erow[jj] + beta_k * crow[jj];
                                        }
                                    }
                                }
                            }
                        }
                    }  // implicit barrier: Ap is reused by the next region
                }
            }
        }
    }
}

}  // namespace

void sgemm_fast(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    gemm_blocked<float, 6, 16>(sgemm_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_fast_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    gemm_blocked<float, 6, 16>(&micro_kernel_portable<float, 6, 16>, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                               ldb, beta, C, ldc);
}

void dgemm_fast(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
    gemm_blocked<double, 6, 8>(&micro_kernel_portable<double, 6, 8>, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                               ldb, beta, C, ldc);
}

const char* sgemm_kernel_name() {
#if CXR_GEMM_HAVE_AVX2_KERNEL
    if (sgemm_kernel() == &micro_kernel_avx2_6x16) return "avx2+fma 6x16";
#endif
    return "portable 6x16";
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
        sgemm_fast(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        static_assert(std::is_same_v<T, double>, "gemm: float or double only");
        dgemm_fast(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int64_t batch, int64_t stride_a,
                  int64_t stride_b, int64_t stride_c) {
    CXR_CHECK(batch >= 0, "gemm_batched: negative batch ", batch);
    CXR_CHECK(batch <= 1 || stride_c != 0, "gemm_batched: stride_c == 0 with batch ", batch,
              " would make the outputs overlap");
    check_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    // Small matrices: one GEMM per thread. Large ones: the GEMM itself is parallel.
    const double flops = 2.0 * double(M) * double(N) * double(K);
    const bool outer_parallel = batch > 1 && flops < double(1 << 24);
#pragma omp parallel for schedule(dynamic, 1) if (outer_parallel)
    for (int64_t b = 0; b < batch; ++b) {
        gemm<T>(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                C + b * stride_c, ldc);
    }
}

template void gemm_batched<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                  int64_t, float, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void gemm_batched<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                   const double*, int64_t, double, double*, int64_t, int64_t, int64_t, int64_t,
                                   int64_t);

}  // namespace cxr::tensor::cpu
