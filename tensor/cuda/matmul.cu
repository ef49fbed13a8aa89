// CUDA kernels of the matmul family ("matmul", MatmulKernel of tensor/ops/matmul.h): a batched strided GEMM
// out[b] = a[b] @ b[b] for a [B, M, K], b [B, K, N] (batch stride 0 = broadcast; each matrix row-major or
// column-major, see the kernel signature) and out contiguous [B, M, N].
//
// Two paths, chosen at EACH call from the environment (so a test can setenv() between calls):
//   - default: cuBLAS cublasGemmStridedBatchedEx. cuBLAS is column-major, so the row-major product C = A B is
//     computed as Cᵀ = Bᵀ Aᵀ: a row-major operand with leading dim ld is the column-major transpose with the same
//     ld (op N), a column-major operand is passed with op T. f32 uses CUBLAS_COMPUTE_32F (exact fp32 FMA) unless
//     CXR_TF32=1 selects CUBLAS_COMPUTE_32F_FAST_TF32; f64 uses CUBLAS_COMPUTE_64F; f16/bf16 use f32 compute.
//     Batches run in chunks of at most 65535.
//   - CXR_CUBLAS=OFF (or 0): the hand-written GEMMs below, gemm_strided_batched<T>: C(b, m, n) =
//     alpha · Σ_k A(b, m, k) B(b, k, n) + beta · C(b, m, n) over arbitrary element strides.
//     f16/bf16 on a device of compute capability >= 8.0 (unless CXR_GEMM_TC=OFF): the tensor-core kernel
//     tc_gemm_kernel — WMMA m16n16k16 with fp32 accumulators, 128x128x32 block tiles, 8 warps of 64x32, a 3-deep
//     cp.async shared-memory ring, any strides (a vectorised 16-byte path for aligned row/column-major operands,
//     a scalar strided loader otherwise), zero-fill past the edges; details at the kernel.
//     f32/f64 (and f16/bf16 otherwise): the SIMT tiled kernel tiled_gemm_kernel. One 256-thread block
//     computes a 64x64 tile of C; the K loop walks 16-wide slabs staged in shared memory (As[16][64],
//     Bs[16][64]); each thread accumulates a 4x4 micro-tile in registers (float for f32/f16/bf16, double for
//     f64) in ascending k order, so results are deterministic. grid = (⌈M/64⌉, ⌈N/64⌉, batch chunk).
// The tiled GEMM is also the GEMM of the im2col convolution fallback (tensor/cuda/conv.cu declares it).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/matmul.h"

namespace cxr::tensor::cuda {

// Shared with tensor/cuda/conv.cu (declared there too): the switches and the tiled GEMM.
bool cublas_enabled();  // CXR_CUBLAS is not OFF
template <class T>
void gemm_strided_batched(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const T* A, int64_t sAb,
                          int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, double beta,
                          T* C, int64_t sCb, int64_t sCm, int64_t sCn);

// True unless the environment variable `name` is "OFF", "off", "0" or "false" (read at each call).
bool env_switch_on(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return true;
    return !(std::strcmp(v, "OFF") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "0") == 0 ||
             std::strcmp(v, "false") == 0);
}

