// Philox 4x32-10 counter-based random numbers and the cxr random STREAM SPEC, written once as host+device code
// so that the CPU and the CUDA backend produce the same words from the same (seed, offset).
//
// Algorithm: Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11 (the Philox4x32
// family of Random123). State: a 128-bit counter (4 x u32) and a 64-bit key (2 x u32). One round:
//     (hi0, lo0) = 0xD2511F53 * ctr[0]       (full 64-bit product, high and low 32-bit halves)
//     (hi1, lo1) = 0xCD9E8D57 * ctr[2]
//     ctr = { hi1 ^ ctr[1] ^ key[0],  lo1,  hi0 ^ ctr[3] ^ key[1],  lo0 }
// Ten rounds; between consecutive rounds the key is bumped by the Weyl constants
//     key[0] += 0x9E3779B9, key[1] += 0xBB67AE85   (mod 2^32)
// (so round r, r = 0..9, uses key + r * Weyl). The output is the counter after round 10.
//
// ============================================ STREAM SPEC ============================================
// A (seed: u64, offset: u64) pair names a position in an infinite stream of 32-bit words. Word n of the
// stream that starts at `offset` is the word at ABSOLUTE index i = offset + n, defined as
//     c    = i / 4                                  (u64, integer division)
//     lane = i % 4
//     ctr  = { (u32)c, (u32)(c >> 32), 0, 0 }
//     key  = { (u32)seed, (u32)(seed >> 32) }
//     word(seed, i) = philox4x32_10(ctr, key)[lane]
// (philox_u32 below). Every draw below is a pure function of (seed, offset, k), k = 0..N-1 the index of the
// value within the draw, so any element can be computed independently (one GPU thread per element or per
// Philox block) and a draw can be split: values [0, m) at `offset` followed by values [m, N) at
// `offset + words(m)` equal the single draw of N values whenever words(m) is consumed exactly as below
// (for the pairwise normal draws this needs m even).
//
// Conversions of words to values (u32 w; W(j) = word(seed, offset + j)):
//   uniform f32, [0, 1):  u = (w >> 8) * 2^-24                          value k uses W(k)
//   uniform f64, [0, 1):  x = (W(2k+1) << 32) | W(2k)  (hi word second),
//                         u = (x >> 11) * 2^-53                          value k uses W(2k), W(2k+1)
//   uniform on [lo, hi):  fma(u, hi - lo, lo), rounded once, in the value's precision (f32 or f64). Rounding can
//                         give exactly hi in rare cases when hi - lo is not a power of two.
//   normal f32 (Box-Muller, in float):
//                         pair p = k / 2 uses w1 = W(2p), w2 = W(2p+1);
//                         u1 = ((w1 >> 8) + 1) * 2^-24  in (0, 1],  u2 = (w2 >> 8) * 2^-24  in [0, 1)
//                         r = sqrt(-2 ln u1), t = 2*pi * u2
//                         value k = r * cos(t) for even k, r * sin(t) for odd k
//   normal f64 (Box-Muller, in double):
//                         pair p = k / 2 uses W(4p) .. W(4p+3);
//                         x1 = (W(4p+1) << 32) | W(4p),  u1 = ((x1 >> 11) + 1) * 2^-53  in (0, 1]
//                         x2 = (W(4p+3) << 32) | W(4p+2), u2 = (x2 >> 11) * 2^-53     in [0, 1)
//                         value k = r * cos(t) (even k) or r * sin(t) (odd k), r, t as above in double
//   normal with mean m, std s: m + s * z, computed as fma(z, s, m) in the value's precision.
//   randint i64 in [low, high), range R = high - low (as u64, R >= 1):
//                         R <= 2^32: value k = low + (W(k) mod R)
//                         R >  2^32: value k = low + (((W(2k+1) << 32) | W(2k)) mod R)
//                         (plain modulo: an outcome is favoured by at most one count in 2^32 (resp. 2^64)
//                         draws; the relative bias is below R / 2^32 (resp. R / 2^64). Use ranges much smaller
//                         than 2^32 when the bias matters.)
//   bernoulli(p):         value k = 1 if uniform_f32(W(k)) < p (p as float) else 0.
//
// Words consumed by a draw of N values (the *_words functions below; a Generator then rounds up to 4):
//   uniform f32: N     uniform f64: 2N     normal f32: 2*ceil(N/2)     normal f64: 4*ceil(N/2)
//   randint: N if R <= 2^32 else 2N         bernoulli: N
//
// CPU/GPU agreement: the words, the uniforms, randint and bernoulli are bit-identical (integer arithmetic and
// correctly rounded float operations; the explicit fma prevents compiler contraction from changing results).
// Normals use log/sqrt/sin/cos of the platform math library; CUDA's sqrt is correctly rounded but its
// log/sin/cos can differ from glibc's by an ulp or two, so normals agree to a few ulp, not always bitwise.
// CUDA code using this header must not be compiled with --use_fast_math.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/macros.h"

