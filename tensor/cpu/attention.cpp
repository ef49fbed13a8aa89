// Fused ("flash") scaled dot-product attention kernels for the CPU: "attention_forward" / "attention_backward"
// with the signatures of tensor/ops/attention.h (q [B, L, E], k, v [B, S, E], contiguous; f32, f16 or bf16).
// The math follows FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and
// Work Partitioning", algorithms 1 and 2), written for cache tiles instead of GPU shared memory; nothing of size
// L×S is ever held, only one (forward) or two (backward: P and dS) [kBr, kBc] tiles per thread.
//
// Scores A_ij = scale · q_i·k_j; causal (top-left aligned, as torch and the composed reference): key j > query i
// is masked. With the causal rule every row i keeps key 0, so no row is ever fully masked (S ≥ 1).
//
// Forward, per (batch b, block of kBr query rows), keys in tiles of kBc:
//   S = scale · Q_blk K_tileᵀ                                  [rows, n]   (sgemm)
//   m'_i = max(m_i, max_j S_ij),  P_ij = e^(S_ij − m'_i)       masked entries P = 0
//   l_i ← l_i · e^(m_i − m'_i) + Σ_j P_ij,  O_i ← O_i · e^(m_i − m'_i) + Σ_j P_ij v_j     (sgemm, beta = 1)
// then out_i = O_i / l_i and lse_i = m_i + log l_i (f32, as the CUDA kernels save it).
// Backward (recomputation, no L×S storage):  P_ij = e^(S_ij − lse_i),  Δ_i = Σ_d dout_id · out_id,
//   dv = Pᵀ dout,  dP = dout vᵀ,  dS = P ⊙ (dP − Δ),  dq = scale · dS k,  dk = scale · dSᵀ q.
//   Pass 1 parallel over (b, key block): dk, dv of that block summed over the query tiles;
//   pass 2 parallel over (b, query block): dq of that block summed over the key tiles.
//   Each output element is owned by one task and summed in a fixed order: deterministic for any thread count.
//
// Precision: the tile products go through sgemm_fast (tensor/cpu/gemm.h; AVX2+FMA micro-kernel where the CPU has
// it), i.e. f32 products with f32 accumulation — the same arithmetic as the composed reference's f32 matmuls.
// The softmax statistics are kept per row: m in f32 (exact, a maximum), l in double (sum over up to S tile sums),
// Δ in double. e^x is a polynomial (exp_v8 below; at most 1.2 f32 ulp from e^x computed in double, measured on
// a 1.3e-5 grid over [−87, 0]) on 8-lane vector-extension types; the row loops are compiled twice, for AVX2 and
// the baseline, and picked at run time (target_clones, x86 GCC/Clang on Linux; elsewhere the baseline only).
// f16/bf16 inputs are widened to f32 once, the kernel runs in f32, and the results are rounded to the input
// dtype once.
// Parallelism: OpenMP over the (b, block) tasks, dynamic schedule (causal blocks differ in work); the sgemm calls
// inside then run single-threaded (sgemm_fast does not nest).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/kernels.h"
#include "tensor/error.h"
#include "tensor/ops/attention.h"