namespace {

constexpr int kTile = 64, kSlab = 16, kThreads = 256;

template <class T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <class T>
__device__ inline typename Acc<T>::type to_acc(T v) { return static_cast<typename Acc<T>::type>(static_cast<typename ComputeType<T>::type>(v)); }

template <class T>
__global__ void tiled_gemm_kernel(int64_t M, int64_t N, int64_t K, typename Acc<T>::type alpha, const T* A,
                                  int64_t sAb, int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk,
                                  int64_t sBn, typename Acc<T>::type beta, T* C, int64_t sCb, int64_t sCm,
                                  int64_t sCn, int64_t batch0) {
    using AT = typename Acc<T>::type;
    __shared__ AT As[kSlab][kTile];  // As[k][m]
    __shared__ AT Bs[kSlab][kTile];  // Bs[k][n]
    const int64_t b = batch0 + blockIdx.z;
    const int64_t m0 = (int64_t)blockIdx.x * kTile, n0 = (int64_t)blockIdx.y * kTile;  // M tiles on x (2^31 - 1)
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;  // micro-tile (ty*4.., tx*4..)
    A += b * sAb;
    B += b * sBb;
    C += b * sCb;
    AT acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = AT(0);
    for (int64_t k0 = 0; k0 < K; k0 += kSlab) {
        // 64*16 = 1024 elements of each slab, 4 per thread.
        for (int e = threadIdx.x; e < kSlab * kTile; e += kThreads) {
            const int kk = e / kTile, mm = e % kTile;
            const int64_t gk = k0 + kk, gm = m0 + mm, gn = n0 + mm;
            As[kk][mm] = (gk < K && gm < M) ? to_acc(A[gm * sAm + gk * sAk]) : AT(0);
            Bs[kk][mm] = (gk < K && gn < N) ? to_acc(B[gk * sBk + gn * sBn]) : AT(0);
        }
        __syncthreads();
        for (int kk = 0; kk < kSlab; ++kk) {
            AT av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
            for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const int64_t gm = m0 + ty * 4 + i;
        if (gm >= M) continue;
        for (int j = 0; j < 4; ++j) {
            const int64_t gn = n0 + tx * 4 + j;
            if (gn >= N) continue;
            T* c = C + gm * sCm + gn * sCn;
            AT v = alpha * acc[i][j];
            if (beta != AT(0)) v += beta * to_acc(*c);
            *c = T(static_cast<typename ComputeType<T>::type>(v));
        }
    }
}

// ---- Tensor-core GEMM for f16 / bf16 (sm_80+) ----
// C(b, m, n) = alpha · Σ_k A(b, m, k) B(b, k, n) + beta · C(b, m, n), with 16-bit inputs, fp32 accumulation.
// One 256-thread block (8 warps) computes a 128x128 tile of C. The K loop walks 32-wide slabs; each slab of A
// (128x32) and B (32x128) is staged in shared memory in a kStages-deep ring filled with cp.async (16-byte
// copies, zero-filled past the matrix edge) while earlier slabs are multiplied. Warp w owns the 64x32 sub-tile
// at rows (w / 4)·64, columns (w % 4)·32: 4x2 WMMA accumulators of 16x16 (nvcuda::wmma m16n16k16, fp32), i.e.
// each slab is 2 (k16 steps) x 4 x 2 mma_sync per warp. The k order of every output is fixed (ascending slabs,
// ascending k within a slab inside the mma), so the result is deterministic.
// Shared-memory layouts (rows padded by 8 halves = 16 bytes against bank conflicts; WMMA needs 32-byte aligned
// fragment pointers and a leading dimension that is a multiple of 8 halves, which 40 and 136 are):
//   A row-major in smem (kARow): As[m][k], ld 40   — chosen when A is k-contiguous (sAk == 1) or generic;
//   A column-major in smem:      As[k][m], ld 136  — chosen when A is m-contiguous (sAm == 1, a transposed view);
//   B row-major in smem (kBRow): Bs[k][n], ld 136  — chosen when B is n-contiguous (sBn == 1) or generic;
//   B column-major in smem:      Bs[n][k], ld 40   — chosen when B is k-contiguous (sBk == 1, e.g. linear's wᵀ).
// Staging: each 8-element run along the smem row is one 16-byte chunk (512 chunks per operand per slab, 2 per
// thread). Fast path (a_vec / b_vec): the run is contiguous in global memory and 16-byte aligned (contiguous
// dim stride 1, other strides and the base pointer multiples of 8 elements) -> one cp.async with src-size =
// the in-bounds bytes (0..16), the rest zero-filled. Generic path: 8 scalar loads through the element strides,
// 0 outside the matrix, stored to shared memory directly.
constexpr int kTcBM = 128, kTcBN = 128, kTcBK = 32, kTcThreads = 256, kTcStages = 3;
constexpr int kTcPad = 8;
constexpr int kTcLdShort = kTcBK + kTcPad;                          // 40: rows of length BK (+pad)
constexpr int kTcLdLong = kTcBM + kTcPad;                           // 136: rows of length BM or BN (+pad)
constexpr int kTcOperandElems = kTcBM * kTcLdShort;                 // 5120 >= kTcBK * kTcLdLong = 4352
constexpr int kTcStageElems = 2 * kTcOperandElems;                  // A then B
constexpr size_t kTcSmemBytes = (size_t)kTcStages * kTcStageElems * 2;  // 61440 bytes
static_assert(kTcBK * kTcLdLong <= kTcOperandElems, "operand slab must fit its smem region");
static_assert((size_t)8 * 16 * 16 * sizeof(float) <= kTcSmemBytes, "epilogue staging must fit");
static_assert((kTcOperandElems * 2) % 128 == 0, "operand regions keep 128-byte alignment");

template <class T> struct WmmaElem;
template <> struct WmmaElem<Half> { using type = __half; };
template <> struct WmmaElem<BFloat16> { using type = __nv_bfloat16; };

__device__ inline uint16_t bits_of(const Half& v) { return v.bits; }
__device__ inline uint16_t bits_of(const BFloat16& v) { return v.bits; }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// cp.async.cg (L2 only, 16 bytes): copies src_bytes (0..16) from global to shared and zero-fills the rest.
__device__ inline void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem_src), "r"(src_bytes));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
#endif

