// CUDA kernels for softmax / log-softmax forward and backward ("softmax", "softmax_backward"; formulas in
// tensor/ops/softmax.h), same semantics and dtypes (f32, f64, f16, bf16) as the CPU reference
// (tensor/cpu/softmax.cpp). The contiguous tensor is seen as [outer, n, inner] around `dim`; a row is the n
// elements of one (outer, inner) pair, at stride `inner`.
//
// Algorithm (deterministic, no atomics; helpers in tensor/cuda/block_reduce.cuh):
//   - inner > 1 with at least kColumnThreads rows: one thread per row, adjacent threads on adjacent inner
//     indices (coalesced), each row folded sequentially (max, then Σ e^(x−m), then the outputs);
//   - otherwise one team per row — a warp for n ≤ 1024, a 256-thread block for longer rows: the maximum and
//     then Σ e^(x − m) are team reductions (warp shuffles, then shared memory, fixed order), then each thread
//     writes its share. The backward reduces Σ g·y (softmax) or Σ g (log-softmax) the same way.
// Accumulation and exp/log in f64 for f64, in f32 for f32/f16/bf16 (the CPU reference uses double throughout,
// hence the tests' f32 tolerances). The maximum skips NaN as the CPU's `if (v > m)` scan does; a NaN or +inf in a
// row then makes the row NaN through the sum, and an all −inf row is NaN, as torch.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/softmax.h"

namespace cxr::tensor::cuda {

namespace {

constexpr int64_t kColumnThreads = 1024;  // rows needed before the strided layout uses one thread per row

struct Geometry {
    int64_t outer = 1, n = 1, inner = 1;
    int64_t rows() const { return outer * inner; }
};

Geometry geometry(const Tensor& x, int64_t dim) {
    Geometry g;
    g.n = x.size(dim);
    for (int64_t d = 0; d < dim; ++d) g.outer *= x.size(d);
    for (int64_t d = dim + 1; d < x.dim(); ++d) g.inner *= x.size(d);
    return g;
}

__device__ __forceinline__ float d_exp(float v) { return expf(v); }
__device__ __forceinline__ double d_exp(double v) { return exp(v); }
__device__ __forceinline__ float d_log(float v) { return logf(v); }
__device__ __forceinline__ double d_log(double v) { return log(v); }

template <class T, class A>
__device__ __forceinline__ A ld(const T* p, int64_t i) {
    using C = typename ComputeType<T>::type;
    return A(C(p[i]));
}

template <class T, class A>
__device__ __forceinline__ void st(T* p, int64_t i, A v) {
    using C = typename ComputeType<T>::type;
    p[i] = T(C(v));
}

__device__ __forceinline__ int64_t row_base(int64_t r, int64_t n, int64_t inner) {
    return (r / inner) * n * inner + r % inner;
}

// ---- forward ----

template <class T, int TEAM>
__global__ void softmax_team_kernel(const T* x, T* y, int64_t rows, int64_t n, int64_t inner, bool log) {
    using A = typename AccType<T>::type;
    const Team<TEAM> t;
    for (int64_t r = t.id; r < rows; r += t.count) {
        const int64_t base = row_base(r, n, inner);
        const MaxCombine<A> max_op;
        A m = max_op.identity();
        for (int64_t j = t.rank; j < n; j += TEAM) m = max_op.combine(m, ld<T, A>(x, base + j * inner));
        m = t.all_reduce(max_op, m);
        A s = A(0);
        for (int64_t j = t.rank; j < n; j += TEAM) s += d_exp(ld<T, A>(x, base + j * inner) - m);
        s = t.all_reduce(SumCombine<A>{}, s);
        if (log) {
            const A log_s = d_log(s);
            for (int64_t j = t.rank; j < n; j += TEAM) {
                const int64_t i = base + j * inner;
                st<T, A>(y, i, ld<T, A>(x, i) - m - log_s);
            }
        } else {
            const A inv_s = A(1) / s;
            for (int64_t j = t.rank; j < n; j += TEAM) {
                const int64_t i = base + j * inner;
                st<T, A>(y, i, d_exp(ld<T, A>(x, i) - m) * inv_s);
            }
        }
    }
}

template <class T>
__global__ void softmax_column_kernel(const T* x, T* y, int64_t rows, int64_t n, int64_t inner, bool log) {
    using A = typename AccType<T>::type;
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
        const int64_t base = row_base(r, n, inner);
        A m = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
            const A v = ld<T, A>(x, base + j * inner);
            if (v > m) m = v;
        }
        A s = A(0);
        for (int64_t j = 0; j < n; ++j) s += d_exp(ld<T, A>(x, base + j * inner) - m);
        const A log_s = d_log(s), inv_s = A(1) / s;
        for (int64_t j = 0; j < n; ++j) {
            const int64_t i = base + j * inner;
            const A v = ld<T, A>(x, i) - m;
            st<T, A>(y, i, log ? v - log_s : d_exp(v) * inv_s);
        }
    }
}

// ---- backward ----

