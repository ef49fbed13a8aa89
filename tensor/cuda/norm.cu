// CUDA kernels for the normalisation family ("group_norm", "group_norm_backward", "batch_norm",
// "batch_norm_backward"; formulas in tensor/ops/norm.h), same semantics as the CPU reference
// (tensor/cpu/norm.cpp): x [N, C, S], f32 or f64 (the op layer computes f16/bf16 in f32), mean/rstd saved as the
// CPU saves them (group_norm: [N, G]; batch_norm: save_mean/save_rstd [C], the μ and rstd applied, also in eval).
//
// Algorithm (deterministic, no atomics; helpers in tensor/cuda/block_reduce.cuh): one team per reduction set —
// a warp when the set has ≤ 1024 elements, else a 256-thread block —
//   group_norm forward:  a team per (sample, group), its K·S elements contiguous;
//   group_norm backward: a team per (sample, group) for dx (Σ ĝ and Σ ĝ·x̂ as one paired reduction), and a team
//                        per channel for dweight/dbias (Σ dy·x̂, Σ dy over the N·S elements of the channel);
//   batch_norm forward/backward: a team per channel over its N·S elements (element i ↦ n = i / S, s = i % S).
// Variance is TWO-PASS, as the CPU: the mean first (a team sum), then Σ (x − μ)² over the same elements (a second
// team sum); var = Σ(x−μ)²/M (biased), rstd = 1/√(var + eps). Sums accumulate in the input dtype (f64 for f64,
// f32 for f32; the CPU reference accumulates in double, hence the tests' f32 tolerances). The running-stat update
// of batch_norm training (momentum, unbiased var·M/(M−1)) is done by the channel team's first thread.
// Performance note: batch_norm uses one team per channel, so a layer with few channels and a large N·S runs on few
// SMs; a split-channel two-stage version is future work (the results would stay deterministic).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/norm.h"

namespace cxr::tensor::cuda {

namespace {

__device__ __forceinline__ float d_rsqrt_ref(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double d_rsqrt_ref(double v) { return 1.0 / sqrt(v); }

template <class T>
__device__ __forceinline__ T param(const T* p, int64_t c, T fallback) {
    return p ? p[c] : fallback;
}

// ---- group statistics ----

template <class T, int TEAM>
__global__ void group_norm_forward_kernel(const T* x, const T* w, const T* b, int64_t NG, int64_t G, int64_t K,
                                          int64_t S, T eps, T* y, T* mean, T* rstd) {
    const Team<TEAM> t;
    const int64_t M = K * S;  // elements per group
    for (int64_t ng = t.id; ng < NG; ng += t.count) {
        const T* xg = x + ng * M;  // [K, S] block of this (sample, group)
        T* yg = y + ng * M;
        T s = T(0);
        for (int64_t i = t.rank; i < M; i += TEAM) s += xg[i];
        s = t.all_reduce(SumCombine<T>{}, s);
        const T mu = M > 0 ? s / T(M) : T(0);
        T q = T(0);
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const T d = xg[i] - mu;
            q += d * d;
        }
        q = t.all_reduce(SumCombine<T>{}, q);
        const T var = M > 0 ? q / T(M) : T(0);
        const T r = d_rsqrt_ref(var + eps);
        if (t.rank == 0) {
            mean[ng] = mu;
            rstd[ng] = r;
        }
        const int64_t g = ng % G;
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const int64_t c = g * K + i / S;
            const T scale = r * param(w, c, T(1));
            const T shift = param(b, c, T(0)) - mu * scale;
            yg[i] = xg[i] * scale + shift;
        }
    }
}

template <class T, int TEAM>
__global__ void group_norm_backward_dx_kernel(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                                              int64_t NG, int64_t G, int64_t K, int64_t S, T* dx) {
    const Team<TEAM> t;
    const int64_t M = K * S;
    for (int64_t ng = t.id; ng < NG; ng += t.count) {
        const int64_t g = ng % G, base = ng * M;
        const T mu = mean[ng], r = rstd[ng];
        Pair<T> acc{T(0), T(0)};  // Σ ĝ, Σ ĝ·x̂ with ĝ = dy·γ
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const T gh = dy[base + i] * param(w, g * K + i / S, T(1));
            acc.a += gh;
            acc.b += gh * (x[base + i] - mu) * r;
        }
        acc = t.all_reduce(PairSumCombine<T>{}, acc);
        const T mean_g = M > 0 ? acc.a / T(M) : T(0);
        const T mean_gx = M > 0 ? acc.b / T(M) : T(0);
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const T gamma = param(w, g * K + i / S, T(1));
            const T xhat = (x[base + i] - mu) * r;
            dx[base + i] = r * (dy[base + i] * gamma - mean_g - xhat * mean_gx);
        }
    }
}

