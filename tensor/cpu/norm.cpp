// CPU reference kernels for the normalisation family (formulas in tensor/ops/norm.h). Two layouts:
//   group statistics  — x [N, C, S], one (μ, rstd) per (sample n, group g) over its (C/G)·S elements; layer_norm
//                       uses it as [M, D, 1] with G = 1 (then "channel" = normalised element);
//   channel statistics — x [N, C, S], one (μ, rstd) per channel c over its N·S elements (batch_norm).
// Statistics are two-pass (mean, then centred squares) and every sum accumulates in double. Independent groups
// or channels run in parallel (OpenMP) when the tensor is large; each sum stays in one thread (deterministic).
#include <cmath>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/norm.h"

namespace cxr::tensor::cpu {

namespace {

constexpr int64_t kParallelWork = 1 << 15;  // elements below which a single thread is faster

// Optional per-channel parameter: value at c, or `fallback` when undefined.
template <class T>
struct Param {
    const T* p;
    double fallback;
    explicit Param(const Tensor& t, double fb) : p(t.defined() ? t.data<T>() : nullptr), fallback(fb) {}
    double operator[](int64_t c) const { return p ? (double)p[c] : fallback; }
};

template <class T>
T* data_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

// ---- group statistics ----

template <class T>
void group_norm_forward(const Tensor& xt, const Tensor& wt, const Tensor& bt, int64_t G, double eps,
                        const Tensor& yt, const Tensor& mt, const Tensor& rt) {
    const int64_t N = xt.size(0), C = xt.size(1), S = xt.size(2), K = C / G;
    const int64_t M = K * S;  // elements per group
    const T* x = xt.data<T>();
    T* y = yt.data<T>();
    T* mean_out = mt.data<T>();
    T* rstd_out = rt.data<T>();
    const Param<T> w(wt, 1.0), b(bt, 0.0);
#pragma omp parallel for if (N * C * S > kParallelWork)
    for (int64_t ng = 0; ng < N * G; ++ng) {
        const int64_t g = ng % G;
        const T* xg = x + ng * M;  // [K, S] block of this (sample, group)
        T* yg = y + ng * M;
        double sum = 0.0;
        for (int64_t i = 0; i < M; ++i) sum += (double)xg[i];
        const double mu = M > 0 ? sum / (double)M : 0.0;
        double sq = 0.0;
        for (int64_t i = 0; i < M; ++i) {
            const double d = (double)xg[i] - mu;
            sq += d * d;
        }
        const double var = M > 0 ? sq / (double)M : 0.0;
        const double rstd = 1.0 / std::sqrt(var + eps);
        mean_out[ng] = T(mu);
        rstd_out[ng] = T(rstd);
        for (int64_t k = 0; k < K; ++k) {
            const int64_t c = g * K + k;
            const double scale = rstd * w[c];
            const double shift = b[c] - mu * scale;
            for (int64_t s = 0; s < S; ++s) yg[k * S + s] = T((double)xg[k * S + s] * scale + shift);
        }
    }
}

template <class T>
void group_norm_backward(const Tensor& dyt, const Tensor& xt, const Tensor& mt, const Tensor& rt, const Tensor& wt,
                         int64_t G, const Tensor& dxt, const Tensor& dwt, const Tensor& dbt) {
    const int64_t N = xt.size(0), C = xt.size(1), S = xt.size(2), K = C / G;
    const int64_t M = K * S;
    const T* dy = dyt.data<T>();
    const T* x = xt.data<T>();
    const T* mean = mt.data<T>();
    const T* rstd = rt.data<T>();
    const Param<T> w(wt, 1.0);
    if (T* dx = data_or_null<T>(dxt)) {
#pragma omp parallel for if (N * C * S > kParallelWork)
        for (int64_t ng = 0; ng < N * G; ++ng) {
            const int64_t g = ng % G;
            const double mu = (double)mean[ng], r = (double)rstd[ng];
            const int64_t base = ng * M;
            double sum_g = 0.0, sum_gx = 0.0;  // Σ ĝ, Σ ĝ·x̂ with ĝ = dy·γ
            for (int64_t k = 0; k < K; ++k) {
                const double gamma = w[g * K + k];
                for (int64_t s = 0; s < S; ++s) {
                    const int64_t i = base + k * S + s;
                    const double gh = (double)dy[i] * gamma;
                    sum_g += gh;
                    sum_gx += gh * ((double)x[i] - mu) * r;
                }
            }
            const double mean_g = M > 0 ? sum_g / (double)M : 0.0;
            const double mean_gx = M > 0 ? sum_gx / (double)M : 0.0;
            for (int64_t k = 0; k < K; ++k) {
                const double gamma = w[g * K + k];
                for (int64_t s = 0; s < S; ++s) {
                    const int64_t i = base + k * S + s;
                    const double xhat = ((double)x[i] - mu) * r;
                    dx[i] = T(r * ((double)dy[i] * gamma - mean_g - xhat * mean_gx));
                }
            }
        }
    }
    T* dw = data_or_null<T>(dwt);
    T* db = data_or_null<T>(dbt);
    if (!dw && !db) return;
#pragma omp parallel for if (N * C * S > kParallelWork)
    for (int64_t c = 0; c < C; ++c) {
        const int64_t g = c / K;
        double acc_w = 0.0, acc_b = 0.0;
        for (int64_t n = 0; n < N; ++n) {
            const double mu = (double)mean[n * G + g], r = (double)rstd[n * G + g];
            const int64_t base = (n * C + c) * S;
            for (int64_t s = 0; s < S; ++s) {
                const double d = (double)dy[base + s];
                acc_w += d * ((double)x[base + s] - mu) * r;
                acc_b += d;
            }
        }
        if (dw) dw[c] = T(acc_w);
        if (db) db[c] = T(acc_b);
    }
}

// ---- channel statistics ----

template <class T>
void batch_norm_forward(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Tensor& rmt, const Tensor& rvt,
                        bool training, double momentum, double eps, const Tensor& yt, const Tensor& smt,
                        const Tensor& srt) {
    const int64_t N = xt.size(0), C = xt.size(1), S = xt.size(2);
    const int64_t M = N * S;  // elements per channel
    const T* x = xt.data<T>();
    T* y = yt.data<T>();
    T* save_mean = smt.data<T>();
    T* save_rstd = srt.data<T>();
    T* running_mean = data_or_null<T>(rmt);
    T* running_var = data_or_null<T>(rvt);
    const Param<T> w(wt, 1.0), b(bt, 0.0);
#pragma omp parallel for if (N * C * S > kParallelWork)
    for (int64_t c = 0; c < C; ++c) {
        double mu, var;
        if (training) {
            double sum = 0.0;
            for (int64_t n = 0; n < N; ++n)
                for (int64_t s = 0; s < S; ++s) sum += (double)x[(n * C + c) * S + s];
            mu = sum / (double)M;
            double sq = 0.0;
            for (int64_t n = 0; n < N; ++n)
                for (int64_t s = 0; s < S; ++s) {
                    const double d = (double)x[(n * C + c) * S + s] - mu;
                    sq += d * d;
                }
            var = sq / (double)M;
            if (running_mean) running_mean[c] = T((1.0 - momentum) * (double)running_mean[c] + momentum * mu);
            if (running_var) {
                const double unbiased = sq / (double)(M - 1);
                running_var[c] = T((1.0 - momentum) * (double)running_var[c] + momentum * unbiased);
            }
        } else {
            mu = (double)running_mean[c];
            var = (double)running_var[c];
        }
        const double rstd = 1.0 / std::sqrt(var + eps);
        save_mean[c] = T(mu);
        save_rstd[c] = T(rstd);
        const double scale = rstd * w[c];
        const double shift = b[c] - mu * scale;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t s = 0; s < S; ++s) {
                const int64_t i = (n * C + c) * S + s;
                y[i] = T((double)x[i] * scale + shift);
            }
    }
}

template <class T>
void batch_norm_backward(const Tensor& dyt, const Tensor& xt, const Tensor& smt, const Tensor& srt, const Tensor& wt,
                         bool training, const Tensor& dxt, const Tensor& dwt, const Tensor& dbt) {
    const int64_t N = xt.size(0), C = xt.size(1), S = xt.size(2);
    const int64_t M = N * S;
    const T* dy = dyt.data<T>();
    const T* x = xt.data<T>();
    const T* save_mean = smt.data<T>();
    const T* save_rstd = srt.data<T>();
    T* dx = data_or_null<T>(dxt);
    T* dw = data_or_null<T>(dwt);
    T* db = data_or_null<T>(dbt);
    const Param<T> w(wt, 1.0);
#pragma omp parallel for if (N * C * S > kParallelWork)
    for (int64_t c = 0; c < C; ++c) {
        const double mu = (double)save_mean[c], r = (double)save_rstd[c], gamma = w[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t s = 0; s < S; ++s) {
                const int64_t i = (n * C + c) * S + s;
                const double d = (double)dy[i];
                sum_dy += d;
                sum_dy_xhat += d * ((double)x[i] - mu) * r;
            }
        if (dw) dw[c] = T(sum_dy_xhat);
        if (db) db[c] = T(sum_dy);
        if (!dx) continue;
        // training: dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = γ·rstd·dy
        const double mean_dy = training ? sum_dy / (double)M : 0.0;
        const double mean_dy_xhat = training ? sum_dy_xhat / (double)M : 0.0;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t s = 0; s < S; ++s) {
                const int64_t i = (n * C + c) * S + s;
                const double xhat = ((double)x[i] - mu) * r;
                dx[i] = T(gamma * r * ((double)dy[i] - mean_dy - xhat * mean_dy_xhat));
            }
    }
}

