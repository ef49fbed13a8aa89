// Fused ("flash") scaled dot-product attention on CUDA, forward and backward ("attention_forward",
// "attention_backward"; signatures and semantics in tensor/ops/attention.h). Tiled online softmax after
// Dao et al., "FlashAttention" (2022) and Dao, "FlashAttention-2: Faster Attention with Better Parallelism and
// Work Partitioning" (2023): the [L, S] attention matrix is never stored.
//
// Every tensor is contiguous: q [B, L, E], k, v [B, S, E], out, dout, dq [B, L, E], dk, dv [B, S, E], lse [B, L]
// (f32). B is the flattened batch (batch · heads). One dtype T in {f32, f16, bf16}; tiles are converted to f32 in
// shared memory and every product, sum, max and exp is f32. The head dim E (1 ≤ E ≤ 160) is padded with zeros to
// a compile-time D in kHeadDims; padded columns add 0 to every dot product and are never written back.
//
// Forward (one block per (b, query tile of kFwdBQ rows)), in the log2 domain (x' = x·log2 e, exp(x) = 2^x'):
//   s'_ij = scale·log2e · q_i·k_j,  masked (j ≥ S, or causal j > i) to −∞
//   per key tile:  m_new = max(m, max_j s'_ij),  α = 2^(m − m_new),  p_ij = 2^(s'_ij − m_new)
//                  l ← α·l + Σ_j p_ij,            acc_i ← α·acc_i + Σ_j p_ij v_j
//   out_i = acc_i / l,   lse_i = ln Σ_j e^(scale·q_i·k_j) = (m + log2 l)·ln 2
// A row with no key (l = 0, only possible for S = 0, which the op layer never sends) gets out = 0, lse = +∞ so
// that the backward's p = e^(s − lse) is 0 there.
// Causal (top-left aligned as torch: key j is masked for query i when j > i): key tiles that start after the
// query tile's last row are skipped.
//
// Backward (FlashAttention-2 work split, deterministic: every output element is written by exactly one thread
// that sums in a fixed order; no atomics):
//   Δ_i = Σ_d dout_id · out_id                                (attention_delta_kernel, one warp per row)
//   p_ij = e^(scale·q_i·k_j − lse_i)  (0 where masked),  dp_ij = dout_i · v_j,  ds_ij = p_ij (dp_ij − Δ_i)
//   dv_j = Σ_i p_ij dout_i,  dk_j = scale Σ_i ds_ij q_i       (attention_dkdv_kernel: one block per
//                                                              (b, key tile), loop over query tiles)
//   dq_i = scale Σ_j ds_ij k_j                                 (attention_dq_kernel: one block per (b, query tile),
//                                                              loop over key tiles)
// Causal: the dk/dv kernel starts at the first query tile that reaches the key tile's first key; the dq kernel
// stops at the key tile that holds the query tile's last row.
//
// Thread layout shared by all three tiled kernels: kThreads = 128 threads = 16 row groups × 8 column groups,
// thread t has rg = t / 8, cg = t % 8. A [R × C] tile of scores is owned as rows rg + 16·a (a < R/16) and columns
// cg + 8·b (b < C/8); a [R × D] accumulator as rows rg + 16·a and columns cg + 8·c (c < D/8). The 8 threads of a
// row group are 8 consecutive lanes of one warp, so row maxima and sums are __shfl_xor_sync butterflies over lane
// offsets 1, 2, 4 (every lane ends with the same bits: the butterfly only adds/maxes the same pairs).
// Shared-memory rows of q/k/v/dout tiles have stride D + 1 (odd), so the 8 column groups reading 8 different rows
// at one d hit 8 different banks; score tiles have stride C + 8 for the same reason.
// These kernels run on the CUDA cores (fmaf in f32): simple and exact-f32 for every dtype.
//
// Tensor-core forward (attention_forward_tc_kernel, f16/bf16 only; details beside it): the same forward math with
// S = Q Kᵀ and O += P V on mma.sync.m16n8k16 (f16/bf16 operands, f32 accumulators; P is rounded to the input dtype
// before P V, as in FlashAttention-2), 4 warps × 16 query rows, the online softmax on the accumulator fragments,
// head dims padded to 32, 48, 64, 80, 96, 128 or 160. It writes out and lse in the layout above, so the backward
// below is shared by both forwards.
// Selection (attention_forward): the tensor-core forward for f16/bf16 on a device of compute capability ≥ 8.0,
// unless the environment variable CXR_ATTN_TC is OFF (or off, 0, false; read at each call) — then, and for f32 or
// older devices, the SIMT forward above.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/attention.h"

namespace cxr::tensor::cuda {

// Defined in tensor/cuda/matmul.cu: true unless the environment variable is OFF, off, 0 or false.
bool env_switch_on(const char* name);

namespace {

constexpr int kThreads = 128;   // threads per block of every tiled kernel: 16 row groups × 8 column groups
constexpr int kRowGroups = 16;
constexpr int kColGroups = 8;
constexpr int kFwdBQ = 64;      // forward: query rows per block
constexpr int kFwdBK = 64;      // forward: keys per tile
constexpr int kBwdBQ = 32;      // backward: query rows per tile
constexpr int kBwdBK = 32;      // backward: keys per tile
constexpr int kScorePad = 8;    // extra floats per row of a score tile in shared memory
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

static_assert(kThreads == kRowGroups * kColGroups, "thread layout");
static_assert(kFwdBQ % kRowGroups == 0 && kFwdBK % kColGroups == 0, "forward tiles");
static_assert(kBwdBQ % kRowGroups == 0 && kBwdBK % kRowGroups == 0, "backward tiles (both are row axes once)");
static_assert(kBwdBQ % kColGroups == 0 && kBwdBK % kColGroups == 0, "backward tiles (both are column axes once)");

// ---- element conversion (exact IEEE conversions, round to nearest even on the way back) ----

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(Half x) { return __half2float(__ushort_as_half(x.bits)); }
__device__ __forceinline__ float to_f32(BFloat16 x) { return __uint_as_float((unsigned)x.bits << 16); }

template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ Half from_f32<Half>(float x) {
    Half h;
    h.bits = __half_as_ushort(__float2half_rn(x));
    return h;
}
template <> __device__ __forceinline__ BFloat16 from_f32<BFloat16>(float x) {
    BFloat16 h;
    h.bits = __bfloat16_as_ushort(__float2bfloat16_rn(x));
    return h;
}

// Maximum / sum over the 8 lanes of a row group (lane offsets 1, 2, 4 stay inside the group).
__device__ __forceinline__ float group_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
    return x;
}
__device__ __forceinline__ float group_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    x += __shfl_xor_sync(0xffffffffu, x, 4);
    return x;
}

