// CPU 2-D convolution kernels: direct-loop references and im2col/col2im + GEMM fast paths, float and double.
// The math, shapes and the transposed-convolution mapping are written out in conv2d.h.
//
// im2col follows Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for Document
// Processing" (2006): unrolling the receptive fields into a matrix turns convolution into one GEMM per image
// and group. The col matrix is built for a chunk of output positions at a time ([K_col, chunk], chunk chosen so
// the buffer is at most kColBudget elements), which bounds memory for large images and, by keeping col in
// cache, is faster than one big buffer (measured on Zen 3: 2^20 elements beat 2^18 and 2^22).
#include "tensor/cpu/conv2d.h"

#include <algorithm>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cxr::tensor::cpu {

void Conv2dParams::validate() const {
    CXR_CHECK(N >= 1 && C_in >= 1 && H >= 1 && W >= 1 && C_out >= 1 && kH >= 1 && kW >= 1,
              "conv2d: sizes must be positive (N=", N, " C_in=", C_in, " H=", H, " W=", W, " C_out=", C_out,
              " kH=", kH, " kW=", kW, ")");
    CXR_CHECK(stride_h >= 1 && stride_w >= 1 && dil_h >= 1 && dil_w >= 1 && pad_h >= 0 && pad_w >= 0,
              "conv2d: stride and dilation must be >= 1 and padding >= 0 (stride ", stride_h, "x", stride_w,
              ", dilation ", dil_h, "x", dil_w, ", padding ", pad_h, "x", pad_w, ")");
    CXR_CHECK(groups >= 1 && C_in % groups == 0 && C_out % groups == 0, "conv2d: groups=", groups,
              " must divide C_in=", C_in, " and C_out=", C_out);
    CXR_CHECK(H + 2 * pad_h - dil_h * (kH - 1) - 1 >= 0 && W + 2 * pad_w - dil_w * (kW - 1) - 1 >= 0,
              "conv2d: kernel ", kH, "x", kW, " (dilation ", dil_h, "x", dil_w, ") larger than padded input ",
              H + 2 * pad_h, "x", W + 2 * pad_w);
}

double Conv2dParams::flops() const {
    return 2.0 * double(N) * double(C_out) * double(H_out()) * double(W_out()) * double(C_in / groups) *
           double(kH) * double(kW);
}

Conv2dParams ConvTranspose2dShape::adjoint() const {
    CXR_CHECK(output_padding_h >= 0 && output_padding_w >= 0 && output_padding_h < stride_h &&
                  output_padding_w < stride_w,
              "conv_transpose2d: output_padding (", output_padding_h, ", ", output_padding_w,
              ") must be >= 0 and smaller than the stride (", stride_h, ", ", stride_w, ")");
    Conv2dParams p;
    p.N = N;
    p.C_in = C_out;
    p.H = H_out();
    p.W = W_out();
    p.C_out = C_in;
    p.kH = kH;
    p.kW = kW;
    p.stride_h = stride_h;
    p.stride_w = stride_w;
    p.pad_h = pad_h;
    p.pad_w = pad_w;
    p.dil_h = dil_h;
    p.dil_w = dil_w;
    p.groups = groups;
    CXR_CHECK(H_in >= 1 && W_in >= 1 && p.H >= 1 && p.W >= 1, "conv_transpose2d: empty input ", H_in, "x", W_in,
              " or output ", p.H, "x", p.W);
    p.validate();
    CXR_CHECK(p.H_out() == H_in && p.W_out() == W_in, "conv_transpose2d: internal shape mismatch");
    return p;
}

// ------------------------------------------------------------------------------------------------------------
// References
// ------------------------------------------------------------------------------------------------------------