// Stages one operand slab: a `rows` x `cols` block of the smem layout (row r, column c of the smem array, ld),
// where smem (r, c) holds the global element at src + (r0 + r)·s_row + (c0 + c)·s_col, valid while
// r0 + r < R and c0 + c < Cn (else 0). rows x cols = 4096 elements = 512 chunks of 8 along c; 2 per thread.
// vec: s_col == 1, s_row % 8 == 0 and src 16-byte aligned (checked on the host), so a chunk is one cp.async.
template <class T, int kRows, int kCols>
__device__ inline void tc_stage(uint16_t* dst, int ld, const T* src, int64_t r0, int64_t c0, int64_t R, int64_t Cn,
                                int64_t s_row, int64_t s_col, bool vec) {
    static_assert(kRows * kCols == 512 * 8, "slab is 512 chunks of 8");
    constexpr int kChunksPerRow = kCols / 8;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int chunk = threadIdx.x + i * kTcThreads;  // 0..511
        const int r = chunk / kChunksPerRow, c = (chunk % kChunksPerRow) * 8;
        const int64_t gr = r0 + r, gc = c0 + c;
        uint16_t* d = dst + r * ld + c;
        if (vec) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
            int64_t valid = (gr < R) ? Cn - gc : 0;  // in-bounds elements of this chunk, clamped to 0..8
            if (valid > 8) valid = 8;
            if (valid < 0) valid = 0;
            const T* s = valid > 0 ? src + gr * s_row + gc : src;  // an aligned, readable address when 0 bytes
            cp_async_16(d, s, (int)valid * 2);
#endif
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e)
                d[e] = (gr < R && gc + e < Cn) ? bits_of(src[gr * s_row + (gc + e) * s_col]) : uint16_t(0);
        }
    }
}