// Copies rows [row0, row0 + ROWS) of a contiguous [rows_total, E] matrix into a shared [ROWS][D + 1] f32 tile;
// rows ≥ rows_total and columns ≥ E become 0 (so that 0 · padding never meets an uninitialised NaN).
template <int D, int ROWS, class T>
__device__ __forceinline__ void load_tile(float* __restrict__ dst, const T* __restrict__ src, int row0,
                                          int rows_total, int E) {
    constexpr int DP = D + 1;
    for (int idx = threadIdx.x; idx < ROWS * D; idx += kThreads) {
        const int r = idx / D, d = idx % D;
        const int gr = row0 + r;
        float x = 0.f;
        if (gr < rows_total && d < E) x = to_f32(src[(int64_t)gr * E + d]);
        dst[r * DP + d] = x;
    }
}

// One value per row of rows [row0, row0 + ROWS) of a [rows_total] f32 vector, times `mul`; `fill` past the end.
template <int ROWS>
__device__ __forceinline__ void load_rowvec(float* __restrict__ dst, const float* __restrict__ src, int row0,
                                            int rows_total, float mul, float fill) {
    for (int r = threadIdx.x; r < ROWS; r += kThreads) {
        const int gr = row0 + r;
        dst[r] = gr < rows_total ? src[gr] * mul : fill;
    }
}

// Shared-memory floats of each kernel for head dim D.
template <int D>
constexpr int fwd_smem_floats() {
    return kFwdBQ * (D + 1) + kFwdBK * (D + 1) + kFwdBQ * (kFwdBK + kScorePad);
}
template <int D>
constexpr int bwd_smem_floats() {  // one size for both backward kernels: the dk/dv kernel's (the larger)
    // q, dout tiles [BQ][D+1]; k, v tiles [BK][D+1]; two transposed score tiles [BK][BQ+8]; lse and Δ [BQ]
    return 2 * kBwdBQ * (D + 1) + 2 * kBwdBK * (D + 1) + 2 * kBwdBK * (kBwdBQ + kScorePad) + 2 * kBwdBQ;
}
// The dq kernel needs q, dout [BQ][D+1], k, v [BK][D+1], one score tile [BQ][BK+8], lse and Δ [BQ]: no more.
static_assert(kBwdBQ * (kBwdBK + kScorePad) <= 2 * kBwdBK * (kBwdBQ + kScorePad), "dq kernel fits the size");

// =============================================================================================== forward

// grid: B · ceil(L / kFwdBQ) blocks, block = (b, query tile qt) with blockIdx.x = b · n_qtiles + qt.
template <class T, int D>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                             T* __restrict__ out, float* __restrict__ lse, int L, int S, int E, int n_qtiles,
                             float scale_log2, bool causal) {
    constexpr int BQ = kFwdBQ, BK = kFwdBK, DP = D + 1, PS = BK + kScorePad;
    constexpr int RA = BQ / kRowGroups;  // query rows per thread
    constexpr int CB = BK / kColGroups;  // keys per thread
    constexpr int CD = D / kColGroups;   // output columns per thread
    extern __shared__ float smem[];
    float* Qs = smem;            // [BQ][DP]
    float* KVs = Qs + BQ * DP;   // [BK][DP]: the key tile, then the value tile
    float* Ps = KVs + BK * DP;   // [BQ][PS]: probabilities of the current key tile (unnormalised)

    const int rg = threadIdx.x / kColGroups, cg = threadIdx.x % kColGroups;
    const int64_t b = blockIdx.x / n_qtiles;
    const int q0 = (int)(blockIdx.x % n_qtiles) * BQ;
    const T* qb = q + b * L * E;
    const T* kb = k + b * S * E;
    const T* vb = v + b * S * E;

    load_tile<D, BQ>(Qs, qb, q0, L, E);

    float acc[RA][CD];  // unnormalised output rows
    float m[RA], l[RA];  // running max (log2 domain) and this thread's share of the running sum
#pragma unroll
    for (int a = 0; a < RA; ++a) {
        m[a] = -INFINITY;
        l[a] = 0.f;
#pragma unroll
        for (int c = 0; c < CD; ++c) acc[a][c] = 0.f;
    }

    const int k_end = causal ? min(S, q0 + BQ) : S;  // keys past the tile's last row are all masked when causal
    for (int k0 = 0; k0 < k_end; k0 += BK) {
        __syncthreads();  // the previous tile's readers of KVs (values) and Ps are done
        load_tile<D, BK>(KVs, kb, k0, S, E);
        __syncthreads();  // key tile (and, the first time, the query tile) visible

        // s[a][b] = q_i · k_j for i = q0 + rg + 16a, j = k0 + cg + 8b
        float s[RA][CB];
#pragma unroll
        for (int a = 0; a < RA; ++a)
#pragma unroll
            for (int bb = 0; bb < CB; ++bb) s[a][bb] = 0.f;
#pragma unroll 4
        for (int d = 0; d < D; ++d) {
            float qv[RA], kv[CB];
#pragma unroll
            for (int a = 0; a < RA; ++a) qv[a] = Qs[(rg + kRowGroups * a) * DP + d];
#pragma unroll
            for (int bb = 0; bb < CB; ++bb) kv[bb] = KVs[(cg + kColGroups * bb) * DP + d];
#pragma unroll
            for (int a = 0; a < RA; ++a)
#pragma unroll
                for (int bb = 0; bb < CB; ++bb) s[a][bb] = fmaf(qv[a], kv[bb], s[a][bb]);
        }

        // online softmax, one row at a time
#pragma unroll
        for (int a = 0; a < RA; ++a) {
            const int i = q0 + rg + kRowGroups * a;
            float tile_max = -INFINITY;
#pragma unroll
            for (int bb = 0; bb < CB; ++bb) {
                const int j = k0 + cg + kColGroups * bb;
                const bool keep = j < S && !(causal && j > i);
                s[a][bb] = keep ? s[a][bb] * scale_log2 : -INFINITY;
                tile_max = fmaxf(tile_max, s[a][bb]);
            }
            const float m_new = fmaxf(m[a], group_max(tile_max));
            const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: 2^(−∞ − 0) = 0, no NaN
            const float alpha = exp2f(m[a] - m_use);                // m = −∞ gives 0 (acc and l are 0 anyway)
            m[a] = m_new;
            l[a] *= alpha;
#pragma unroll
            for (int c = 0; c < CD; ++c) acc[a][c] *= alpha;
#pragma unroll
            for (int bb = 0; bb < CB; ++bb) {
                const float p = exp2f(s[a][bb] - m_use);
                l[a] += p;
                Ps[(rg + kRowGroups * a) * PS + cg + kColGroups * bb] = p;
            }
        }
        __syncthreads();  // every reader of the key tile is done and Ps is complete
        load_tile<D, BK>(KVs, vb, k0, S, E);
        __syncthreads();  // value tile visible

        // acc[a][c] += Σ_j p_ij v_jd for d = cg + 8c
#pragma unroll 2
        for (int j = 0; j < BK; ++j) {
            float pv[RA];
#pragma unroll
            for (int a = 0; a < RA; ++a) pv[a] = Ps[(rg + kRowGroups * a) * PS + j];
#pragma unroll
            for (int c = 0; c < CD; ++c) {
                const float vv = KVs[j * DP + cg + kColGroups * c];
#pragma unroll
                for (int a = 0; a < RA; ++a) acc[a][c] = fmaf(pv[a], vv, acc[a][c]);
            }
        }
    }

#pragma unroll
    for (int a = 0; a < RA; ++a) {
        const float l_row = group_sum(l[a]);
        const int i = q0 + rg + kRowGroups * a;
        if (i >= L) continue;
        const float inv = l_row > 0.f ? 1.f / l_row : 0.f;
        T* orow = out + (b * L + i) * E;
#pragma unroll
        for (int c = 0; c < CD; ++c) {
            const int d = cg + kColGroups * c;
            if (d < E) orow[d] = from_f32<T>(acc[a][c] * inv);
        }
        if (cg == 0) lse[b * L + i] = l_row > 0.f ? (m[a] + log2f(l_row)) * kLn2 : INFINITY;
    }
}