template <class T>
void conv2d_forward_reference(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
    p.validate();
    const int64_t Ho = p.H_out(), Wo = p.W_out();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    for (int64_t n = 0; n < p.N; ++n)
        for (int64_t o = 0; o < p.C_out; ++o) {
            const int64_t g = o / Og;
            for (int64_t oh = 0; oh < Ho; ++oh)
                for (int64_t ow = 0; ow < Wo; ++ow) {
                    double acc = bias ? double(bias[o]) : 0.0;
                    for (int64_t ci = 0; ci < Cg; ++ci) {
                        const T* xc = x + (n * p.C_in + g * Cg + ci) * p.H * p.W;
                        const T* wc = w + (o * Cg + ci) * p.kH * p.kW;
                        for (int64_t kh = 0; kh < p.kH; ++kh) {
                            const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                            if (ih < 0 || ih >= p.H) continue;
                            for (int64_t kw = 0; kw < p.kW; ++kw) {
                                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                                if (iw < 0 || iw >= p.W) continue;
                                acc += double(xc[ih * p.W + iw]) * double(wc[kh * p.kW + kw]);
                            }
                        }
                    }
                    y[((n * p.C_out + o) * Ho + oh) * Wo + ow] = T(acc);
                }
        }
}

template <class T>
void conv2d_backward_input_reference(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x) {
    p.validate();
    const int64_t Ho = p.H_out(), Wo = p.W_out();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    // Gather form: input (ih, iw) is read by output (oh, ow) through tap (kh, kw) iff
    // ih = oh*s - pad + kh*d, i.e. (ih + pad - kh*d) is a non-negative multiple of s with quotient < Ho.
    for (int64_t n = 0; n < p.N; ++n)
        for (int64_t c = 0; c < p.C_in; ++c) {
            const int64_t g = c / Cg, ci = c % Cg;
            for (int64_t ih = 0; ih < p.H; ++ih)
                for (int64_t iw = 0; iw < p.W; ++iw) {
                    double acc = 0.0;
                    for (int64_t kh = 0; kh < p.kH; ++kh) {
                        const int64_t th = ih + p.pad_h - kh * p.dil_h;
                        if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= Ho) continue;
                        const int64_t oh = th / p.stride_h;
                        for (int64_t kw = 0; kw < p.kW; ++kw) {
                            const int64_t tw = iw + p.pad_w - kw * p.dil_w;
                            if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= Wo) continue;
                            const int64_t ow = tw / p.stride_w;
                            for (int64_t oo = 0; oo < Og; ++oo) {
                                const int64_t o = g * Og + oo;
                                acc += double(grad_y[((n * p.C_out + o) * Ho + oh) * Wo + ow]) *
                                       double(w[((o * Cg + ci) * p.kH + kh) * p.kW + kw]);
                            }
                        }
                    }
                    grad_x[((n * p.C_in + c) * p.H + ih) * p.W + iw] = T(acc);
                }
        }
}

template <class T>
void conv2d_backward_weight_reference(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w) {
    p.validate();
    const int64_t Ho = p.H_out(), Wo = p.W_out();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    for (int64_t o = 0; o < p.C_out; ++o) {
        const int64_t g = o / Og;
        for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t kh = 0; kh < p.kH; ++kh)
                for (int64_t kw = 0; kw < p.kW; ++kw) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < p.N; ++n) {
                        const T* xc = x + (n * p.C_in + g * Cg + ci) * p.H * p.W;
                        const T* gy = grad_y + (n * p.C_out + o) * Ho * Wo;
                        for (int64_t oh = 0; oh < Ho; ++oh) {
                            const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                            if (ih < 0 || ih >= p.H) continue;
                            for (int64_t ow = 0; ow < Wo; ++ow) {
                                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                                if (iw < 0 || iw >= p.W) continue;
                                acc += double(gy[oh * Wo + ow]) * double(xc[ih * p.W + iw]);
                            }
                        }
                    }
                    grad_w[((o * Cg + ci) * p.kH + kh) * p.kW + kw] = T(acc);
                }
    }
}

