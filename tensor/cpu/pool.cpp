// CPU reference kernels of the pool family (formulas in tensor/ops/pool.h): plain loops over contiguous
// [planes, H, W] planes; max pooling keeps the first maximum (a NaN wins, the last one as in torch), averages accumulate in double.
// Backward kernels zero grad_x and scatter-add into it; planes are independent, so OpenMP splits over them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/pool.h"

namespace cxr::tensor::cpu {

namespace {

template <class T>
void max_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H_out * p.W_out > 4096)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        const T* xp = x + pl * p.H * p.W;
        for (int64_t i = 0; i < p.H_out; ++i)
            for (int64_t j = 0; j < p.W_out; ++j) {
                int64_t best = -1;
                T bv = T(0);
                for (int64_t a = 0; a < p.kH; ++a) {
                    const int64_t h = i * p.stride_h - p.pad_h + a * p.dil_h;
                    if (h < 0 || h >= p.H) continue;
                    for (int64_t b = 0; b < p.kW; ++b) {
                        const int64_t w = j * p.stride_w - p.pad_w + b * p.dil_w;
                        if (w < 0 || w >= p.W) continue;
                        const T v = xp[h * p.W + w];
                        if (best < 0 || v > bv || std::isnan(v)) {  // as torch: a later NaN replaces an earlier one
                            bv = v;
                            best = h * p.W + w;
                        }
                    }
                }
                // Every window holds at least one input element (padding <= kernel / 2).
                const int64_t o = (pl * p.H_out + i) * p.W_out + j;
                y[o] = best < 0 ? T(-INFINITY) : bv;
                idx[o] = best;
            }
    }
}

template <class T>
void max_backward(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H * p.W > 4096)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        T* gxp = gx + pl * p.H * p.W;
        std::fill(gxp, gxp + p.H * p.W, T(0));
        const int64_t o0 = pl * p.H_out * p.W_out;
        for (int64_t o = 0; o < p.H_out * p.W_out; ++o)
            if (idx[o0 + o] >= 0) gxp[idx[o0 + o]] += gy[o0 + o];
    }
}

// One averaging window: rows [hs, he), cols [ws, we) clipped to the input, and its divisor.
struct AvgWindow {
    int64_t hs, he, ws, we;
    double divisor;
};

AvgWindow avg_window(const Pool2dParams& p, int64_t i, int64_t j) {
    int64_t hs = i * p.stride_h - p.pad_h, ws = j * p.stride_w - p.pad_w;
    int64_t he = std::min(hs + p.kH, p.H + p.pad_h), we = std::min(ws + p.kW, p.W + p.pad_w);
    const int64_t padded_size = (he - hs) * (we - ws);
    hs = std::max<int64_t>(hs, 0), ws = std::max<int64_t>(ws, 0);
    he = std::min(he, p.H), we = std::min(we, p.W);
    const int64_t inner = std::max<int64_t>(he - hs, 0) * std::max<int64_t>(we - ws, 0);
    return {hs, he, ws, we, double(p.count_include_pad ? padded_size : inner)};
}

// Adaptive window along one dim: [⌊i in / out⌋, ⌈(i + 1) in / out⌉).
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

AvgWindow window_of(const Pool2dParams& p, int64_t i, int64_t j, bool adaptive) {
    if (!adaptive) return avg_window(p, i, j);
    AvgWindow w{adaptive_start(i, p.H, p.H_out), adaptive_end(i, p.H, p.H_out), adaptive_start(j, p.W, p.W_out),
                adaptive_end(j, p.W, p.W_out), 0.0};
    w.divisor = double((w.he - w.hs) * (w.we - w.ws));
    return w;
}