// =============================================================================================== tensor-core forward

// FlashAttention-2 forward on tensor cores for f16/bf16 (sm_80+): mma.sync.m16n8k16 with f32 accumulators. The
// math is the SIMT forward's (above); only the products change: q, k, v, p enter the mma as f16/bf16, every
// accumulator, max, sum and exp is f32. Fragment layouts are those of the PTX ISA ("Matrix fragments for
// mma.m16n8k16 with floating point type"), with g = lane / 4 and t = lane % 4:
//   A 16×16 (row-major), 4 regs of 2 elements: a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..),
//                                               a3 = (g+8, 2t+8..)
//   B 16×8  (k × n),     2 regs of 2 elements:  b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//   C 16×8  (f32),       4 floats:              c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
// (the lower k or column index sits in the low 16 bits of a register). Operands come from shared memory through
// ldmatrix.m8n8.x4 (lane ℓ gives the address of row ℓ % 8 of 8×8 matrix ℓ / 8; register r of every lane receives
// (row g, columns 2t..2t+1) of matrix r, or with .trans (rows 2t..2t+1, column g), i.e. the transpose).
// Block = 4 warps, kTcBQ = 64 query rows (warp w owns rows 16w..16w+15), key tiles of kTcBK = 64:
//   S_w = Q_w Kᵀ  [16 × 64]: D/16 k-steps × 8 n-tiles; Q_w's A fragments stay in registers for the whole block,
//                            K fragments (B, col-major = K rows) by ldmatrix from Ks[key][d];
//   online softmax on the C fragments: thread (g, t) holds rows g and g+8, columns 8n + 2t, 8n + 2t + 1; a row's
//                            max/sum over its 4 threads (one quad) is a __shfl_xor_sync butterfly over lanes 1, 2;
//   O_w += P V    [16 × D]:  P's C fragments of n-tiles 2κ, 2κ+1 are exactly the A fragment of k-step κ
//                            (converted to f16/bf16 in registers), V fragments by ldmatrix.trans from Vs[key][d].
// Shared memory: Q, K, V tiles of [64][D + 8] 16-bit values (row stride (D + 8)·2 bytes, an odd multiple of 16, so
// the 8 row addresses of one ldmatrix matrix fall in 8 different 16-byte bank groups), 3 tiles = 63 KB at D = 160.
// Registers per thread: Q fragments D/4, O accumulators D/2, S accumulators 32 (no spills at D = 160, ptxas sm_80/90).
// Loads are 16-byte cp.async chunks with zero fill (rows ≥ L or S, columns ≥ E read as 0: padded columns add 0 to
// q·k, padded value rows meet p = 0 with a finite 0) when E % 8 == 0 and the pointers are 16-byte aligned, plain
// 16-bit loads otherwise. Overlap (one K and one V buffer, FA2's schedule): the V tile j loads while S_j is
// computed, the K tile j + 1 while O += P_j V_j is.
// Causal: key tiles past the block's last row are skipped (as in the SIMT kernel) and the query tiles run longest
// first. Each output element has one fixed summation order: bitwise reproducible.
constexpr int kTcThreads = 128;  // 4 warps
constexpr int kTcBQ = 64;        // query rows per block (16 per warp)
constexpr int kTcBK = 64;        // keys per tile
constexpr int kTcPad = 8;        // 16-bit values of padding per shared-memory row

template <int D>
constexpr int tc_fwd_smem_bytes() {
    return (kTcBQ + 2 * kTcBK) * (D + kTcPad) * 2;  // Q, K, V tiles
}

template <class T> __device__ __forceinline__ uint32_t pack_pair(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack_pair<Half>(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);  // .x = lo (low 16 bits), round to nearest even
    return (uint32_t)__half_as_ushort(h.x) | ((uint32_t)__half_as_ushort(h.y) << 16);
}
template <> __device__ __forceinline__ uint32_t pack_pair<BFloat16>(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return (uint32_t)__bfloat16_as_ushort(h.x) | ((uint32_t)__bfloat16_as_ushort(h.y) << 16);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// d += a · b for one m16n8k16 tile (f32 accumulators).
template <class T> __device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                            uint32_t b1);
template <> __device__ __forceinline__ void mma_16816<Half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                           uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma_16816<BFloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                               uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint16_t* p) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const uint16_t* p) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

// 2^x on the SFU: ex2.approx.ftz (max relative error ~2^-22; 2^-∞ = 0; results below 2^-126 flush to 0, far
// below what an f16/bf16 probability or the f32 sum l can hold) — without exp2f's subnormal-range fix-up.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// cp.async.cg (L2 only, 16 bytes): copies src_bytes (0..16) from global to shared and zero-fills the rest.
__device__ __forceinline__ void tc_cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem_src), "r"(src_bytes));
}
__device__ __forceinline__ void tc_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void tc_cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Stages rows [row0, row0 + ROWS) of a contiguous [rows_total, E] matrix of 16-bit values into a shared
// [ROWS][D + kTcPad] tile, in chunks of 8 values; rows ≥ rows_total and columns ≥ E become 0. vec (E % 8 == 0,
// src 16-byte aligned): one cp.async per chunk (to be waited for); else plain loads and stores.
template <int D, int ROWS>
__device__ __forceinline__ void tc_load_tile(uint16_t* __restrict__ dst, const uint16_t* __restrict__ src, int row0,
                                             int rows_total, int E, bool vec) {
    constexpr int LD = D + kTcPad, CPR = D / 8;  // row stride, chunks per row
    for (int c = threadIdx.x; c < ROWS * CPR; c += kTcThreads) {
        const int r = c / CPR, col = (c % CPR) * 8;
        const int gr = row0 + r;
        uint16_t* d = dst + r * LD + col;
        if (vec) {
            int valid = gr < rows_total ? E - col : 0;  // values of this chunk inside the matrix (0 or ≥ 8 here)
            valid = valid < 0 ? 0 : (valid > 8 ? 8 : valid);
            const uint16_t* s = valid > 0 ? src + (int64_t)gr * E + col : src;  // an aligned address when 0 bytes
            tc_cp_async_16(d, s, valid * 2);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e)
                d[e] = (gr < rows_total && col + e < E) ? src[(int64_t)gr * E + col + e] : uint16_t(0);
        }
    }
}
#endif