template <class T>
void conv2d_backward_bias(const Conv2dParams& p, const T* grad_y, T* grad_bias) {
    p.validate();
    const int64_t hw = p.H_out() * p.W_out();
    for (int64_t o = 0; o < p.C_out; ++o) {
        double acc = 0.0;
        for (int64_t n = 0; n < p.N; ++n) {
            const T* gy = grad_y + (n * p.C_out + o) * hw;
            for (int64_t i = 0; i < hw; ++i) acc += double(gy[i]);
        }
        grad_bias[o] = T(acc);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Fast path
// ------------------------------------------------------------------------------------------------------------

namespace {

constexpr int64_t kColBudget = int64_t(1) << 20;  // elements of one col buffer (4 MiB in float; 2^18 and 2^22 measured slower)

bool in_parallel() {
#ifdef _OPENMP
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

int max_threads() {
#ifdef _OPENMP
    return in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

bool is_pointwise(const Conv2dParams& p) {
    return p.kH == 1 && p.kW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
}

// Output-position columns per chunk: all of them if the col buffer fits the budget, else a multiple of 64.
int64_t column_chunk(int64_t k_col, int64_t hw_out) {
    const int64_t fit = kColBudget / std::max<int64_t>(1, k_col);
    if (fit >= hw_out) return hw_out;
    return std::max<int64_t>(64, (fit / 64) * 64);
}

// Range of ow in [0, Wo) with 0 <= ow*s + off < W, as [lo, hi).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
    // ow*s + off >= 0  <=>  ow >= ceil(-off / s)
    lo = off >= 0 ? 0 : (-off + s - 1) / s;
    // ow*s + off <= W - 1  <=>  ow <= floor((W - 1 - off) / s)
    hi = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / s + 1;
    lo = std::min(lo, Wo);
    hi = std::min(std::max(hi, lo), Wo);
}

// col[r, j - j0] for r in [0, Cg*kH*kW), output positions j in [j0, j1); x_g points at the group's first channel
// [Cg, H, W]. Rows are split over threads unless already inside a parallel region.
template <class T>
void im2col(const Conv2dParams& p, const T* x_g, int64_t j0, int64_t j1, T* col) {
    const int64_t Cg = p.C_in / p.groups;
    const int64_t Wo = p.W_out();
    const int64_t rows = Cg * p.kH * p.kW;
    const int64_t ld = j1 - j0;
#pragma omp parallel for schedule(static) if (!in_parallel() && rows * ld >= 32768)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t ci = r / (p.kH * p.kW);
        const int64_t kh = (r / p.kW) % p.kH;
        const int64_t kw = r % p.kW;
        const T* xc = x_g + ci * p.H * p.W;
        T* dst = col + r * ld;
        const int64_t off_w = kw * p.dil_w - p.pad_w;
        int64_t lo, hi;
        valid_range(off_w, p.stride_w, p.W, Wo, lo, hi);
        int64_t j = j0;
        while (j < j1) {
            const int64_t oh = j / Wo;
            const int64_t ow0 = j % Wo;
            const int64_t ow1 = std::min(Wo, ow0 + (j1 - j));
            T* d = dst + (j - j0);  // d[ow - ow0] is the slot of (oh, ow)
            const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
            if (ih < 0 || ih >= p.H) {
                for (int64_t ow = ow0; ow < ow1; ++ow) d[ow - ow0] = T(0);
            } else {
                const T* src = xc + ih * p.W;  // x[ih, ow*s + off_w] = src[ow*s + off_w], valid for ow in [lo, hi)
                const int64_t a = std::max(ow0, lo), b = std::min(ow1, hi);
                for (int64_t ow = ow0; ow < std::min(a, ow1); ++ow) d[ow - ow0] = T(0);
                if (p.stride_w == 1) {
                    for (int64_t ow = a; ow < b; ++ow) d[ow - ow0] = src[ow + off_w];
                } else {
                    for (int64_t ow = a; ow < b; ++ow) d[ow - ow0] = src[ow * p.stride_w + off_w];
                }
                for (int64_t ow = std::max(b, ow0); ow < ow1; ++ow) d[ow - ow0] = T(0);
            }
            j += ow1 - ow0;
        }
    }
}

// grad_x_g[ci, ih, iw] += col[r, j - j0] over the same index map as im2col (scatter-add). Threads split the
// channels ci, so no two threads write the same element.
template <class T>
void col2im_add(const Conv2dParams& p, const T* col, int64_t j0, int64_t j1, T* grad_x_g) {
    const int64_t Cg = p.C_in / p.groups;
    const int64_t Wo = p.W_out();
    const int64_t ld = j1 - j0;
    const int64_t taps = p.kH * p.kW;
#pragma omp parallel for schedule(static) if (!in_parallel() && Cg >= 2 && Cg * taps * ld >= 32768)
    for (int64_t ci = 0; ci < Cg; ++ci) {
        T* gx = grad_x_g + ci * p.H * p.W;
        for (int64_t t = 0; t < taps; ++t) {
            const int64_t kh = t / p.kW, kw = t % p.kW;
            const T* src_row = col + (ci * taps + t) * ld;
            const int64_t off_w = kw * p.dil_w - p.pad_w;
            int64_t lo, hi;
            valid_range(off_w, p.stride_w, p.W, Wo, lo, hi);
            int64_t j = j0;
            while (j < j1) {
                const int64_t oh = j / Wo;
                const int64_t ow0 = j % Wo;
                const int64_t ow1 = std::min(Wo, ow0 + (j1 - j));
                const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                if (ih >= 0 && ih < p.H) {
                    const T* s = src_row + (j - j0);  // s[ow - ow0] belongs to (oh, ow)
                    T* dst = gx + ih * p.W;          // dst[ow*s + off_w], valid for ow in [lo, hi)
                    const int64_t a = std::max(ow0, lo), b = std::min(ow1, hi);
                    if (p.stride_w == 1) {
                        for (int64_t ow = a; ow < b; ++ow) dst[ow + off_w] += s[ow - ow0];
                    } else {
                        for (int64_t ow = a; ow < b; ++ow) dst[ow * p.stride_w + off_w] += s[ow - ow0];
                    }
                }
                j += ow1 - ow0;
            }
        }
    }
}

// Whether to run (image, group) pairs in parallel (each with a single-threaded GEMM) rather than one pair at a
// time with threaded im2col and GEMM: pays when there are enough pairs and each GEMM is small.
bool parallel_over_pairs(const Conv2dParams& p, int64_t pairs) {
    const int threads = max_threads();
    if (threads <= 1 || pairs < threads) return false;
    const double gemm_flops = p.flops() / double(p.N * p.groups);
    return gemm_flops < double(int64_t(1) << 25) || pairs >= 4 * int64_t(threads);
}

}  // namespace

template <class T>
void conv2d_forward_fast(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
    p.validate();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    const int64_t hw_out = p.H_out() * p.W_out();
    const int64_t k_col = Cg * p.kH * p.kW;
    const bool pointwise = is_pointwise(p);
    const int64_t chunk = pointwise ? hw_out : column_chunk(k_col, hw_out);
    const int64_t pairs = p.N * p.groups;
    const bool outer = parallel_over_pairs(p, pairs);

#pragma omp parallel if (outer)
    {
        std::vector<T> col(pointwise ? 0 : size_t(k_col * chunk));  // [k_col, chunk], one per thread
#pragma omp for schedule(dynamic, 1)
        for (int64_t pair = 0; pair < pairs; ++pair) {
            const int64_t n = pair / p.groups, g = pair % p.groups;
            const T* x_g = x + (n * p.C_in + g * Cg) * p.H * p.W;  // [Cg, H, W]
            const T* w_g = w + g * Og * k_col;                      // [Og, k_col]
            T* y_g = y + (n * p.C_out + g * Og) * hw_out;           // [Og, hw_out]
            for (int64_t j0 = 0; j0 < hw_out; j0 += chunk) {
                const int64_t nb = std::min(chunk, hw_out - j0);
                const T* b_mat = x_g + j0;  // pointwise: x_g itself is [Cg, hw_out]
                int64_t ldb = hw_out;
                if (!pointwise) {
                    im2col(p, x_g, j0, j0 + nb, col.data());
                    b_mat = col.data();
                    ldb = nb;
                }
                gemm<T>(false, false, Og, nb, k_col, T(1), w_g, k_col, b_mat, ldb, T(0), y_g + j0, hw_out);
            }
            if (bias) {
                for (int64_t oo = 0; oo < Og; ++oo) {
                    const T b = bias[g * Og + oo];
                    T* row = y_g + oo * hw_out;
                    for (int64_t i = 0; i < hw_out; ++i) row[i] += b;
                }
            }
        }
    }
}

template <class T>
void conv2d_backward_input_fast(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x) {
    p.validate();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    const int64_t hw_out = p.H_out() * p.W_out();
    const int64_t hw_in = p.H * p.W;
    const int64_t k_col = Cg * p.kH * p.kW;
    const bool pointwise = is_pointwise(p);
    const int64_t chunk = pointwise ? hw_out : column_chunk(k_col, hw_out);
    const int64_t pairs = p.N * p.groups;
    const bool outer = parallel_over_pairs(p, pairs);

#pragma omp parallel if (outer)
    {
        std::vector<T> col(pointwise ? 0 : size_t(k_col * chunk));
#pragma omp for schedule(dynamic, 1)
        for (int64_t pair = 0; pair < pairs; ++pair) {
            const int64_t n = pair / p.groups, g = pair % p.groups;
            const T* gy_g = grad_y + (n * p.C_out + g * Og) * hw_out;  // [Og, hw_out]
            const T* w_g = w + g * Og * k_col;                          // [Og, k_col]
            T* gx_g = grad_x + (n * p.C_in + g * Cg) * hw_in;           // [Cg, H, W]
            if (pointwise) {
                // grad_x_g [Cg, hw] = w_g^T [Cg, Og] x grad_y_g [Og, hw]
                gemm<T>(true, false, Cg, hw_out, Og, T(1), w_g, k_col, gy_g, hw_out, T(0), gx_g, hw_in);
                continue;
            }
            std::fill(gx_g, gx_g + Cg * hw_in, T(0));
            for (int64_t j0 = 0; j0 < hw_out; j0 += chunk) {
                const int64_t nb = std::min(chunk, hw_out - j0);
                // col [k_col, nb] = w_g^T [k_col, Og] x grad_y_g[:, j0:j0+nb]
                gemm<T>(true, false, k_col, nb, Og, T(1), w_g, k_col, gy_g + j0, hw_out, T(0), col.data(), nb);
                col2im_add(p, col.data(), j0, j0 + nb, gx_g);
            }
        }
    }
}

template <class T>
void conv2d_backward_weight_fast(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w) {
    p.validate();
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    const int64_t hw_out = p.H_out() * p.W_out();
    const int64_t k_col = Cg * p.kH * p.kW;
    const bool pointwise = is_pointwise(p);
    const int64_t chunk = pointwise ? hw_out : column_chunk(k_col, hw_out);
    // Each group owns its slice of grad_w, so groups can run in parallel; images are summed in order (beta = 1
    // after the first), which keeps the result independent of the thread count.
    const bool outer = parallel_over_pairs(p, p.groups);

#pragma omp parallel if (outer)
    {
        std::vector<T> col(pointwise ? 0 : size_t(k_col * chunk));
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < p.groups; ++g) {
            T* gw_g = grad_w + g * Og * k_col;  // [Og, k_col]
            bool first = true;
            for (int64_t n = 0; n < p.N; ++n) {
                const T* x_g = x + (n * p.C_in + g * Cg) * p.H * p.W;       // [Cg, H, W]
                const T* gy_g = grad_y + (n * p.C_out + g * Og) * hw_out;  // [Og, hw_out]
                for (int64_t j0 = 0; j0 < hw_out; j0 += chunk) {
                    const int64_t nb = std::min(chunk, hw_out - j0);
                    const T* col_mat = x_g + j0;
                    int64_t ldcol = hw_out;
                    if (!pointwise) {
                        im2col(p, x_g, j0, j0 + nb, col.data());
                        col_mat = col.data();
                        ldcol = nb;
                    }
                    // grad_w_g [Og, k_col] (+)= grad_y_g[:, j0:j0+nb] [Og, nb] x col^T [nb, k_col]
                    gemm<T>(false, true, Og, k_col, nb, T(1), gy_g + j0, hw_out, col_mat, ldcol,
                            first ? T(0) : T(1), gw_g, k_col);
                    first = false;
                }
            }
        }
    }
}

// ---- transposed convolution via the adjoint convolution p ----

template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
    conv2d_backward_input_fast(p, /*grad_y=*/x, w, /*grad_x=*/y);
    if (bias) {
        const int64_t hw = p.H * p.W;
        for (int64_t n = 0; n < p.N; ++n)
            for (int64_t c = 0; c < p.C_in; ++c) {
                T* row = y + (n * p.C_in + c) * hw;
                const T b = bias[c];
                for (int64_t i = 0; i < hw; ++i) row[i] += b;
            }
    }
}

