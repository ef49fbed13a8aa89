// CUDA kernels of the pool family, registered under the CPU's names (tensor/cpu/pool.cpp): "max_pool2d_forward",
// "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward",
// "adaptive_avg_pool2d_backward". Formulas in tensor/ops/pool.h; tensors are contiguous [planes, H, W] /
// [planes, H_out, W_out], f32 or f64 (f16/bf16 are accepted too, computed in float).
//
// Algorithms (all grid-stride loops, no atomics, deterministic):
//   forward  — one thread per output element, the window walked in row-major order; max keeps the FIRST maximum
//              and lets a NaN win (a later NaN replaces an earlier one, as the CPU/torch); averages accumulate in
//              double for f64 and float otherwise.
//   backward — GATHER form, one thread per input element: it visits the (at most ⌈k/s⌉² for avg / max) output
//              windows that can contain it, in ascending (window row, window column) order, and sums their
//              contributions: max — dy where the saved argmax equals this element; avg — dy / divisor of the
//              window. The divisor and window bounds are the CPU's (avg_window / adaptive start-end).
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/pool.h"

namespace cxr::tensor::cuda {

namespace {

template <class T> struct PoolAcc { using type = float; };
template <> struct PoolAcc<double> { using type = double; };
template <class T>
__device__ inline typename PoolAcc<T>::type pacc(T v) {
    return static_cast<typename PoolAcc<T>::type>(static_cast<typename ComputeType<T>::type>(v));
}
template <class T, class A>
__device__ inline T pfrom(A v) { return T(static_cast<typename ComputeType<T>::type>(v)); }

__device__ inline int64_t dmin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t dmax(int64_t a, int64_t b) { return a > b ? a : b; }

struct Win {
    int64_t hs, he, ws, we, divisor;
};

__device__ inline Win avg_win(const Pool2dParams& p, int64_t i, int64_t j) {
    int64_t hs = i * p.stride_h - p.pad_h, ws = j * p.stride_w - p.pad_w;
    int64_t he = dmin(hs + p.kH, p.H + p.pad_h), we = dmin(ws + p.kW, p.W + p.pad_w);
    const int64_t padded = (he - hs) * (we - ws);
    hs = dmax(hs, 0), ws = dmax(ws, 0), he = dmin(he, p.H), we = dmin(we, p.W);
    const int64_t inner = dmax(he - hs, 0) * dmax(we - ws, 0);
    return {hs, he, ws, we, p.count_include_pad ? padded : inner};
}

__device__ inline int64_t ad_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ inline int64_t ad_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

__device__ inline Win win_of(const Pool2dParams& p, int64_t i, int64_t j, bool adaptive) {
    if (!adaptive) return avg_win(p, i, j);
    Win w{ad_start(i, p.H, p.H_out), ad_end(i, p.H, p.H_out), ad_start(j, p.W, p.W_out), ad_end(j, p.W, p.W_out), 0};
    w.divisor = (w.he - w.hs) * (w.we - w.ws);
    return w;
}

template <class T>
__global__ void max_forward_kernel(Pool2dParams p, const T* x, T* y, int64_t* idx, int64_t n) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = o % p.W_out, i = (o / p.W_out) % p.H_out, pl = o / (p.W_out * p.H_out);
        const T* xp = x + pl * p.H * p.W;
        int64_t best = -1;
        auto bv = pacc(T(0.0f));
        for (int64_t a = 0; a < p.kH; ++a) {
            const int64_t h = i * p.stride_h - p.pad_h + a * p.dil_h;
            if (h < 0 || h >= p.H) continue;
            for (int64_t b = 0; b < p.kW; ++b) {
                const int64_t w = j * p.stride_w - p.pad_w + b * p.dil_w;
                if (w < 0 || w >= p.W) continue;
                const auto v = pacc(xp[h * p.W + w]);
                if (best < 0 || v > bv || v != v) {
                    bv = v;
                    best = h * p.W + w;
                }
            }
        }
        y[o] = best < 0 ? pfrom<T>(-INFINITY) : xp[best];
        idx[o] = best;
    }
}