// grid: B · ceil(L / kTcBQ) blocks, blockIdx.x = b · n_qtiles + (qt, or n_qtiles − 1 − qt when causal).
template <class T, int D>
__global__ void __launch_bounds__(kTcThreads)
    attention_forward_tc_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                T* __restrict__ out, float* __restrict__ lse, int L, int S, int E, int n_qtiles,
                                float scale_log2, bool causal, bool vec) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    static_assert(D % 16 == 0 && D <= 160, "tensor-core head dims are multiples of 16 up to 160");
    constexpr int BQ = kTcBQ, BK = kTcBK, LD = D + kTcPad;
    constexpr int KD = D / 16;  // k-steps of S = Q Kᵀ
    constexpr int NS = BK / 8;  // n-tiles of S (8 keys each)
    constexpr int KP = BK / 16; // k-steps of O += P V
    constexpr int NO = D / 8;   // n-tiles of O (8 columns each)
    extern __shared__ __align__(16) unsigned char tc_attn_smem[];
    uint16_t* Qs = reinterpret_cast<uint16_t*>(tc_attn_smem);  // [BQ][LD]
    uint16_t* Ks = Qs + BQ * LD;                                // [BK][LD]
    uint16_t* Vs = Ks + BK * LD;                                // [BK][LD]

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int64_t b = blockIdx.x / n_qtiles;
    int qt = (int)(blockIdx.x % n_qtiles);
    if (causal) qt = n_qtiles - 1 - qt;
    const int q0 = qt * BQ;
    const uint16_t* qb = reinterpret_cast<const uint16_t*>(q) + b * L * E;
    const uint16_t* kb = reinterpret_cast<const uint16_t*>(k) + b * S * E;
    const uint16_t* vb = reinterpret_cast<const uint16_t*>(v) + b * S * E;
    // ldmatrix row addresses of this lane: for A (Q) and .trans B (V) tiles, matrix ℓ/8 covers rows 8·(ℓ/8 % 2),
    // columns 8·(ℓ/16); for the non-transposed B (K) tile, rows (keys) 8·(ℓ/16), columns (d) 8·(ℓ/8 % 2).
    const int a_row = (lane % 8) + 8 * ((lane / 8) % 2), a_col = 8 * (lane / 16);
    const int k_row = (lane % 8) + 8 * (lane / 16), k_col = 8 * ((lane / 8) % 2);

    const int k_end = causal ? min(S, q0 + BQ) : S;  // ≥ 1: S ≥ 1
    const int n_kt = (k_end + BK - 1) / BK;

    tc_load_tile<D, BQ>(Qs, qb, q0, L, E, vec);
    tc_load_tile<D, BK>(Ks, kb, 0, S, E, vec);
    tc_cp_async_commit();
    tc_cp_async_wait_all();
    __syncthreads();  // Q and the first K tile visible

    uint32_t qf[KD][4];  // A fragments of this warp's 16 query rows, k-step kd = columns 16kd..16kd+15
#pragma unroll
    for (int kd = 0; kd < KD; ++kd) ldsm_x4(qf[kd], Qs + (warp * 16 + a_row) * LD + kd * 16 + a_col);

    float o[NO][4];          // O accumulator fragments (unnormalised), rows g, g+8 of the warp
    float m[2], l[2];        // running max (log2 domain) of rows g, g+8; this thread's share of the running sum
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.f;
    }
#pragma unroll
    for (int n = 0; n < NO; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[n][e] = 0.f;

    const int i_row0 = q0 + warp * 16 + g;  // query index of fragment row g (row g + 8 is i_row0 + 8)
    for (int j = 0; j < n_kt; ++j) {
        const int k0 = j * BK;
        if (j > 0) {
            tc_cp_async_wait_all();
            __syncthreads();  // K tile j visible; every warp is done reading V tile j − 1
        }
        tc_load_tile<D, BK>(Vs, vb, k0, S, E, vec);
        tc_cp_async_commit();

        // s[n] = Q_w K_jᵀ for keys k0 + 8n .. k0 + 8n + 7
        float s[NS][4];
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[n][e] = 0.f;
#pragma unroll
        for (int kd = 0; kd < KD; ++kd) {
#pragma unroll
            for (int np = 0; np < NS / 2; ++np) {
                uint32_t kf[4];  // B fragments of n-tiles 2np (kf[0], kf[1]) and 2np + 1 (kf[2], kf[3])
                ldsm_x4(kf, Ks + (np * 16 + k_row) * LD + kd * 16 + k_col);
                mma_16816<T>(s[2 * np], qf[kd], kf[0], kf[1]);
                mma_16816<T>(s[2 * np + 1], qf[kd], kf[2], kf[3]);
            }
        }

        // scale into the log2 domain; mask keys ≥ S and, when causal, keys after the row
        if (k0 + BK > S || (causal && k0 + BK - 1 > q0)) {  // a tile with masked keys (block-uniform branch)
#pragma unroll
            for (int n = 0; n < NS; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int jk = k0 + 8 * n + 2 * t + (e % 2), i = i_row0 + 8 * (e / 2);
                    const bool keep = jk < S && !(causal && jk > i);
                    s[n][e] = keep ? s[n][e] * scale_log2 : -INFINITY;
                }
        } else {
#pragma unroll
            for (int n = 0; n < NS; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[n][e] *= scale_log2;
        }

        // online softmax per row r (fragment elements 2r, 2r + 1)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -INFINITY;
#pragma unroll
            for (int n = 0; n < NS; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * r], s[n][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m[r], mx);
            const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: 2^(−∞ − 0) = 0, no NaN
            const float alpha = fast_exp2(m[r] - m_use);            // m = −∞ gives 0 (o and l are 0 anyway)
            m[r] = m_new;
            l[r] *= alpha;
#pragma unroll
            for (int n = 0; n < NO; ++n) {
                o[n][2 * r] *= alpha;
                o[n][2 * r + 1] *= alpha;
            }
#pragma unroll
            for (int n = 0; n < NS; ++n)
#pragma unroll
                for (int e = 2 * r; e < 2 * r + 2; ++e) {
                    const float p = fast_exp2(s[n][e] - m_use);
                    l[r] += p;
                    s[n][e] = p;
                }
        }

        tc_cp_async_wait_all();
        __syncthreads();  // V tile j visible; every warp is done reading K tile j
        if (j + 1 < n_kt) {
            tc_load_tile<D, BK>(Ks, kb, k0 + BK, S, E, vec);
            tc_cp_async_commit();
        }

        // o[n] += P_w V_j: k-step kp covers keys k0 + 16kp .. +15 = P's n-tiles 2kp, 2kp + 1
#pragma unroll
        for (int kp = 0; kp < KP; ++kp) {
            uint32_t pa[4];
            pa[0] = pack_pair<T>(s[2 * kp][0], s[2 * kp][1]);          // (g,     keys 2t..2t+1)
            pa[1] = pack_pair<T>(s[2 * kp][2], s[2 * kp][3]);          // (g + 8, keys 2t..2t+1)
            pa[2] = pack_pair<T>(s[2 * kp + 1][0], s[2 * kp + 1][1]);  // (g,     keys 2t+8..2t+9)
            pa[3] = pack_pair<T>(s[2 * kp + 1][2], s[2 * kp + 1][3]);  // (g + 8, keys 2t+8..2t+9)
#pragma unroll
            for (int dp = 0; dp < NO / 2; ++dp) {
                uint32_t vf[4];  // B fragments of O n-tiles 2dp (vf[0], vf[1]) and 2dp + 1 (vf[2], vf[3])
                ldsm_x4_trans(vf, Vs + (kp * 16 + a_row) * LD + dp * 16 + a_col);
                mma_16816<T>(o[2 * dp], pa, vf[0], vf[1]);
                mma_16816<T>(o[2 * dp + 1], pa, vf[2], vf[3]);
            }
        }
    }

    // out_i = o_i / l_i, lse_i = (m_i + log2 l_i)·ln 2
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l_row = l[r];
        l_row += __shfl_xor_sync(0xffffffffu, l_row, 1);
        l_row += __shfl_xor_sync(0xffffffffu, l_row, 2);
        const int i = i_row0 + 8 * r;
        if (i >= L) continue;
        const float inv = l_row > 0.f ? 1.f / l_row : 0.f;
        T* orow = out + (b * L + i) * E;
#pragma unroll
        for (int n = 0; n < NO; ++n) {
            const int d = 8 * n + 2 * t;
            if (d < E) orow[d] = from_f32<T>(o[n][2 * r] * inv);
            if (d + 1 < E) orow[d + 1] = from_f32<T>(o[n][2 * r + 1] * inv);
        }
        if (t == 0) lse[b * L + i] = l_row > 0.f ? (m[r] + log2f(l_row)) * kLn2 : INFINITY;
    }