namespace cxr::tensor::cpu {

void register_attention_kernels(KernelRegistry& r);

namespace {

// Tile sizes: a [kBr, kBc] f32 score tile is 128 KiB, in L2 with its K/V tile. Measured at the SD shapes
// (bench/bench_cpu_attention.cpp, 2 Xeon cores): [128, 256] was 5-15% faster than [64, 256], [96, 256],
// [64, 512] and [128, 128] forward, and as fast as the best of them forward+backward.
constexpr int64_t kBr = 128;  // query rows per block
constexpr int64_t kBc = 256;  // keys per tile

// Work (B·L·S·E multiply-adds) below which one thread is faster than forking.
constexpr double kParallelWork = double(1 << 18);

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#define CXR_ATTN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CXR_ATTN_CLONES
#endif

// e^x in f32 for x ≤ 0 (the only arguments here: scores minus their row maximum or lse), −∞ and x < −87 give 0.
// x = n·ln2 + r with n = round(x / ln2) and |r| ≤ ln2/2 (ln2 split in a high part exact in f32 and a low part, so
// n·ln2_hi is exact); e^r by its Taylor series to r⁷ (truncation < 3e-9 relative at |r| = ln2/2, under f32's
// 6e-8), 2^n put straight into the exponent bits. Rounding to nearest by adding and subtracting 1.5·2²³.
// Written once for 8 lanes with GCC/Clang vector extensions (not intrinsics: the same source compiles to AVX2 in
// the avx2 clone and to pairs of SSE2 operations in the default one) and once as a scalar for the row tails.
// (The helpers taking and returning v8f are always inlined into the clones, so no v8f crosses a call boundary:
// GCC's -Wpsabi note about the 32-byte vector ABI without AVX does not apply and is silenced.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define CXR_ATTN_INLINE inline __attribute__((always_inline))

CXR_ATTN_INLINE v8f splat(float a) { return v8f{a, a, a, a, a, a, a, a}; }
CXR_ATTN_INLINE v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
CXR_ATTN_INLINE void store8(float* p, const v8f& v) { std::memcpy(p, &v, sizeof v); }

// e^x in place on 8 lanes (by reference: see the ABI note above).
CXR_ATTN_INLINE void exp_v8(v8f& x) {
    const v8i under = x < splat(-87.0f);
    x = under ? splat(-87.0f) : x;
    x = x > splat(88.0f) ? splat(88.0f) : x;
    const v8f fn = (x * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f);
    const v8f r = (x - fn * splat(0.693145751953125f)) - fn * splat(1.428606820309417232e-6f);
    v8f p = splat(1.0f / 5040.0f);
    p = p * r + splat(1.0f / 720.0f);
    p = p * r + splat(1.0f / 120.0f);
    p = p * r + splat(1.0f / 24.0f);
    p = p * r + splat(1.0f / 6.0f);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    const v8i bits = (__builtin_convertvector(fn, v8i) + 127) << 23;
    v8f two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    x = under ? splat(0.0f) : p * two_n;
}

CXR_ATTN_INLINE float exp_f32(float x) {
    const bool under = x < -87.0f;
    x = under ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - fn * 0.693145751953125f) - fn * 1.428606820309417232e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(fn) + 127) << 23;
    float two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    return under ? 0.0f : p * two_n;
}

CXR_ATTN_CLONES float row_max(const float* s, int64_t n) {
    v8f acc = splat(-std::numeric_limits<float>::infinity());
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const v8f x = load8(s + j);
        acc = x > acc ? x : acc;
    }
    float m = acc[0];
    for (int u = 1; u < 8; ++u) m = std::max(m, acc[u]);
    for (; j < n; ++j) m = std::max(m, s[j]);
    return m;
}

// s_j ← e^(s_j − shift) for j < n; returns Σ_j of the new values (f32 within one tile of ≤ kBc terms, 8 partial
// sums then the tail, a fixed order).
CXR_ATTN_CLONES float exp_shift_sum(float* s, int64_t n, float shift) {
    v8f acc = splat(0.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f p = load8(s + j) - splat(shift);
        exp_v8(p);
        store8(s + j, p);
        acc += p;
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; ++j) {
        const float p = exp_f32(s[j] - shift);
        s[j] = p;
        sum += p;
    }
    return sum;
}

CXR_ATTN_CLONES void scale_row(float* x, int64_t n, float a) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) store8(x + j, load8(x + j) * splat(a));
    for (; j < n; ++j) x[j] *= a;
}

// dp_j ← p_j · (dp_j − delta): dS = P ⊙ (dP − Δ) for one row.
CXR_ATTN_CLONES void ds_row(const float* p, float* dp, int64_t n, float delta) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) store8(dp + j, load8(p + j) * (load8(dp + j) - splat(delta)));
    for (; j < n; ++j) dp[j] = p[j] * (dp[j] - delta);
}

// Keys of tile [j0, j0 + n) visible to query i: all n, or causally those with j ≤ i (may be ≤ 0).
inline int64_t visible(bool causal, int64_t i, int64_t j0, int64_t n) {
    return causal ? std::min(n, i - j0 + 1) : n;
}

struct Dims {
    int64_t B, L, S, E;
};