// Output windows (along one axis) that can contain input position h: i with i·s - pad + a·d == h for some a.
__device__ inline void window_range(int64_t h, int64_t k, int64_t s, int64_t pad, int64_t d, int64_t out,
                                    int64_t& lo, int64_t& hi) {
    // i·s ∈ [h + pad - (k-1)·d, h + pad]
    const int64_t top = h + pad, bottom = h + pad - (k - 1) * d;
    lo = bottom <= 0 ? 0 : (bottom + s - 1) / s;
    hi = dmin(top / s + 1, out);  // exclusive; top >= 0 always
}

template <class T>
__global__ void max_backward_kernel(Pool2dParams p, const T* gy, const int64_t* idx, T* gx, int64_t n) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t w = e % p.W, h = (e / p.W) % p.H, pl = e / (p.W * p.H);
        const int64_t self = h * p.W + w, o0 = pl * p.H_out * p.W_out;
        int64_t ilo, ihi, jlo, jhi;
        window_range(h, p.kH, p.stride_h, p.pad_h, p.dil_h, p.H_out, ilo, ihi);
        window_range(w, p.kW, p.stride_w, p.pad_w, p.dil_w, p.W_out, jlo, jhi);
        auto acc = pacc(T(0.0f));
        for (int64_t i = ilo; i < ihi; ++i)
            for (int64_t j = jlo; j < jhi; ++j) {
                const int64_t o = o0 + i * p.W_out + j;
                if (idx[o] == self) acc += pacc(gy[o]);
            }
        gx[e] = pfrom<T>(acc);
    }
}

template <class T, bool Adaptive>
__global__ void avg_forward_kernel(Pool2dParams p, const T* x, T* y, int64_t n) {
    using A = typename PoolAcc<T>::type;
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = o % p.W_out, i = (o / p.W_out) % p.H_out, pl = o / (p.W_out * p.H_out);
        const T* xp = x + pl * p.H * p.W;
        const Win win = win_of(p, i, j, Adaptive);
        A acc = A(0);
        for (int64_t h = win.hs; h < win.he; ++h)
            for (int64_t w = win.ws; w < win.we; ++w) acc += pacc(xp[h * p.W + w]);
        y[o] = pfrom<T>(acc / A(win.divisor));
    }
}

template <class T, bool Adaptive>
__global__ void avg_backward_kernel(Pool2dParams p, const T* gy, T* gx, int64_t n) {
    using A = typename PoolAcc<T>::type;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t w = e % p.W, h = (e / p.W) % p.H, pl = e / (p.W * p.H);
        int64_t ilo, ihi, jlo, jhi;
        if (Adaptive) {
            // window i covers [⌊iH/Ho⌋, ⌈(i+1)H/Ho⌉): candidates around h·Ho/H, checked exactly below.
            ilo = dmax((h * p.H_out) / p.H - 1, 0), ihi = dmin(((h + 1) * p.H_out) / p.H + 2, p.H_out);
            jlo = dmax((w * p.W_out) / p.W - 1, 0), jhi = dmin(((w + 1) * p.W_out) / p.W + 2, p.W_out);
        } else {
            window_range(h, p.kH, p.stride_h, p.pad_h, 1, p.H_out, ilo, ihi);
            window_range(w, p.kW, p.stride_w, p.pad_w, 1, p.W_out, jlo, jhi);
        }
        A acc = A(0);
        for (int64_t i = ilo; i < ihi; ++i)
            for (int64_t j = jlo; j < jhi; ++j) {
                const Win win = win_of(p, i, j, Adaptive);
                if (h < win.hs || h >= win.he || w < win.ws || w >= win.we) continue;
                acc += pacc(gy[(pl * p.H_out + i) * p.W_out + j]) / A(win.divisor);
            }
        gx[e] = pfrom<T>(acc);
    }
}