#elif defined(__CUDA_ARCH__)
    __trap();  // compiled for an architecture below sm_80 (the host selects this kernel only on sm_80+)
#endif
}

// =============================================================================================== backward

// delta[r] = Σ_d dout[r, d] · out[r, d] for the rows * E contiguous matrices; one warp per row (fixed order:
// lane-strided partial sums, then a butterfly).
template <class T>
__global__ void attention_delta_kernel(const T* __restrict__ dout, const T* __restrict__ out,
                                       float* __restrict__ delta, int64_t rows, int E) {
    const int lane = threadIdx.x % 32;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
        float s = 0.f;
        for (int d = lane; d < E; d += 32) s = fmaf(to_f32(dout[r * E + d]), to_f32(out[r * E + d]), s);
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) delta[r] = s;
    }
}

// dk, dv for one key tile: grid B · ceil(S / kBwdBK) blocks, blockIdx.x = b · n_ktiles + kt. The score tile is
// held transposed, rows = keys j = k0 + rg + 16a, columns = queries i = q0 + cg + 8c.
template <class T, int D>
__global__ void __launch_bounds__(kThreads)
    attention_dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                          const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                          T* __restrict__ dk, T* __restrict__ dv, int L, int S, int E, int n_ktiles, float scale,
                          float scale_log2, bool causal) {
    constexpr int BQ = kBwdBQ, BK = kBwdBK, DP = D + 1, PS = BQ + kScorePad;
    constexpr int RA = BK / kRowGroups;  // keys per thread
    constexpr int CB = BQ / kColGroups;  // queries per thread
    constexpr int CD = D / kColGroups;   // gradient columns per thread
    extern __shared__ float smem[];
    float* Ks = smem;              // [BK][DP]
    float* Vs = Ks + BK * DP;      // [BK][DP]
    float* Qs = Vs + BK * DP;      // [BQ][DP]
    float* dOs = Qs + BQ * DP;     // [BQ][DP]
    float* Pt = dOs + BQ * DP;     // [BK][PS]: p_ij at [j][i]
    float* dSt = Pt + BK * PS;     // [BK][PS]: ds_ij at [j][i]
    float* lse2 = dSt + BK * PS;   // [BQ]: lse_i · log2 e (+∞ past L)
    float* Dl = lse2 + BQ;         // [BQ]: Δ_i

    const int rg = threadIdx.x / kColGroups, cg = threadIdx.x % kColGroups;
    const int64_t b = blockIdx.x / n_ktiles;
    const int k0 = (int)(blockIdx.x % n_ktiles) * BK;
    const T* qb = q + b * L * E;
    const T* dob = dout + b * L * E;
    const float* lseb = lse + b * L;
    const float* deltab = delta + b * L;

    load_tile<D, BK>(Ks, k + b * S * E, k0, S, E);
    load_tile<D, BK>(Vs, v + b * S * E, k0, S, E);

    float dk_acc[RA][CD], dv_acc[RA][CD];
#pragma unroll
    for (int a = 0; a < RA; ++a)
#pragma unroll
        for (int c = 0; c < CD; ++c) dk_acc[a][c] = dv_acc[a][c] = 0.f;

    // Causal: query i sees key j only when i ≥ j, so queries before k0 contribute nothing.
    const int q_begin = causal ? (k0 / BQ) * BQ : 0;
    for (int q0 = q_begin; q0 < L; q0 += BQ) {
        __syncthreads();  // the previous tile's readers of Qs, dOs, Pt, dSt are done
        load_tile<D, BQ>(Qs, qb, q0, L, E);
        load_tile<D, BQ>(dOs, dob, q0, L, E);
        load_rowvec<BQ>(lse2, lseb, q0, L, kLog2e, INFINITY);
        load_rowvec<BQ>(Dl, deltab, q0, L, 1.f, 0.f);
        __syncthreads();

        // st[a][c] = k_j · q_i, dpt[a][c] = v_j · dout_i
        float st[RA][CB], dpt[RA][CB];
#pragma unroll
        for (int a = 0; a < RA; ++a)
#pragma unroll
            for (int c = 0; c < CB; ++c) st[a][c] = dpt[a][c] = 0.f;
#pragma unroll 4
        for (int d = 0; d < D; ++d) {
            float kv[RA], vv[RA], qv[CB], dov[CB];
#pragma unroll
            for (int a = 0; a < RA; ++a) {
                kv[a] = Ks[(rg + kRowGroups * a) * DP + d];
                vv[a] = Vs[(rg + kRowGroups * a) * DP + d];
            }
#pragma unroll
            for (int c = 0; c < CB; ++c) {
                qv[c] = Qs[(cg + kColGroups * c) * DP + d];
                dov[c] = dOs[(cg + kColGroups * c) * DP + d];
            }
#pragma unroll
            for (int a = 0; a < RA; ++a)
#pragma unroll
                for (int c = 0; c < CB; ++c) {
                    st[a][c] = fmaf(kv[a], qv[c], st[a][c]);
                    dpt[a][c] = fmaf(vv[a], dov[c], dpt[a][c]);
                }
        }
#pragma unroll
        for (int a = 0; a < RA; ++a) {
            const int jl = rg + kRowGroups * a, j = k0 + jl;
#pragma unroll
            for (int c = 0; c < CB; ++c) {
                const int il = cg + kColGroups * c, i = q0 + il;
                const bool keep = i < L && j < S && !(causal && j > i);
                const float p = keep ? exp2f(st[a][c] * scale_log2 - lse2[il]) : 0.f;
                Pt[jl * PS + il] = p;
                dSt[jl * PS + il] = p * (dpt[a][c] - Dl[il]);
            }
        }
        __syncthreads();  // Pt and dSt complete

        // dv_j += Σ_i p_ij dout_i,  dk_j += Σ_i ds_ij q_i   (columns d = cg + 8c)
#pragma unroll 2
        for (int il = 0; il < BQ; ++il) {
            float pv[RA], dsv[RA];
#pragma unroll
            for (int a = 0; a < RA; ++a) {
                pv[a] = Pt[(rg + kRowGroups * a) * PS + il];
                dsv[a] = dSt[(rg + kRowGroups * a) * PS + il];
            }
#pragma unroll
            for (int c = 0; c < CD; ++c) {
                const float dov = dOs[il * DP + cg + kColGroups * c];
                const float qv = Qs[il * DP + cg + kColGroups * c];
#pragma unroll
                for (int a = 0; a < RA; ++a) {
                    dv_acc[a][c] = fmaf(pv[a], dov, dv_acc[a][c]);
                    dk_acc[a][c] = fmaf(dsv[a], qv, dk_acc[a][c]);
                }
            }
        }
    }

#pragma unroll
    for (int a = 0; a < RA; ++a) {
        const int j = k0 + rg + kRowGroups * a;
        if (j >= S) continue;
        T* dkrow = dk + (b * S + j) * E;
        T* dvrow = dv + (b * S + j) * E;
#pragma unroll
        for (int c = 0; c < CD; ++c) {
            const int d = cg + kColGroups * c;
            if (d < E) {
                dkrow[d] = from_f32<T>(dk_acc[a][c] * scale);
                dvrow[d] = from_f32<T>(dv_acc[a][c]);
            }
        }
    }
}