template <class T>
void avg_forward(const Pool2dParams& p, const T* x, T* y, bool adaptive) {
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H_out * p.W_out > 4096)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        const T* xp = x + pl * p.H * p.W;
        for (int64_t i = 0; i < p.H_out; ++i)
            for (int64_t j = 0; j < p.W_out; ++j) {
                const AvgWindow win = window_of(p, i, j, adaptive);
                double acc = 0.0;
                for (int64_t h = win.hs; h < win.he; ++h)
                    for (int64_t w = win.ws; w < win.we; ++w) acc += double(xp[h * p.W + w]);
                y[(pl * p.H_out + i) * p.W_out + j] = T(acc / win.divisor);
            }
    }
}

template <class T>
void avg_backward(const Pool2dParams& p, const T* gy, T* gx, bool adaptive) {
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H * p.W > 4096)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        T* gxp = gx + pl * p.H * p.W;
        std::fill(gxp, gxp + p.H * p.W, T(0));
        for (int64_t i = 0; i < p.H_out; ++i)
            for (int64_t j = 0; j < p.W_out; ++j) {
                const AvgWindow win = window_of(p, i, j, adaptive);
                const T share = T(double(gy[(pl * p.H_out + i) * p.W_out + j]) / win.divisor);
                for (int64_t h = win.hs; h < win.he; ++h)
                    for (int64_t w = win.ws; w < win.we; ++w) gxp[h * p.W + w] += share;
            }
    }
}

void check_dtype(const char* op, const Tensor& t) {
    CXR_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": dtype ", dtype_name(t.dtype()),
              " is not supported on the CPU (f32, f64)");
    CXR_CHECK(t.is_contiguous(), op, ": CPU kernel expects contiguous tensors");
}

void max_forward_kernel(const Pool2dParams& p, const Tensor& x, const Tensor& y, const Tensor& idx) {
    check_dtype("max_pool2d_forward", x);
    if (x.dtype() == DType::f32)
        max_forward(p, x.data<float>(), y.data<float>(), idx.data<int64_t>());
    else
        max_forward(p, x.data<double>(), y.data<double>(), idx.data<int64_t>());
}

void max_backward_kernel(const Pool2dParams& p, const Tensor& gy, const Tensor& idx, const Tensor& gx) {
    check_dtype("max_pool2d_backward", gy);
    CXR_CHECK(idx.is_contiguous() && idx.dtype() == DType::i64, "max_pool2d_backward: indices must be contiguous i64");
    if (gy.dtype() == DType::f32)
        max_backward(p, gy.data<float>(), idx.data<int64_t>(), gx.data<float>());
    else
        max_backward(p, gy.data<double>(), idx.data<int64_t>(), gx.data<double>());
}

template <bool Adaptive, bool Backward>
void avg_kernel(const Pool2dParams& p, const Tensor& in, const Tensor& out) {
    check_dtype(Adaptive ? "adaptive_avg_pool2d" : "avg_pool2d", in);
    if (in.dtype() == DType::f32) {
        if (Backward) avg_backward(p, in.data<float>(), out.data<float>(), Adaptive);
        else avg_forward(p, in.data<float>(), out.data<float>(), Adaptive);
    } else {
        if (Backward) avg_backward(p, in.data<double>(), out.data<double>(), Adaptive);
        else avg_forward(p, in.data<double>(), out.data<double>(), Adaptive);
    }
}

}  // namespace

void register_pool_kernels(KernelRegistry& r) {
    register_kernel<MaxPool2dForwardKernel>(r, "max_pool2d_forward", DeviceType::CPU, max_forward_kernel);
    register_kernel<MaxPool2dBackwardKernel>(r, "max_pool2d_backward", DeviceType::CPU, max_backward_kernel);
    register_kernel<Pool2dKernel>(r, "avg_pool2d_forward", DeviceType::CPU, avg_kernel<false, false>);
    register_kernel<Pool2dKernel>(r, "avg_pool2d_backward", DeviceType::CPU, avg_kernel<false, true>);
    register_kernel<Pool2dKernel>(r, "adaptive_avg_pool2d_forward", DeviceType::CPU, avg_kernel<true, false>);
    register_kernel<Pool2dKernel>(r, "adaptive_avg_pool2d_backward", DeviceType::CPU, avg_kernel<true, true>);
}

}  // namespace cxr::tensor::cpu