void check_t(const char* op, const Tensor& t) {
    CXR_CHECK(t.is_contiguous(), op, ": CUDA kernel expects contiguous tensors");
    CXR_CHECK(t.is_cuda(), op, ": expected a CUDA tensor");
}

void max_forward(const Pool2dParams& p, const Tensor& x, const Tensor& y, const Tensor& idx) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    check_t("max_pool2d_forward", x);
    CXR_CHECK(idx.dtype() == DType::i64 && idx.is_contiguous(), "max_pool2d_forward: indices must be contiguous i64");
    const int64_t n = p.planes * p.H_out * p.W_out;
    if (n == 0) return;
    CXR_DISPATCH_FLOAT(x.dtype(), "max_pool2d_forward", {
        max_forward_kernel<scalar_t><<<grid_blocks(n), 256>>>(p, x.data<scalar_t>(), y.data<scalar_t>(),
                                                              idx.data<int64_t>(), n);
    });
    after_launch("max_pool2d_forward");
}

void max_backward(const Pool2dParams& p, const Tensor& gy, const Tensor& idx, const Tensor& gx) {
    const DeviceGuard device_guard(gy.device().index);  // the tensors' device, restored on return
    check_t("max_pool2d_backward", gy);
    CXR_CHECK(idx.dtype() == DType::i64 && idx.is_contiguous(), "max_pool2d_backward: indices must be contiguous i64");
    const int64_t n = p.planes * p.H * p.W;
    if (n == 0) return;
    CXR_DISPATCH_FLOAT(gy.dtype(), "max_pool2d_backward", {
        max_backward_kernel<scalar_t><<<grid_blocks(n), 256>>>(p, gy.data<scalar_t>(), idx.data<int64_t>(),
                                                               gx.data<scalar_t>(), n);
    });
    after_launch("max_pool2d_backward");
}

template <bool Adaptive, bool Backward>
void avg_kernel(const Pool2dParams& p, const Tensor& in, const Tensor& out) {
    const char* name = Adaptive ? (Backward ? "adaptive_avg_pool2d_backward" : "adaptive_avg_pool2d_forward")
                                : (Backward ? "avg_pool2d_backward" : "avg_pool2d_forward");
    check_t(name, in);
    const int64_t n = out.numel();
    if (n == 0) return;
    CXR_DISPATCH_FLOAT(in.dtype(), name, {
        if (Backward)
            avg_backward_kernel<scalar_t, Adaptive><<<grid_blocks(n), 256>>>(p, in.data<scalar_t>(),
                                                                             out.data<scalar_t>(), n);
        else
            avg_forward_kernel<scalar_t, Adaptive><<<grid_blocks(n), 256>>>(p, in.data<scalar_t>(),
                                                                            out.data<scalar_t>(), n);
    });
    after_launch(name);
}

}  // namespace

void register_pool_kernels(KernelRegistry& r) {
    register_kernel<MaxPool2dForwardKernel>(r, "max_pool2d_forward", DeviceType::CUDA, max_forward);
    register_kernel<MaxPool2dBackwardKernel>(r, "max_pool2d_backward", DeviceType::CUDA, max_backward);
    register_kernel<Pool2dKernel>(r, "avg_pool2d_forward", DeviceType::CUDA, avg_kernel<false, false>);
    register_kernel<Pool2dKernel>(r, "avg_pool2d_backward", DeviceType::CUDA, avg_kernel<false, true>);
    register_kernel<Pool2dKernel>(r, "adaptive_avg_pool2d_forward", DeviceType::CUDA, avg_kernel<true, false>);
    register_kernel<Pool2dKernel>(r, "adaptive_avg_pool2d_backward", DeviceType::CUDA, avg_kernel<true, true>);
}

}  // namespace cxr::tensor::cuda