// dq for one query tile: grid B · ceil(L / kBwdBQ) blocks, blockIdx.x = b · n_qtiles + qt. Score tile rows =
// queries i = q0 + rg + 16a, columns = keys j = k0 + cg + 8c.
template <class T, int D>
__global__ void __launch_bounds__(kThreads)
    attention_dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                        T* __restrict__ dq, int L, int S, int E, int n_qtiles, float scale, float scale_log2,
                        bool causal) {
    constexpr int BQ = kBwdBQ, BK = kBwdBK, DP = D + 1, PS = BK + kScorePad;
    constexpr int RA = BQ / kRowGroups;  // queries per thread
    constexpr int CB = BK / kColGroups;  // keys per thread
    constexpr int CD = D / kColGroups;   // gradient columns per thread
    extern __shared__ float smem[];
    float* Qs = smem;              // [BQ][DP]
    float* dOs = Qs + BQ * DP;     // [BQ][DP]
    float* Ks = dOs + BQ * DP;     // [BK][DP]
    float* Vs = Ks + BK * DP;      // [BK][DP]
    float* dSs = Vs + BK * DP;     // [BQ][PS]: ds_ij at [i][j]
    float* lse2 = dSs + BQ * PS;   // [BQ]
    float* Dl = lse2 + BQ;         // [BQ]

    const int rg = threadIdx.x / kColGroups, cg = threadIdx.x % kColGroups;
    const int64_t b = blockIdx.x / n_qtiles;
    const int q0 = (int)(blockIdx.x % n_qtiles) * BQ;
    const T* kb = k + b * S * E;
    const T* vb = v + b * S * E;

    load_tile<D, BQ>(Qs, q + b * L * E, q0, L, E);
    load_tile<D, BQ>(dOs, dout + b * L * E, q0, L, E);
    load_rowvec<BQ>(lse2, lse + b * L, q0, L, kLog2e, INFINITY);
    load_rowvec<BQ>(Dl, delta + b * L, q0, L, 1.f, 0.f);

    float dq_acc[RA][CD];
#pragma unroll
    for (int a = 0; a < RA; ++a)
#pragma unroll
        for (int c = 0; c < CD; ++c) dq_acc[a][c] = 0.f;

    const int k_end = causal ? min(S, q0 + BQ) : S;
    for (int k0 = 0; k0 < k_end; k0 += BK) {
        __syncthreads();  // the previous tile's readers of Ks and dSs are done
        load_tile<D, BK>(Ks, kb, k0, S, E);
        load_tile<D, BK>(Vs, vb, k0, S, E);
        __syncthreads();  // key/value tiles (and, the first time, the query-side tiles) visible

        float s[RA][CB], dp[RA][CB];
#pragma unroll
        for (int a = 0; a < RA; ++a)
#pragma unroll
            for (int c = 0; c < CB; ++c) s[a][c] = dp[a][c] = 0.f;
#pragma unroll 4
        for (int d = 0; d < D; ++d) {
            float qv[RA], dov[RA], kv[CB], vv[CB];
#pragma unroll
            for (int a = 0; a < RA; ++a) {
                qv[a] = Qs[(rg + kRowGroups * a) * DP + d];
                dov[a] = dOs[(rg + kRowGroups * a) * DP + d];
            }
#pragma unroll
            for (int c = 0; c < CB; ++c) {
                kv[c] = Ks[(cg + kColGroups * c) * DP + d];
                vv[c] = Vs[(cg + kColGroups * c) * DP + d];
            }
#pragma unroll
            for (int a = 0; a < RA; ++a)
#pragma unroll
                for (int c = 0; c < CB; ++c) {
                    s[a][c] = fmaf(qv[a], kv[c], s[a][c]);
                    dp[a][c] = fmaf(dov[a], vv[c], dp[a][c]);
                }
        }
#pragma unroll
        for (int a = 0; a < RA; ++a) {
            const int il = rg + kRowGroups * a, i = q0 + il;
#pragma unroll
            for (int c = 0; c < CB; ++c) {
                const int jl = cg + kColGroups * c, j = k0 + jl;
                const bool keep = i < L && j < S && !(causal && j > i);
                const float p = keep ? exp2f(s[a][c] * scale_log2 - lse2[il]) : 0.f;
                dSs[il * PS + jl] = p * (dp[a][c] - Dl[il]);
            }
        }
        __syncthreads();  // dSs complete

        // dq_i += Σ_j ds_ij k_j   (columns d = cg + 8c)
#pragma unroll 2
        for (int jl = 0; jl < BK; ++jl) {
            float dsv[RA];
#pragma unroll
            for (int a = 0; a < RA; ++a) dsv[a] = dSs[(rg + kRowGroups * a) * PS + jl];
#pragma unroll
            for (int c = 0; c < CD; ++c) {
                const float kv = Ks[jl * DP + cg + kColGroups * c];
#pragma unroll
                for (int a = 0; a < RA; ++a) dq_acc[a][c] = fmaf(dsv[a], kv, dq_acc[a][c]);
            }
        }
    }

#pragma unroll
    for (int a = 0; a < RA; ++a) {
        const int i = q0 + rg + kRowGroups * a;
        if (i >= L) continue;
        T* dqrow = dq + (b * L + i) * E;
#pragma unroll
        for (int c = 0; c < CD; ++c) {
            const int d = cg + kColGroups * c;
            if (d < E) dqrow[d] = from_f32<T>(dq_acc[a][c] * scale);
        }
    }
}