void forward_f32(const float* Q, const float* K, const float* V, float* O, float* LSE, Dims d, float scale,
                 bool causal) {
    const int64_t nqb = (d.L + kBr - 1) / kBr;
    const int64_t tasks = d.B * nqb;
    const bool par = double(d.B) * d.L * d.S * d.E > kParallelWork;
#pragma omp parallel if (par)
    {
        std::vector<float> sbuf(kBr * kBc), acc(kBr * d.E), m(kBr);
        std::vector<double> l(kBr);
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < tasks; ++t) {
            const int64_t b = t / nqb, i0 = (t % nqb) * kBr, rows = std::min(kBr, d.L - i0);
            const int64_t kend = causal ? std::min(d.S, i0 + rows) : d.S;  // keys any row of the block sees
            const float* Qi = Q + (b * d.L + i0) * d.E;
            std::fill(acc.begin(), acc.end(), 0.0f);
            std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
            std::fill(l.begin(), l.end(), 0.0);
            for (int64_t j0 = 0; j0 < kend; j0 += kBc) {
                const int64_t n = std::min(kBc, kend - j0);
                // S = scale · Q_blk K_tileᵀ   [rows, n], row stride kBc
                sgemm_fast(false, true, rows, n, d.E, scale, Qi, d.E, K + (b * d.S + j0) * d.E, d.E, 0.0f,
                           sbuf.data(), kBc);
                for (int64_t r = 0; r < rows; ++r) {
                    float* s = sbuf.data() + r * kBc;
                    const int64_t nv = std::max<int64_t>(0, visible(causal, i0 + r, j0, n));
                    if (nv > 0) {
                        const float mnew = std::max(m[r], row_max(s, nv));
                        const float alpha = m[r] == -std::numeric_limits<float>::infinity()
                                                ? 0.0f
                                                : std::exp(m[r] - mnew);  // rescales the earlier tiles
                        const float sum = exp_shift_sum(s, nv, mnew);
                        l[r] = l[r] * alpha + sum;
                        if (alpha != 1.0f) scale_row(acc.data() + r * d.E, d.E, alpha);
                        m[r] = mnew;
                    }
                    std::fill(s + nv, s + n, 0.0f);  // masked keys: P = 0
                }
                // O_blk += P V_tile   [rows, E]
                sgemm_fast(false, false, rows, d.E, n, 1.0f, sbuf.data(), kBc, V + (b * d.S + j0) * d.E, d.E, 1.0f,
                           acc.data(), d.E);
            }
            for (int64_t r = 0; r < rows; ++r) {
                const float inv = float(1.0 / l[r]);
                float* o = O + (b * d.L + i0 + r) * d.E;
                const float* a = acc.data() + r * d.E;
                for (int64_t e = 0; e < d.E; ++e) o[e] = a[e] * inv;
                LSE[b * d.L + i0 + r] = float(double(m[r]) + std::log(l[r]));
            }
        }
    }
}

// P = e^(scale · Q_i K_jᵀ − lse_i) (masked → 0) and dS = P ⊙ (dout_i V_jᵀ − Δ_i) for one [rows, n] tile.
void recompute_tile(const float* Qi, const float* Kj, const float* Vj, const float* dOi, const float* lse,
                    const float* delta, int64_t i0, int64_t rows, int64_t j0, int64_t n, int64_t E, float scale,
                    bool causal, float* P, float* dS) {
    sgemm_fast(false, true, rows, n, E, scale, Qi, E, Kj, E, 0.0f, P, kBc);
    sgemm_fast(false, true, rows, n, E, 1.0f, dOi, E, Vj, E, 0.0f, dS, kBc);
    for (int64_t r = 0; r < rows; ++r) {
        float* p = P + r * kBc;
        float* ds = dS + r * kBc;
        const int64_t nv = std::max<int64_t>(0, visible(causal, i0 + r, j0, n));
        exp_shift_sum(p, nv, lse[r]);
        std::fill(p + nv, p + n, 0.0f);
        ds_row(p, ds, n, delta[r]);
    }
}