// Two blocks per SM (<= 128 registers per thread, 2 x 60 KB of shared memory); the column-major-A / row-major-B
// variant would spill at 128 registers (ptxas, sm_80/90), so it keeps one block per SM.
template <class T, bool kARow, bool kBRow>
__global__ void __launch_bounds__(kTcThreads, (!kARow && kBRow) ? 1 : 2)
    tc_gemm_kernel(int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t sAb, int64_t sAm, int64_t sAk,
                   bool a_vec, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, bool b_vec, float beta, T* C,
                   int64_t sCb, int64_t sCm, int64_t sCn, int64_t batch0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    namespace wmma = nvcuda::wmma;
    using E = typename WmmaElem<T>::type;
    using ALayout = typename std::conditional<kARow, wmma::row_major, wmma::col_major>::type;
    using BLayout = typename std::conditional<kBRow, wmma::row_major, wmma::col_major>::type;
    extern __shared__ __align__(128) unsigned char tc_smem[];
    uint16_t* smem = reinterpret_cast<uint16_t*>(tc_smem);  // [kStages][A slab | B slab], raw 16-bit values

    const int64_t b = batch0 + blockIdx.z;
    const int64_t m0 = (int64_t)blockIdx.x * kTcBM, n0 = (int64_t)blockIdx.y * kTcBN;  // M tiles on x (2^31 - 1)
    A += b * sAb;
    B += b * sBb;
    C += b * sCb;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;  // warp sub-tile origin inside the block tile

    // Loads K slab `kt` into ring slot `slot`.
    auto load_slab = [&](int slot, int64_t kt) {
        uint16_t* as = smem + slot * kTcStageElems;
        uint16_t* bs = as + kTcOperandElems;
        const int64_t k0 = kt * kTcBK;
        if (kARow)  // As[m][k]: rows m (M), columns k (K)
            tc_stage<T, kTcBM, kTcBK>(as, kTcLdShort, A, m0, k0, M, K, sAm, sAk, a_vec);
        else        // As[k][m]: rows k (K), columns m (M)
            tc_stage<T, kTcBK, kTcBM>(as, kTcLdLong, A, k0, m0, K, M, sAk, sAm, a_vec);
        if (kBRow)  // Bs[k][n]
            tc_stage<T, kTcBK, kTcBN>(bs, kTcLdLong, B, k0, n0, K, N, sBk, sBn, b_vec);
        else        // Bs[n][k]
            tc_stage<T, kTcBN, kTcBK>(bs, kTcLdShort, B, n0, k0, N, K, sBn, sBk, b_vec);
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    const int64_t ktiles = (K + kTcBK - 1) / kTcBK;
    // Prologue: slabs 0 .. kStages-2 in flight (one commit group each, empty groups keep the count uniform).
#pragma unroll
    for (int s = 0; s < kTcStages - 1; ++s) {
        if (s < ktiles) load_slab(s, s);
        cp_async_commit();
    }
    for (int64_t kt = 0; kt < ktiles; ++kt) {
        // Groups committed so far: kStages-1 + kt; allowing kStages-2 pending means slab kt has landed.
        cp_async_wait<kTcStages - 2>();
        __syncthreads();  // slab kt visible to all; every warp is done with slot (kt-1) % kStages
        const int64_t next = kt + kTcStages - 1;
        if (next < ktiles) load_slab((int)(next % kTcStages), next);
        cp_async_commit();

        const uint16_t* as = smem + (int)(kt % kTcStages) * kTcStageElems;
        const uint16_t* bs = as + kTcOperandElems;
        const E* ae = reinterpret_cast<const E*>(as);
        const E* be = reinterpret_cast<const E*>(bs);
#pragma unroll
        for (int kk = 0; kk < kTcBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, ALayout> fa[4];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, BLayout> fb[2];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int row = wm + i * 16;
                if (kARow) wmma::load_matrix_sync(fa[i], ae + row * kTcLdShort + kk, kTcLdShort);
                else wmma::load_matrix_sync(fa[i], ae + kk * kTcLdLong + row, kTcLdLong);
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                const int col = wn + j * 16;
                if (kBRow) wmma::load_matrix_sync(fb[j], be + kk * kTcLdLong + col, kTcLdLong);
                else wmma::load_matrix_sync(fb[j], be + col * kTcLdShort + kk, kTcLdShort);
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // the ring is free: reuse its first 8 KB as per-warp 16x16 fp32 staging for the epilogue

    float* stage = reinterpret_cast<float*>(tc_smem) + warp * 256;  // [16][16], row-major
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 256; e += 32) {
                const int r = e / 16, c = e % 16;
                const int64_t gm = m0 + wm + i * 16 + r, gn = n0 + wn + j * 16 + c;
                if (gm < M && gn < N) {
                    T* out = C + gm * sCm + gn * sCn;
                    float v = alpha * stage[e];
                    if (beta != 0.0f) v += beta * static_cast<float>(*out);
                    *out = T(v);
                }
            }
            __syncwarp();  // all lanes have read `stage` before the next fragment overwrites it
        }
    }
#else
    __trap();  // never launched: the host only selects this kernel on devices of compute capability >= 8.0
#endif
}

// True when the current device can run the bf16/f16 WMMA kernel with cp.async (cuda_common.cuh runs_sm80_code).
bool tc_capable() {
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    return runs_sm80_code(tc_gemm_kernel<Half, true, true>, dev, "cudaFuncGetAttributes(tc_gemm_kernel)");
}

// A 16-byte chunk of 8 elements along the contiguous dim is 16-byte aligned for every tile position and batch.
template <class T>
bool vec_ok(const T* p, int64_t s_contig, int64_t s_other, int64_t s_batch) {
    return s_contig == 1 && s_other % 8 == 0 && s_batch % 8 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <class T, bool kARow, bool kBRow>
void launch_tc_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t sAb,
                    int64_t sAm, int64_t sAk, bool a_vec, const T* B, int64_t sBb, int64_t sBk, int64_t sBn,
                    bool b_vec, float beta, T* C, int64_t sCb, int64_t sCm, int64_t sCn) {
    auto kernel = tc_gemm_kernel<T, kARow, kBRow>;
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kTcSmemBytes),
          "cudaFuncSetAttribute(tc_gemm_kernel)");
    // M tiles on grid x (up to 2^31 − 1: merged batch dims make M large), N tiles on y (up to 65535).
    const int64_t tiles_m = (M + kTcBM - 1) / kTcBM, tiles_n = (N + kTcBN - 1) / kTcBN;
    CXR_CHECK(tiles_m <= INT32_MAX && tiles_n <= 65535, "tensor-core GEMM: ", M, " x ", N, " is too large");
    const dim3 grid((unsigned)tiles_m, (unsigned)tiles_n, 1);
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
        const dim3 g(grid.x, grid.y, (unsigned)std::min<int64_t>(65535, batch - b0));
        kernel<<<g, kTcThreads, kTcSmemBytes>>>(M, N, K, alpha, A, sAb, sAm, sAk, a_vec, B, sBb, sBk, sBn, b_vec,
                                                beta, C, sCb, sCm, sCn, b0);
        after_launch("tc_gemm_kernel");
    }
}