// dweight/dbias of group_norm: a team per channel c over its N·S elements.
template <class T, int TEAM>
__global__ void group_norm_backward_params_kernel(const T* dy, const T* x, const T* mean, const T* rstd, int64_t N,
                                                  int64_t C, int64_t G, int64_t S, T* dw, T* db) {
    const Team<TEAM> t;
    const int64_t K = C / G, M = N * S;
    for (int64_t c = t.id; c < C; c += t.count) {
        const int64_t g = c / K;
        Pair<T> acc{T(0), T(0)};  // Σ dy·x̂, Σ dy
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const int64_t n = i / S, s = i - n * S;
            const int64_t idx = (n * C + c) * S + s;
            const T d = dy[idx];
            acc.a += d * (x[idx] - mean[n * G + g]) * rstd[n * G + g];
            acc.b += d;
        }
        acc = t.all_reduce(PairSumCombine<T>{}, acc);
        if (t.rank == 0) {
            if (dw) dw[c] = acc.a;
            if (db) db[c] = acc.b;
        }
    }
}

// ---- channel statistics ----

template <class T, int TEAM>
__global__ void batch_norm_forward_kernel(const T* x, const T* w, const T* b, T* running_mean, T* running_var,
                                          bool training, T momentum, T eps, int64_t N, int64_t C, int64_t S, T* y,
                                          T* save_mean, T* save_rstd) {
    const Team<TEAM> t;
    const int64_t M = N * S;  // elements per channel
    for (int64_t c = t.id; c < C; c += t.count) {
        T mu, var;
        if (training) {
            T s = T(0);
            for (int64_t i = t.rank; i < M; i += TEAM) {
                const int64_t n = i / S;
                s += x[(n * C + c) * S + (i - n * S)];
            }
            s = t.all_reduce(SumCombine<T>{}, s);
            mu = s / T(M);
            T q = T(0);
            for (int64_t i = t.rank; i < M; i += TEAM) {
                const int64_t n = i / S;
                const T d = x[(n * C + c) * S + (i - n * S)] - mu;
                q += d * d;
            }
            q = t.all_reduce(SumCombine<T>{}, q);
            var = q / T(M);
            if (t.rank == 0) {
                if (running_mean) running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mu;
                if (running_var) running_var[c] = (T(1) - momentum) * running_var[c] + momentum * (q / T(M - 1));
            }
        } else {
            mu = running_mean[c];
            var = running_var[c];
        }
        const T r = d_rsqrt_ref(var + eps);
        if (t.rank == 0) {
            save_mean[c] = mu;
            save_rstd[c] = r;
        }
        const T scale = r * param(w, c, T(1));
        const T shift = param(b, c, T(0)) - mu * scale;
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const int64_t n = i / S;
            const int64_t idx = (n * C + c) * S + (i - n * S);
            y[idx] = x[idx] * scale + shift;
        }
    }
}