template <class T>
void conv_transpose2d_backward_input(const Conv2dParams& p, const T* grad_y, const T* w, T* grad_x) {
    conv2d_forward_fast(p, /*x=*/grad_y, w, static_cast<const T*>(nullptr), /*y=*/grad_x);
}

template <class T>
void conv_transpose2d_backward_weight(const Conv2dParams& p, const T* x, const T* grad_y, T* grad_w) {
    conv2d_backward_weight_fast(p, /*x=*/grad_y, /*grad_y=*/x, grad_w);
}

template <class T>
void conv_transpose2d_backward_bias(const Conv2dParams& p, const T* grad_y, T* grad_bias) {
    p.validate();
    const int64_t hw = p.H * p.W;
    for (int64_t c = 0; c < p.C_in; ++c) {
        double acc = 0.0;
        for (int64_t n = 0; n < p.N; ++n) {
            const T* gy = grad_y + (n * p.C_in + c) * hw;
            for (int64_t i = 0; i < hw; ++i) acc += double(gy[i]);
        }
        grad_bias[c] = T(acc);
    }
}

#define CXR_CONV2D_INSTANTIATE(T)                                                                          \
    template void conv2d_forward_reference<T>(const Conv2dParams&, const T*, const T*, const T*, T*);     \
    template void conv2d_backward_input_reference<T>(const Conv2dParams&, const T*, const T*, T*);        \
    template void conv2d_backward_weight_reference<T>(const Conv2dParams&, const T*, const T*, T*);       \
    template void conv2d_backward_bias<T>(const Conv2dParams&, const T*, T*);                             \
    template void conv2d_forward_fast<T>(const Conv2dParams&, const T*, const T*, const T*, T*);          \
    template void conv2d_backward_input_fast<T>(const Conv2dParams&, const T*, const T*, T*);             \
    template void conv2d_backward_weight_fast<T>(const Conv2dParams&, const T*, const T*, T*);            \
    template void conv_transpose2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);     \
    template void conv_transpose2d_backward_input<T>(const Conv2dParams&, const T*, const T*, T*);        \
    template void conv_transpose2d_backward_weight<T>(const Conv2dParams&, const T*, const T*, T*);       \
    template void conv_transpose2d_backward_bias<T>(const Conv2dParams&, const T*, T*);

CXR_CONV2D_INSTANTIATE(float)
CXR_CONV2D_INSTANTIATE(double)
#undef CXR_CONV2D_INSTANTIATE

}  // namespace cxr::tensor::cpu