// =============================================================================================== host side

// Head dims compiled (E is padded up to the first one ≥ E): the Stable Diffusion / CLIP head dims 40, 64, 80,
// 160 exactly, and multiples of 32 in between.
constexpr int kHeadDims[] = {32, 40, 64, 80, 96, 128, 160};
static_assert(kHeadDims[sizeof(kHeadDims) / sizeof(int) - 1] == kAttentionMaxHeadDim, "largest head dim");

// Calls f(std::integral_constant<int, D>{}) with the padded head dim D for E.
template <class F>
void with_head_dim(int E, F&& f) {
    if (E <= 32) return f(std::integral_constant<int, 32>{});
    if (E <= 40) return f(std::integral_constant<int, 40>{});
    if (E <= 64) return f(std::integral_constant<int, 64>{});
    if (E <= 80) return f(std::integral_constant<int, 80>{});
    if (E <= 96) return f(std::integral_constant<int, 96>{});
    if (E <= 128) return f(std::integral_constant<int, 128>{});
    if (E <= 160) return f(std::integral_constant<int, 160>{});
    CXR_FAIL("fused attention (CUDA): head dim ", E, " is above the largest supported, ", kAttentionMaxHeadDim);
}

// Allows `kernel` to use `bytes` of dynamic shared memory (needed above the 48 KB default), failing clearly when
// the device has less.
template <class K>
void set_smem(K* kernel, size_t bytes, int device, const char* name) {
    // once per (kernel, device): the attribute persists, and two API calls per launch would skew short launches
    static std::mutex mu;
    static std::set<std::pair<const void*, int>> done;
    std::lock_guard<std::mutex> lock(mu);
    if (done.count({(const void*)kernel, device})) return;
    int optin = 0;
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
    CXR_CHECK(bytes <= (size_t)optin, "fused attention (CUDA): ", name, " needs ", bytes,
              " bytes of shared memory per block, the device allows ", optin);
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes), name);
    done.insert({(const void*)kernel, device});
}

// Calls f(T{}) with T the storage type of dt (f32, f16 or bf16 only: the kernels compute in f32).
template <class F>
void with_dtype(DType dt, const char* op, F&& f) {
    switch (dt) {
        case DType::f32: return f(float{});
        case DType::f16: return f(Half{});
        case DType::bf16: return f(BFloat16{});
        default: CXR_FAIL(op, " (CUDA): the fused kernel takes f32, f16 or bf16, got ", dtype_name(dt));
    }
}

struct Dims {
    int64_t B = 0;
    int L = 0, S = 0, E = 0;
};

void check_same(const char* op, const char* what, const Tensor& t, const Shape& shape, DType dt, Device dev) {
    CXR_CHECK(t.is_contiguous() && t.sizes() == shape && t.dtype() == dt && t.device() == dev, op, " (CUDA): ", what,
              " must be contiguous ", shape_str(shape), " ", dtype_name(dt), " on ", dev.str(), ", got ",
              shape_str(t.sizes()), " ", dtype_name(t.dtype()), " on ", t.device().str(),
              t.is_contiguous() ? "" : " (non-contiguous)");
}

Dims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
    CXR_CHECK(q.dim() == 3 && k.dim() == 3, op, " (CUDA): expects q [B, L, E], k [B, S, E], got q ",
              shape_str(q.sizes()), ", k ", shape_str(k.sizes()));
    Dims d;
    d.B = q.size(0);
    d.L = (int)q.size(1);
    d.S = (int)k.size(1);
    d.E = (int)q.size(2);
    CXR_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::f16 || q.dtype() == DType::bf16, op,
              " (CUDA): dtype must be f32, f16 or bf16, got ", dtype_name(q.dtype()));
    CXR_CHECK(d.E >= 1 && d.E <= kAttentionMaxHeadDim, op, " (CUDA): head dim ", d.E, " outside 1..",
              kAttentionMaxHeadDim);
    CXR_CHECK(q.size(1) < (int64_t)1 << 30 && k.size(1) < (int64_t)1 << 30, op, " (CUDA): sequence too long");
    check_same(op, "q", q, {d.B, d.L, d.E}, q.dtype(), q.device());
    check_same(op, "k", k, {d.B, d.S, d.E}, q.dtype(), q.device());
    check_same(op, "v", v, {d.B, d.S, d.E}, q.dtype(), q.device());
    return d;
}

// ---- tensor-core forward selection ----

// Head dims of the tensor-core forward (E is padded up to the first one ≥ E): multiples of 16, with 40 → 48.
template <class F>
void with_tc_head_dim(int E, F&& f) {
    if (E <= 32) return f(std::integral_constant<int, 32>{});
    if (E <= 48) return f(std::integral_constant<int, 48>{});
    if (E <= 64) return f(std::integral_constant<int, 64>{});
    if (E <= 80) return f(std::integral_constant<int, 80>{});
    if (E <= 96) return f(std::integral_constant<int, 96>{});
    if (E <= 128) return f(std::integral_constant<int, 128>{});
    if (E <= 160) return f(std::integral_constant<int, 160>{});
    CXR_FAIL("fused attention (CUDA): head dim ", E, " is above the tensor-core kernel's largest, 160");
}
constexpr int kTcMaxHeadDim = 160;
static_assert(kTcMaxHeadDim == kAttentionMaxHeadDim, "every fused head dim has a tensor-core forward");

// True when device `dev` has f16/bf16 mma.sync m16n8k16, ldmatrix and cp.async (compute capability ≥ 8.0).
bool attention_tc_capable(int dev) {
    return runs_sm80_code(attention_forward_tc_kernel<Half, 64>, dev, "cudaFuncGetAttributes(attention_forward_tc_kernel)");
}