template <class T, int TEAM>
__global__ void batch_norm_backward_kernel(const T* dy, const T* x, const T* save_mean, const T* save_rstd,
                                           const T* w, bool training, int64_t N, int64_t C, int64_t S, T* dx, T* dw,
                                           T* db) {
    const Team<TEAM> t;
    const int64_t M = N * S;
    for (int64_t c = t.id; c < C; c += t.count) {
        const T mu = save_mean[c], r = save_rstd[c], gamma = param(w, c, T(1));
        Pair<T> acc{T(0), T(0)};  // Σ dy, Σ dy·x̂
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const int64_t n = i / S;
            const int64_t idx = (n * C + c) * S + (i - n * S);
            const T d = dy[idx];
            acc.a += d;
            acc.b += d * (x[idx] - mu) * r;
        }
        acc = t.all_reduce(PairSumCombine<T>{}, acc);
        if (t.rank == 0) {
            if (dw) dw[c] = acc.b;
            if (db) db[c] = acc.a;
        }
        if (!dx) continue;  // uniform over the team
        // training: dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = γ·rstd·dy
        const T mean_dy = training ? acc.a / T(M) : T(0);
        const T mean_dy_xhat = training ? acc.b / T(M) : T(0);
        for (int64_t i = t.rank; i < M; i += TEAM) {
            const int64_t n = i / S;
            const int64_t idx = (n * C + c) * S + (i - n * S);
            const T xhat = (x[idx] - mu) * r;
            dx[idx] = gamma * r * (dy[idx] - mean_dy - xhat * mean_dy_xhat);
        }
    }
}

// ---- host side ----