template <class T, int TEAM>
__global__ void softmax_backward_team_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, int64_t inner,
                                             bool log) {
    using A = typename AccType<T>::type;
    const Team<TEAM> t;
    for (int64_t r = t.id; r < rows; r += t.count) {
        const int64_t base = row_base(r, n, inner);
        A acc = A(0);  // softmax: Σ g·y; log_softmax: Σ g
        for (int64_t j = t.rank; j < n; j += TEAM) {
            const int64_t i = base + j * inner;
            const A g = ld<T, A>(dy, i);
            acc += log ? g : g * ld<T, A>(y, i);
        }
        acc = t.all_reduce(SumCombine<A>{}, acc);
        for (int64_t j = t.rank; j < n; j += TEAM) {
            const int64_t i = base + j * inner;
            const A yv = ld<T, A>(y, i), g = ld<T, A>(dy, i);
            st<T, A>(dx, i, log ? g - d_exp(yv) * acc : yv * (g - acc));
        }
    }
}

template <class T>
__global__ void softmax_backward_column_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t n,
                                               int64_t inner, bool log) {
    using A = typename AccType<T>::type;
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
        const int64_t base = row_base(r, n, inner);
        A acc = A(0);
        for (int64_t j = 0; j < n; ++j) {
            const int64_t i = base + j * inner;
            const A g = ld<T, A>(dy, i);
            acc += log ? g : g * ld<T, A>(y, i);
        }
        for (int64_t j = 0; j < n; ++j) {
            const int64_t i = base + j * inner;
            const A yv = ld<T, A>(y, i), g = ld<T, A>(dy, i);
            st<T, A>(dx, i, log ? g - d_exp(yv) * acc : yv * (g - acc));
        }
    }
}

unsigned column_grid(int64_t rows) { return team_grid(rows, 1); }

void check_args(const char* op, const Tensor& a, const Tensor& b, int64_t dim) {
    CXR_CHECK(a.is_contiguous() && b.is_contiguous() && a.sizes() == b.sizes(), op,
              " (CUDA): expects contiguous tensors of one shape, got ", shape_str(a.sizes()), " and ",
              shape_str(b.sizes()));
    CXR_CHECK(dim >= 0 && dim < a.dim(), op, " (CUDA): dim ", dim, " out of range for ", shape_str(a.sizes()));
}

void softmax_kernel(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
    check_args("softmax", x, out, dim);
    const DeviceGuard device_guard(x.device().index);  // restored on return
    const Geometry g = geometry(x, dim);
    const int64_t rows = g.rows();
    if (rows == 0 || g.n == 0) return;
    CXR_DISPATCH_FLOAT(x.dtype(), "softmax", {
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* yp = out.data<scalar_t>();
        if (g.inner > 1 && rows >= kColumnThreads) {
            softmax_column_kernel<scalar_t><<<column_grid(rows), kBlock>>>(xp, yp, rows, g.n, g.inner, log);
            after_launch("softmax_column_kernel");
        } else if (g.n <= kWarpRowMax) {
            softmax_team_kernel<scalar_t, kWarp><<<team_grid(rows, kWarp), kBlock>>>(xp, yp, rows, g.n, g.inner, log);
            after_launch("softmax_warp_kernel");
        } else {
            softmax_team_kernel<scalar_t, kBlock>
                <<<team_grid(rows, kBlock), kBlock>>>(xp, yp, rows, g.n, g.inner, log);
            after_launch("softmax_block_kernel");
        }
    });
}

void softmax_backward_kernel(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t dim, bool log) {
    CXR_CHECK(y.dtype() == dy.dtype() && y.dtype() == dx.dtype(), "softmax backward: gradient dtype ",
              dtype_name(dy.dtype()), " differs from the output's ", dtype_name(y.dtype()));
    check_args("softmax_backward", y, dy, dim);
    check_args("softmax_backward", y, dx, dim);
    const DeviceGuard device_guard(y.device().index);  // restored on return
    const Geometry g = geometry(y, dim);
    const int64_t rows = g.rows();
    if (rows == 0 || g.n == 0) return;
    CXR_DISPATCH_FLOAT(y.dtype(), "softmax_backward", {
        const scalar_t* yp = y.data<scalar_t>();
        const scalar_t* gp = dy.data<scalar_t>();
        scalar_t* dp = dx.data<scalar_t>();
        if (g.inner > 1 && rows >= kColumnThreads) {
            softmax_backward_column_kernel<scalar_t>
                <<<column_grid(rows), kBlock>>>(yp, gp, dp, rows, g.n, g.inner, log);
            after_launch("softmax_backward_column_kernel");
        } else if (g.n <= kWarpRowMax) {
            softmax_backward_team_kernel<scalar_t, kWarp>
                <<<team_grid(rows, kWarp), kBlock>>>(yp, gp, dp, rows, g.n, g.inner, log);
            after_launch("softmax_backward_warp_kernel");
        } else {
            softmax_backward_team_kernel<scalar_t, kBlock>
                <<<team_grid(rows, kBlock), kBlock>>>(yp, gp, dp, rows, g.n, g.inner, log);
            after_launch("softmax_backward_block_kernel");
        }
    });
}

}  // namespace

void register_softmax_kernels(KernelRegistry& r) {
    register_kernel<SoftmaxKernel>(r, "softmax", DeviceType::CUDA, softmax_kernel);
    register_kernel<SoftmaxBackwardKernel>(r, "softmax_backward", DeviceType::CUDA, softmax_backward_kernel);
}

}  // namespace cxr::tensor::cuda