// Chooses the smem layouts from the strides (see the kernel comment) and launches the tensor-core GEMM.
template <class T>
void tc_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t sAb, int64_t sAm,
             int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, float beta, T* C, int64_t sCb,
             int64_t sCm, int64_t sCn) {
    const bool a_row = !(sAk != 1 && sAm == 1);  // As[m][k] unless A is m-contiguous only
    const bool b_row = !(sBn != 1 && sBk == 1);  // Bs[k][n] unless B is k-contiguous only
    const bool a_vec = a_row ? vec_ok(A, sAk, sAm, sAb) : vec_ok(A, sAm, sAk, sAb);
    const bool b_vec = b_row ? vec_ok(B, sBn, sBk, sBb) : vec_ok(B, sBk, sBn, sBb);
#define CXR_TC_LAUNCH(AR, BR)                                                                                    \
    launch_tc_gemm<T, AR, BR>(batch, M, N, K, alpha, A, sAb, sAm, sAk, a_vec, B, sBb, sBk, sBn, b_vec, beta, C, \
                              sCb, sCm, sCn)
    if (a_row && b_row) CXR_TC_LAUNCH(true, true);
    else if (a_row) CXR_TC_LAUNCH(true, false);
    else if (b_row) CXR_TC_LAUNCH(false, true);
    else CXR_TC_LAUNCH(false, false);
#undef CXR_TC_LAUNCH
}

// CXR_GEMM_TC=OFF keeps f16/bf16 on the SIMT tiled kernel (for audits and the benchmark's variant comparison).
bool tc_enabled() { return env_switch_on("CXR_GEMM_TC"); }

// ---- cuBLAS ----
cublasHandle_t cublas_handle() {
    static std::mutex mu;
    static std::map<int, cublasHandle_t> handles;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(dev);
    if (it != handles.end()) return it->second;
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) CXR_FAIL("cublasCreate failed (status ", (int)st, ")");
    handles[dev] = h;
    return h;
}

bool tf32_enabled() {
    const char* v = std::getenv("CXR_TF32");
    return v && std::strcmp(v, "1") == 0;
}

void cublas_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    const bool ta = a.stride(2) != 1, tb = b.stride(2) != 1;  // column-major operands
    const int64_t lda = ta ? a.stride(2) : a.stride(1), ldb = tb ? b.stride(2) : b.stride(1);
    CXR_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX,
              "matmul (cuBLAS): sizes exceed 32-bit limits");
    cudaDataType_t dt;
    cublasComputeType_t ct;
    float alpha_f = 1.0f, beta_f = 0.0f;
    double alpha_d = 1.0, beta_d = 0.0;
    const void* alpha = &alpha_f;
    const void* beta = &beta_f;
    switch (a.dtype()) {
        case DType::f32: dt = CUDA_R_32F; ct = tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F; break;
        case DType::f64: dt = CUDA_R_64F; ct = CUBLAS_COMPUTE_64F; alpha = &alpha_d; beta = &beta_d; break;
        case DType::f16: dt = CUDA_R_16F; ct = CUBLAS_COMPUTE_32F; break;
        case DType::bf16: dt = CUDA_R_16BF; ct = CUBLAS_COMPUTE_32F; break;
        default: CXR_FAIL("matmul kernel: dtype ", dtype_name(a.dtype()), " is not supported on CUDA");
    }
    cublasHandle_t h = cublas_handle();
    const size_t es = dtype_size(a.dtype());
    // Column-major view: Cᵀ [N, M] = op(Bᵀ) [N, K] · op(Aᵀ) [K, M].
    const cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    for (int64_t b0 = 0; b0 < B; b0 += 65535) {
        const int64_t nb = std::min<int64_t>(65535, B - b0);
        const char* ap = static_cast<const char*>(a.raw_data()) + b0 * a.stride(0) * es;
        const char* bp = static_cast<const char*>(b.raw_data()) + b0 * b.stride(0) * es;
        char* cp = static_cast<char*>(out.raw_data()) + b0 * M * N * es;
        const cublasStatus_t st = cublasGemmStridedBatchedEx(
            h, opB, opA, (int)N, (int)M, (int)K, alpha, bp, dt, (int)ldb, b.stride(0), ap, dt, (int)lda, a.stride(0),
            beta, cp, dt, (int)N, M * N, (int)nb, ct, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            CXR_FAIL("matmul: cublasGemmStridedBatchedEx failed (status ", (int)st, ") for [", B, ", ", M, ", ", K,
                     "] x [", B, ", ", K, ", ", N, "] ", dtype_name(a.dtype()));
        after_launch("cublasGemmStridedBatchedEx");
    }
}