template <class T>
const T* cptr(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* mptr(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

// Launches KERNEL<scalar_t, team> with a warp team for sets of ≤ kWarpRowMax elements, a block team otherwise.
#define CXR_LAUNCH_TEAMS(KERNEL, TEAMS, SET_SIZE, ...)                                                      \
    do {                                                                                                  \
        if ((SET_SIZE) <= kWarpRowMax) {                                                                  \
            KERNEL<scalar_t, kWarp><<<team_grid((TEAMS), kWarp), kBlock>>>(__VA_ARGS__);                  \
        } else {                                                                                          \
            KERNEL<scalar_t, kBlock><<<team_grid((TEAMS), kBlock), kBlock>>>(__VA_ARGS__);                \
        }                                                                                                 \
        after_launch(#KERNEL);                                                                            \
    } while (0)

// f32 and f64 only, as the CPU kernels: the op layer computes f16/bf16 in f32.
#define CXR_NORM_DISPATCH(DT, NAME, ...)                                                              \
    do {                                                                                              \
        if ((DT) == DType::f32) {                                                                     \
            using scalar_t = float;                                                                   \
            __VA_ARGS__;                                                                              \
        } else if ((DT) == DType::f64) {                                                              \
            using scalar_t = double;                                                                  \
            __VA_ARGS__;                                                                              \
        } else {                                                                                      \
            CXR_FAIL(NAME, ": the CUDA kernel takes f32 or f64, got ", dtype_name(DT));               \
        }                                                                                             \
    } while (0)

void check_x(const char* op, const Tensor& x) {
    CXR_CHECK(x.dim() == 3 && x.is_contiguous(), op, " (CUDA): expects a contiguous [N, C, S] tensor, got ",
              shape_str(x.sizes()));
}

void group_norm_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    check_x("group_norm", x);
    const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
    CXR_CHECK(groups > 0 && C % groups == 0, "group_norm (CUDA): ", C, " channels not divisible by ", groups,
              " groups");
    const DeviceGuard device_guard(x.device().index);  // restored on return
    const int64_t K = C / groups, NG = N * groups;
    if (NG == 0) return;
    CXR_NORM_DISPATCH(x.dtype(), "group_norm", {
        CXR_LAUNCH_TEAMS(group_norm_forward_kernel, NG, K * S, x.data<scalar_t>(), cptr<scalar_t>(weight),
                         cptr<scalar_t>(bias), NG, groups, K, S, scalar_t(eps), y.data<scalar_t>(),
                         mean.data<scalar_t>(), rstd.data<scalar_t>());
    });
}

void group_norm_backward_kernel(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                const Tensor& weight, int64_t groups, const Tensor& dx, const Tensor& dweight,
                                const Tensor& dbias) {
    check_x("group_norm_backward", x);
    const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
    CXR_CHECK(groups > 0 && C % groups == 0, "group_norm_backward (CUDA): ", C, " channels not divisible by ",
              groups, " groups");
    const DeviceGuard device_guard(x.device().index);  // restored on return
    const int64_t K = C / groups, NG = N * groups;
    CXR_NORM_DISPATCH(x.dtype(), "group_norm_backward", {
        if (dx.defined() && NG > 0)
            CXR_LAUNCH_TEAMS(group_norm_backward_dx_kernel, NG, K * S, dy.data<scalar_t>(), x.data<scalar_t>(),
                             mean.data<scalar_t>(), rstd.data<scalar_t>(), cptr<scalar_t>(weight), NG, groups, K,
                             S, dx.data<scalar_t>());
        if ((dweight.defined() || dbias.defined()) && C > 0)
            CXR_LAUNCH_TEAMS(group_norm_backward_params_kernel, C, N * S, dy.data<scalar_t>(), x.data<scalar_t>(),
                             mean.data<scalar_t>(), rstd.data<scalar_t>(), N, C, groups, S, mptr<scalar_t>(dweight),
                             mptr<scalar_t>(dbias));
    });
}

void batch_norm_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, const Tensor& y,
                       const Tensor& save_mean, const Tensor& save_rstd) {
    check_x("batch_norm", x);
    const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
    if (training) {
        CXR_CHECK(N * S > 1 || C == 0, "batch_norm (CUDA): training needs more than one value per channel");
    } else {
        CXR_CHECK(running_mean.defined() && running_var.defined(),
                  "batch_norm (CUDA): eval mode needs running_mean and running_var");
    }
    const DeviceGuard device_guard(x.device().index);  // restored on return
    if (C == 0) return;
    CXR_NORM_DISPATCH(x.dtype(), "batch_norm", {
        CXR_LAUNCH_TEAMS(batch_norm_forward_kernel, C, N * S, x.data<scalar_t>(), cptr<scalar_t>(weight),
                         cptr<scalar_t>(bias), mptr<scalar_t>(running_mean), mptr<scalar_t>(running_var), training,
                         scalar_t(momentum), scalar_t(eps), N, C, S, y.data<scalar_t>(), save_mean.data<scalar_t>(),
                         save_rstd.data<scalar_t>());
    });
}

void batch_norm_backward_kernel(const Tensor& dy, const Tensor& x, const Tensor& save_mean, const Tensor& save_rstd,
                                const Tensor& weight, bool training, const Tensor& dx, const Tensor& dweight,
                                const Tensor& dbias) {
    check_x("batch_norm_backward", x);
    const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
    const DeviceGuard device_guard(x.device().index);  // restored on return
    if (C == 0 || (!dx.defined() && !dweight.defined() && !dbias.defined())) return;
    CXR_NORM_DISPATCH(x.dtype(), "batch_norm_backward", {
        CXR_LAUNCH_TEAMS(batch_norm_backward_kernel, C, N * S, dy.data<scalar_t>(), x.data<scalar_t>(),
                         save_mean.data<scalar_t>(), save_rstd.data<scalar_t>(), cptr<scalar_t>(weight), training,
                         N, C, S, mptr<scalar_t>(dx), mptr<scalar_t>(dweight), mptr<scalar_t>(dbias));
    });
}

#undef CXR_NORM_DISPATCH
#undef CXR_LAUNCH_TEAMS

}  // namespace

void register_norm_kernels(KernelRegistry& r) {
    register_kernel<GroupNormKernel>(r, "group_norm", DeviceType::CUDA, group_norm_kernel);
    register_kernel<GroupNormBackwardKernel>(r, "group_norm_backward", DeviceType::CUDA, group_norm_backward_kernel);
    register_kernel<BatchNormKernel>(r, "batch_norm", DeviceType::CUDA, batch_norm_kernel);
    register_kernel<BatchNormBackwardKernel>(r, "batch_norm_backward", DeviceType::CUDA, batch_norm_backward_kernel);
}

}  // namespace cxr::tensor::cuda