void backward_f32(const float* Q, const float* K, const float* V, const float* O, const float* dO, const float* LSE,
                  float* dQ, float* dK, float* dV, Dims d, float scale, bool causal) {
    const bool par = double(d.B) * d.L * d.S * d.E > kParallelWork;
    // Δ_i = Σ_d dout_id · out_id   [B·L]
    std::vector<float> delta(d.B * d.L);
#pragma omp parallel for if (par)
    for (int64_t i = 0; i < d.B * d.L; ++i) {
        double s = 0.0;
        for (int64_t e = 0; e < d.E; ++e) s += double(dO[i * d.E + e]) * O[i * d.E + e];
        delta[i] = float(s);
    }
    const int64_t nqb = (d.L + kBr - 1) / kBr, nkb = (d.S + kBc - 1) / kBc;
#pragma omp parallel if (par)
    {
        std::vector<float> P(kBr * kBc), dS(kBr * kBc);
        // Pass 1: dk, dv for one (b, key block), summed over the query tiles that see it.
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < d.B * nkb; ++t) {
            const int64_t b = t / nkb, j0 = (t % nkb) * kBc, n = std::min(kBc, d.S - j0);
            const float* Kj = K + (b * d.S + j0) * d.E;
            const float* Vj = V + (b * d.S + j0) * d.E;
            float* dKj = dK + (b * d.S + j0) * d.E;
            float* dVj = dV + (b * d.S + j0) * d.E;
            std::fill(dKj, dKj + n * d.E, 0.0f);
            std::fill(dVj, dVj + n * d.E, 0.0f);
            const int64_t ibeg = causal ? (j0 / kBr) * kBr : 0;  // causal: rows i < j0 see none of these keys
            for (int64_t i0 = ibeg; i0 < d.L; i0 += kBr) {
                const int64_t rows = std::min(kBr, d.L - i0);
                const float* Qi = Q + (b * d.L + i0) * d.E;
                const float* dOi = dO + (b * d.L + i0) * d.E;
                recompute_tile(Qi, Kj, Vj, dOi, LSE + b * d.L + i0, delta.data() + b * d.L + i0, i0, rows, j0, n,
                               d.E, scale, causal, P.data(), dS.data());
                // dv_j += Pᵀ dout_i,  dk_j += scale · dSᵀ q_i   [n, E]
                sgemm_fast(true, false, n, d.E, rows, 1.0f, P.data(), kBc, dOi, d.E, 1.0f, dVj, d.E);
                sgemm_fast(true, false, n, d.E, rows, scale, dS.data(), kBc, Qi, d.E, 1.0f, dKj, d.E);
            }
        }
        // Pass 2: dq for one (b, query block), summed over the key tiles it sees.
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < d.B * nqb; ++t) {
            const int64_t b = t / nqb, i0 = (t % nqb) * kBr, rows = std::min(kBr, d.L - i0);
            const int64_t kend = causal ? std::min(d.S, i0 + rows) : d.S;
            const float* Qi = Q + (b * d.L + i0) * d.E;
            const float* dOi = dO + (b * d.L + i0) * d.E;
            float* dQi = dQ + (b * d.L + i0) * d.E;
            std::fill(dQi, dQi + rows * d.E, 0.0f);
            for (int64_t j0 = 0; j0 < kend; j0 += kBc) {
                const int64_t n = std::min(kBc, kend - j0);
                const float* Kj = K + (b * d.S + j0) * d.E;
                recompute_tile(Qi, Kj, V + (b * d.S + j0) * d.E, dOi, LSE + b * d.L + i0,
                               delta.data() + b * d.L + i0, i0, rows, j0, n, d.E, scale, causal, P.data(),
                               dS.data());
                // dq_i += scale · dS k_j   [rows, E]
                sgemm_fast(false, false, rows, d.E, n, scale, dS.data(), kBc, Kj, d.E, 1.0f, dQi, d.E);
            }
        }
    }
}

// f32 view of a tensor: its own data for f32, a widened copy for f16/bf16.
struct F32In {
    std::vector<float> copy;
    const float* ptr = nullptr;
};

template <class T>
F32In widen(const Tensor& x) {
    F32In w;
    if constexpr (std::is_same_v<T, float>) {
        w.ptr = x.data<float>();
    } else {
        const T* p = x.data<T>();
        w.copy.resize(x.numel());
        for (int64_t i = 0; i < x.numel(); ++i) w.copy[i] = float(p[i]);
        w.ptr = w.copy.data();
    }
    return w;
}

// f32 destination for an output tensor: its memory for f32, a scratch buffer rounded into it by finish().
template <class T>
struct F32Out {
    const Tensor& t;
    std::vector<float> buf;
    float* ptr;
    explicit F32Out(const Tensor& x) : t(x) {
        if constexpr (std::is_same_v<T, float>) {
            ptr = x.data<float>();
        } else {
            buf.resize(x.numel());
            ptr = buf.data();
        }
    }
    void finish() {
        if constexpr (!std::is_same_v<T, float>) {
            T* p = t.template data<T>();
            for (int64_t i = 0; i < t.numel(); ++i) p[i] = T(buf[i]);
        }
    }
};

Dims check_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
    CXR_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && k.sizes() == v.sizes() && q.size(0) == k.size(0) &&
                  q.size(2) == k.size(2) && k.size(1) >= 1,
              op, ": expected q [B, L, E], k and v [B, S, E] with S >= 1, got q ", shape_str(q.sizes()), ", k ",
              shape_str(k.sizes()), ", v ", shape_str(v.sizes()));
    CXR_CHECK(q.is_contiguous() && k.is_contiguous() && v.is_contiguous(), op, ": q, k, v must be contiguous");
    return Dims{q.size(0), q.size(1), k.size(1), q.size(2)};
}