// f32 and f64 only: the op layer computes f16/bf16 in f32.
#define CXR_NORM_DISPATCH(DT, NAME, CALL)                                                              \
    do {                                                                                              \
        if ((DT) == DType::f32) {                                                                     \
            using scalar_t = float;                                                                   \
            CALL;                                                                                     \
        } else if ((DT) == DType::f64) {                                                              \
            using scalar_t = double;                                                                  \
            CALL;                                                                                     \
        } else {                                                                                      \
            CXR_FAIL(NAME, ": the CPU kernel takes f32 or f64, got ", dtype_name(DT));                \
        }                                                                                             \
    } while (0)

void group_norm_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    CXR_NORM_DISPATCH(x.dtype(), "group_norm",
                      (group_norm_forward<scalar_t>(x, weight, bias, groups, eps, y, mean, rstd)));
}

void group_norm_backward_kernel(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                const Tensor& weight, int64_t groups, const Tensor& dx, const Tensor& dweight,
                                const Tensor& dbias) {
    CXR_NORM_DISPATCH(x.dtype(), "group_norm_backward",
                      (group_norm_backward<scalar_t>(dy, x, mean, rstd, weight, groups, dx, dweight, dbias)));
}

void batch_norm_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, const Tensor& y,
                       const Tensor& save_mean, const Tensor& save_rstd) {
    CXR_NORM_DISPATCH(x.dtype(), "batch_norm",
                      (batch_norm_forward<scalar_t>(x, weight, bias, running_mean, running_var, training, momentum,
                                                    eps, y, save_mean, save_rstd)));
}

void batch_norm_backward_kernel(const Tensor& dy, const Tensor& x, const Tensor& save_mean, const Tensor& save_rstd,
                                const Tensor& weight, bool training, const Tensor& dx, const Tensor& dweight,
                                const Tensor& dbias) {
    CXR_NORM_DISPATCH(x.dtype(), "batch_norm_backward",
                      (batch_norm_backward<scalar_t>(dy, x, save_mean, save_rstd, weight, training, dx, dweight,
                                                     dbias)));
}

#undef CXR_NORM_DISPATCH

}  // namespace

void register_norm_kernels(KernelRegistry& r) {
    register_kernel<GroupNormKernel>(r, "group_norm", DeviceType::CPU, group_norm_kernel);
    register_kernel<GroupNormBackwardKernel>(r, "group_norm_backward", DeviceType::CPU, group_norm_backward_kernel);
    register_kernel<BatchNormKernel>(r, "batch_norm", DeviceType::CPU, batch_norm_kernel);
    register_kernel<BatchNormBackwardKernel>(r, "batch_norm_backward", DeviceType::CPU, batch_norm_backward_kernel);
}

}  // namespace cxr::tensor::cpu