// The selection rule: the tensor-core forward for f16/bf16 (every fused head dim, E ≤ 160) on sm_80+, unless
// CXR_ATTN_TC=OFF (read at each call, for audits, tests and the benchmark's variant comparison); the SIMT forward
// otherwise.
bool use_tc_forward(DType dt, int E, int dev) {
    return (dt == DType::f16 || dt == DType::bf16) && E <= kTcMaxHeadDim && env_switch_on("CXR_ATTN_TC") &&
           attention_tc_capable(dev);
}

unsigned grid_for(int64_t B, int64_t tiles, const char* op) {
    const int64_t n = B * tiles;
    CXR_CHECK(n < (int64_t)1 << 31, op, " (CUDA): grid of ", n, " blocks is too large");
    return (unsigned)n;
}

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool is_causal,
                       const Tensor& out, const Tensor& lse) {
    const char* op = "attention_forward";
    const Dims d = check_qkv(op, q, k, v);
    check_same(op, "out", out, {d.B, d.L, d.E}, q.dtype(), q.device());
    check_same(op, "lse", lse, {d.B, d.L}, DType::f32, q.device());
    if (d.B == 0 || d.L == 0) return;
    CXR_CHECK(d.S > 0, op, " (CUDA): no keys (S = 0); the op layer handles that case");
    const int dev = q.device().index;
    const DeviceGuard device_guard(dev);  // restored on return
    cudaStream_t stream = current_stream(dev);
    const int n_qtiles = (d.L + kFwdBQ - 1) / kFwdBQ;
    const unsigned grid = grid_for(d.B, n_qtiles, op);
    const float scale_log2 = (float)(scale * 1.4426950408889634);
    if (use_tc_forward(q.dtype(), d.E, dev)) {
        static_assert(kTcBQ == kFwdBQ, "one query-tile count for both forwards");
        // 16-byte cp.async chunks need rows of a multiple of 8 values and 16-byte aligned base pointers
        auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0; };
        const bool vec = d.E % 8 == 0 && aligned(q) && aligned(k) && aligned(v);
        with_dtype(q.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (!std::is_same<T, float>::value) {
                with_tc_head_dim(d.E, [&](auto hd) {
                    constexpr int D = decltype(hd)::value;
                    auto* kernel = attention_forward_tc_kernel<T, D>;
                    const size_t bytes = tc_fwd_smem_bytes<D>();
                    set_smem(kernel, bytes, dev, "attention_forward_tc_kernel");
                    kernel<<<grid, kTcThreads, bytes, stream>>>(q.data<T>(), k.data<T>(), v.data<T>(),
                                                                out.data<T>(), lse.data<float>(), d.L, d.S, d.E,
                                                                n_qtiles, scale_log2, is_causal, vec);
                    after_launch("attention_forward_tc_kernel");
                });
            }
        });
        return;
    }
    with_dtype(q.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        with_head_dim(d.E, [&](auto hd) {
            constexpr int D = decltype(hd)::value;
            auto* kernel = attention_forward_kernel<T, D>;
            const size_t bytes = fwd_smem_floats<D>() * sizeof(float);
            set_smem(kernel, bytes, dev, "attention_forward_kernel");
            kernel<<<grid, kThreads, bytes, stream>>>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                                                      lse.data<float>(), d.L, d.S, d.E, n_qtiles, scale_log2,
                                                      is_causal);
            after_launch("attention_forward_kernel");
        });
    });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                        const Tensor& lse, double scale, bool is_causal, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv) {
    const char* op = "attention_backward";
    const Dims d = check_qkv(op, q, k, v);
    check_same(op, "out", out, {d.B, d.L, d.E}, q.dtype(), q.device());
    check_same(op, "dout", dout, {d.B, d.L, d.E}, q.dtype(), q.device());
    check_same(op, "lse", lse, {d.B, d.L}, DType::f32, q.device());
    check_same(op, "dq", dq, {d.B, d.L, d.E}, q.dtype(), q.device());
    check_same(op, "dk", dk, {d.B, d.S, d.E}, q.dtype(), q.device());
    check_same(op, "dv", dv, {d.B, d.S, d.E}, q.dtype(), q.device());
    if (d.B == 0 || d.L == 0 || d.S == 0) {
        CXR_CHECK(d.B == 0 || (d.L == 0 && d.S == 0), op, " (CUDA): empty L or S; the op layer handles that case");
        return;
    }
    const int dev = q.device().index;
    const DeviceGuard device_guard(dev);  // restored on return
    cudaStream_t stream = current_stream(dev);
    const int64_t rows = d.B * d.L;
    Tensor delta = Tensor::empty({d.B, d.L}, DType::f32, q.device());  // Δ_i, f32
    const int n_qtiles = (d.L + kBwdBQ - 1) / kBwdBQ;
    const int n_ktiles = (d.S + kBwdBK - 1) / kBwdBK;
    const unsigned grid_q = grid_for(d.B, n_qtiles, op), grid_k = grid_for(d.B, n_ktiles, op);
    const float fscale = (float)scale, scale_log2 = (float)(scale * 1.4426950408889634);
    with_dtype(q.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        // Δ: 8 warps per block, one row per warp (grid-stride beyond 8·65535 blocks)
        const int64_t delta_blocks = (rows + 7) / 8;
        attention_delta_kernel<T><<<(unsigned)(delta_blocks > 65535 * 8 ? 65535 * 8 : delta_blocks), 256, 0,
                                    stream>>>(dout.data<T>(), out.data<T>(), delta.data<float>(), rows, d.E);
        after_launch("attention_delta_kernel");
        with_head_dim(d.E, [&](auto hd) {
            constexpr int D = decltype(hd)::value;
            const size_t bytes = bwd_smem_floats<D>() * sizeof(float);
            auto* dkdv = attention_dkdv_kernel<T, D>;
            set_smem(dkdv, bytes, dev, "attention_dkdv_kernel");
            dkdv<<<grid_k, kThreads, bytes, stream>>>(q.data<T>(), k.data<T>(), v.data<T>(), dout.data<T>(),
                                                      lse.data<float>(), delta.data<float>(), dk.data<T>(),
                                                      dv.data<T>(), d.L, d.S, d.E, n_ktiles, fscale, scale_log2,
                                                      is_causal);
            after_launch("attention_dkdv_kernel");
            auto* dqk = attention_dq_kernel<T, D>;
            set_smem(dqk, bytes, dev, "attention_dq_kernel");
            dqk<<<grid_q, kThreads, bytes, stream>>>(q.data<T>(), k.data<T>(), v.data<T>(), dout.data<T>(),
                                                     lse.data<float>(), delta.data<float>(), dq.data<T>(), d.L, d.S,
                                                     d.E, n_qtiles, fscale, scale_log2, is_causal);
            after_launch("attention_dq_kernel");
        });
    });
}

}  // namespace

void register_attention_kernels(KernelRegistry& r) {
    register_kernel<AttentionForwardKernel>(r, "attention_forward", DeviceType::CUDA, attention_forward);
    register_kernel<AttentionBackwardKernel>(r, "attention_backward", DeviceType::CUDA, attention_backward);
}

}  // namespace cxr::tensor::cuda