namespace cxr::tensor {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kPhiloxRounds = 10;

// One Philox4x32 round on x with round key k (see the header comment).
CXR_HD_INLINE void philox4x32_round(uint32_t x[4], uint32_t k0, uint32_t k1) {
    const uint64_t p0 = (uint64_t)kPhiloxM0 * (uint64_t)x[0];
    const uint64_t p1 = (uint64_t)kPhiloxM1 * (uint64_t)x[2];
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    const uint32_t y0 = hi1 ^ x[1] ^ k0;
    const uint32_t y2 = hi0 ^ x[3] ^ k1;
    x[0] = y0;
    x[1] = lo1;
    x[2] = y2;
    x[3] = lo0;
}

// Philox4x32-10: out = the 4 words for counter ctr under key. out may alias ctr.
CXR_HD_INLINE void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < kPhiloxRounds; ++r) {
        if (r > 0) {
            k0 += kPhiloxW0;
            k1 += kPhiloxW1;
        }
        philox4x32_round(x, k0, k1);
    }
    out[0] = x[0];
    out[1] = x[1];
    out[2] = x[2];
    out[3] = x[3];
}

// The 4 words of stream block c (absolute word indices 4c .. 4c+3) for seed.
CXR_HD_INLINE void philox_block(uint64_t seed, uint64_t c, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0u, 0u};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    philox4x32_10(ctr, key, out);
}

// The word at absolute stream index `index` (STREAM SPEC). Computes a whole block; loops that need many
// consecutive words should call philox_block once per 4 words.
CXR_HD_INLINE uint32_t philox_u32(uint64_t seed, uint64_t index) {
    uint32_t out[4];
    philox_block(seed, index >> 2, out);
    return out[index & 3u];
}

// ---- word -> value conversions ----

// (u >> 8) * 2^-24: 2^24 equally spaced floats in [0, 1), each exactly representable.
CXR_HD_INLINE float uniform_f32_from_u32(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

// ((hi << 32 | lo) >> 11) * 2^-53: 2^53 equally spaced doubles in [0, 1).
CXR_HD_INLINE double uniform_f64_from_u32x2(uint32_t lo, uint32_t hi) {
    const uint64_t x = ((uint64_t)hi << 32) | (uint64_t)lo;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

// fma(u, hi - lo, lo): a [0, 1) uniform mapped to [lo, hi).
CXR_HD_INLINE float uniform_f32_in(float u, float lo, float hi) { return fmaf(u, hi - lo, lo); }
CXR_HD_INLINE double uniform_f64_in(double u, double lo, double hi) { return fma(u, hi - lo, lo); }

// Box-Muller in float from the pair's two words; which = 0 gives the cosine (even k), 1 the sine (odd k).
CXR_HD_INLINE float normal_f32_from_u32x2(uint32_t w1, uint32_t w2, int which) {
    const float u1 = (float)((w1 >> 8) + 1u) * (1.0f / 16777216.0f);  // (0, 1]
    const float u2 = (float)(w2 >> 8) * (1.0f / 16777216.0f);         // [0, 1)
    const float r = sqrtf(-2.0f * logf(u1));
    const float t = 6.28318530717958647692f * u2;
    return which == 0 ? r * cosf(t) : r * sinf(t);
}

// Box-Muller in double from the pair's four words w[0..3] (W(4p) .. W(4p+3)); which as above.
CXR_HD_INLINE double normal_f64_from_u32x4(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, int which) {
    const uint64_t x1 = ((uint64_t)w1 << 32) | (uint64_t)w0;
    const uint64_t x2 = ((uint64_t)w3 << 32) | (uint64_t)w2;
    const double u1 = (double)((x1 >> 11) + 1u) * (1.0 / 9007199254740992.0);  // (0, 1]
    const double u2 = (double)(x2 >> 11) * (1.0 / 9007199254740992.0);         // [0, 1)
    const double r = sqrt(-2.0 * log(u1));
    const double t = 6.28318530717958647692 * u2;
    return which == 0 ? r * cos(t) : r * sin(t);
}

// low + (x mod range) for range = high - low >= 1 given as u64; x is one word (range <= 2^32) or two.
CXR_HD_INLINE int64_t randint_from_u64(uint64_t x, int64_t low, uint64_t range) {
    return (int64_t)((uint64_t)low + x % range);
}

CXR_HD_INLINE uint8_t bernoulli_from_u32(uint32_t w, float p) { return uniform_f32_from_u32(w) < p ? 1 : 0; }

// ---- stream words consumed by a draw of n values (STREAM SPEC) ----

CXR_HD_INLINE uint64_t uniform_f32_words(uint64_t n) { return n; }
CXR_HD_INLINE uint64_t uniform_f64_words(uint64_t n) { return 2 * n; }
CXR_HD_INLINE uint64_t normal_f32_words(uint64_t n) { return 2 * ((n + 1) / 2); }
CXR_HD_INLINE uint64_t normal_f64_words(uint64_t n) { return 4 * ((n + 1) / 2); }
CXR_HD_INLINE uint64_t bernoulli_words(uint64_t n) { return n; }
// true when randint over [low, high) uses two words per value (range > 2^32).
CXR_HD_INLINE bool randint_uses_two_words(int64_t low, int64_t high) {
    return (uint64_t)high - (uint64_t)low > 0x100000000ull;
}
CXR_HD_INLINE uint64_t randint_words(uint64_t n, int64_t low, int64_t high) {
    return randint_uses_two_words(low, high) ? 2 * n : n;
}

}  // namespace cxr::tensor