template <class T>
void forward_typed(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool is_causal, const Tensor& out,
                   const Tensor& lse, Dims d) {
    const F32In Q = widen<T>(q), K = widen<T>(k), V = widen<T>(v);
    F32Out<T> O(out);
    forward_f32(Q.ptr, K.ptr, V.ptr, O.ptr, lse.data<float>(), d, float(scale), is_causal);
    O.finish();
}

template <class T>
void backward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                    const Tensor& lse, double scale, bool is_causal, const Tensor& dq, const Tensor& dk,
                    const Tensor& dv, Dims d) {
    const F32In Q = widen<T>(q), K = widen<T>(k), V = widen<T>(v), O = widen<T>(out), dO = widen<T>(dout);
    F32Out<T> dQ(dq), dK(dk), dV(dv);
    backward_f32(Q.ptr, K.ptr, V.ptr, O.ptr, dO.ptr, lse.data<float>(), dQ.ptr, dK.ptr, dV.ptr, d, float(scale),
                 is_causal);
    dQ.finish();
    dK.finish();
    dV.finish();
}

void attention_forward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool is_causal,
                              const Tensor& out, const Tensor& lse) {
    const char* op = "attention_forward (cpu)";
    const Dims d = check_dims(op, q, k, v);
    CXR_CHECK(out.sizes() == q.sizes() && out.dtype() == q.dtype() && out.is_contiguous(), op,
              ": out must be contiguous ", shape_str(q.sizes()), " ", dtype_name(q.dtype()));
    CXR_CHECK(lse.dtype() == DType::f32 && lse.numel() == d.B * d.L && lse.is_contiguous(), op,
              ": lse must be contiguous f32 [B, L]");
    switch (q.dtype()) {
        case DType::f32: forward_typed<float>(q, k, v, scale, is_causal, out, lse, d); break;
        case DType::f16: forward_typed<Half>(q, k, v, scale, is_causal, out, lse, d); break;
        case DType::bf16: forward_typed<BFloat16>(q, k, v, scale, is_causal, out, lse, d); break;
        default: CXR_FAIL(op, ": dtype ", dtype_name(q.dtype()), " not supported (f32, f16, bf16)");
    }
}

void attention_backward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                               const Tensor& dout, const Tensor& lse, double scale, bool is_causal, const Tensor& dq,
                               const Tensor& dk, const Tensor& dv) {
    const char* op = "attention_backward (cpu)";
    const Dims d = check_dims(op, q, k, v);
    for (const Tensor* t : {&out, &dout, &dq})
        CXR_CHECK(t->sizes() == q.sizes() && t->dtype() == q.dtype() && t->is_contiguous(), op,
                  ": out, dout, dq must be contiguous ", shape_str(q.sizes()), " ", dtype_name(q.dtype()));
    for (const Tensor* t : {&dk, &dv})
        CXR_CHECK(t->sizes() == k.sizes() && t->dtype() == k.dtype() && t->is_contiguous(), op,
                  ": dk, dv must be contiguous ", shape_str(k.sizes()), " ", dtype_name(k.dtype()));
    CXR_CHECK(lse.dtype() == DType::f32 && lse.numel() == d.B * d.L && lse.is_contiguous(), op,
              ": lse must be contiguous f32 [B, L]");
    switch (q.dtype()) {
        case DType::f32: backward_typed<float>(q, k, v, out, dout, lse, scale, is_causal, dq, dk, dv, d); break;
        case DType::f16: backward_typed<Half>(q, k, v, out, dout, lse, scale, is_causal, dq, dk, dv, d); break;
        case DType::bf16:
            backward_typed<BFloat16>(q, k, v, out, dout, lse, scale, is_causal, dq, dk, dv, d);
            break;
        default: CXR_FAIL(op, ": dtype ", dtype_name(q.dtype()), " not supported (f32, f16, bf16)");
    }
}

}  // namespace

void register_attention_kernels(KernelRegistry& r) {
    register_kernel<AttentionForwardKernel>(r, "attention_forward", DeviceType::CPU, attention_forward_kernel);
    register_kernel<AttentionBackwardKernel>(r, "attention_backward", DeviceType::CPU, attention_backward_kernel);
}

}  // namespace cxr::tensor::cpu