void tiled_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    CXR_DISPATCH_FLOAT(a.dtype(), "matmul", {
        gemm_strided_batched<scalar_t>(B, M, N, K, 1.0, a.data<scalar_t>(), a.stride(0), a.stride(1), a.stride(2),
                                       b.data<scalar_t>(), b.stride(0), b.stride(1), b.stride(2), 0.0,
                                       out.data<scalar_t>(), M * N, N, 1);
    });
}

void matmul_kernel(const Tensor& a, const Tensor& b, const Tensor& out) {
    CXR_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3 && out.is_contiguous(),
              "matmul kernel: expected [B, M, K] x [B, K, N] -> contiguous [B, M, N], got ", shape_str(a.sizes()),
              " x ", shape_str(b.sizes()), " -> ", shape_str(out.sizes()));
    CXR_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "matmul kernel: operands of different dtypes");
    const DeviceGuard device_guard(out.device().index);  // the tensors' device, whatever the thread's current one
    if (cublas_enabled())
        cublas_matmul(a, b, out);
    else
        tiled_matmul(a, b, out);
}

}  // namespace

bool cublas_enabled() { return env_switch_on("CXR_CUBLAS"); }

template <class T>
void gemm_strided_batched(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const T* A, int64_t sAb,
                          int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, double beta,
                          T* C, int64_t sCb, int64_t sCm, int64_t sCn) {
    if (batch == 0 || M == 0 || N == 0) return;
    if constexpr (std::is_same<T, Half>::value || std::is_same<T, BFloat16>::value) {
        if (tc_enabled() && tc_capable()) {
            tc_gemm<T>(batch, M, N, K, (float)alpha, A, sAb, sAm, sAk, B, sBb, sBk, sBn, (float)beta, C, sCb, sCm,
                       sCn);
            return;
        }
    }
    using AT = typename Acc<T>::type;
    // M tiles on grid x (up to 2^31 − 1), N tiles on y (up to 65535).
    const int64_t tiles_m = (M + kTile - 1) / kTile, tiles_n = (N + kTile - 1) / kTile;
    CXR_CHECK(tiles_m <= INT32_MAX && tiles_n <= 65535, "tiled GEMM: ", M, " x ", N, " is too large");
    const dim3 grid((unsigned)tiles_m, (unsigned)tiles_n, 1);
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
        const dim3 g(grid.x, grid.y, (unsigned)std::min<int64_t>(65535, batch - b0));
        tiled_gemm_kernel<T><<<g, kThreads>>>(M, N, K, AT(alpha), A, sAb, sAm, sAk, B, sBb, sBk, sBn, AT(beta), C,
                                              sCb, sCm, sCn, b0);
        after_launch("tiled_gemm_kernel");
    }
}

#define CXR_INSTANTIATE_GEMM(T)                                                                                   \
    template void gemm_strided_batched<T>(int64_t, int64_t, int64_t, int64_t, double, const T*, int64_t, int64_t, \
                                          int64_t, const T*, int64_t, int64_t, int64_t, double, T*, int64_t,     \
                                          int64_t, int64_t);
CXR_INSTANTIATE_GEMM(float)
CXR_INSTANTIATE_GEMM(double)
CXR_INSTANTIATE_GEMM(Half)
CXR_INSTANTIATE_GEMM(BFloat16)
#undef CXR_INSTANTIATE_GEMM

void register_matmul_kernels(KernelRegistry& r) {
    register_kernel<MatmulKernel>(r, "matmul", DeviceType::CUDA, matmul_kernel);
}

}  // namespace cxr::tensor::cuda
