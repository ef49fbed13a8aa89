// CPU reference kernels of the resize family (formulas in tensor/ops/resize.h): nearest and bilinear
// upsampling over contiguous [planes, H, W] planes with per-axis source-index tables computed once, and
// N-d padding through one source-index table per dim. Backward kernels zero the input gradient and
// scatter-add into it. Index arithmetic follows torch's (float scale for nearest, the tensor's own precision
// for bilinear) so that the chosen source pixels agree exactly.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/resize.h"

namespace cxr::tensor::cpu {

namespace {

// ---- nearest (source indices: resize_nearest_table, tensor/ops/resize.h) ----
void nearest_forward_kernel(const ResizeParams& p, const Tensor& x, const Tensor& y) {
    const std::vector<int64_t> th = resize_nearest_table(p.H, p.H_out, p.scale_h),
                               tw = resize_nearest_table(p.W, p.W_out, p.scale_w);
    CXR_DISPATCH_ALL(x.dtype(), "upsample_nearest2d", {
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* yp = y.data<scalar_t>();
        for (int64_t pl = 0; pl < p.planes; ++pl)
            for (int64_t i = 0; i < p.H_out; ++i) {
                const scalar_t* row = xp + (pl * p.H + th[i]) * p.W;
                scalar_t* out = yp + (pl * p.H_out + i) * p.W_out;
                for (int64_t j = 0; j < p.W_out; ++j) out[j] = row[tw[j]];
            }
    });
}

template <class T>
void nearest_backward(const ResizeParams& p, const T* gy, T* gx) {
    const std::vector<int64_t> th = resize_nearest_table(p.H, p.H_out, p.scale_h),
                               tw = resize_nearest_table(p.W, p.W_out, p.scale_w);
    std::fill(gx, gx + p.planes * p.H * p.W, T(0));
    for (int64_t pl = 0; pl < p.planes; ++pl)
        for (int64_t i = 0; i < p.H_out; ++i) {
            T* row = gx + (pl * p.H + th[i]) * p.W;
            const T* g = gy + (pl * p.H_out + i) * p.W_out;
            for (int64_t j = 0; j < p.W_out; ++j) row[tw[j]] += g[j];
        }
}

// ---- bilinear (weights: resize_linear_table, tensor/ops/resize.h) ----

template <class T>
void bilinear_forward(const ResizeParams& p, const T* x, T* y) {
    const auto th = resize_linear_table<T>(p.H, p.H_out, p.scale_h, p.align_corners);
    const auto tw = resize_linear_table<T>(p.W, p.W_out, p.scale_w, p.align_corners);
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H_out * p.W_out > 16384)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        const T* xp = x + pl * p.H * p.W;
        for (int64_t i = 0; i < p.H_out; ++i) {
            const T* r0 = xp + th.i0[i] * p.W;
            const T* r1 = xp + th.i1[i] * p.W;
            T* out = y + (pl * p.H_out + i) * p.W_out;
            for (int64_t j = 0; j < p.W_out; ++j) {
                const int64_t j0 = tw.i0[j], j1 = tw.i1[j];
                out[j] = th.l0[i] * (tw.l0[j] * r0[j0] + tw.l1[j] * r0[j1]) +
                         th.l1[i] * (tw.l0[j] * r1[j0] + tw.l1[j] * r1[j1]);
            }
        }
    }
}

template <class T>
void bilinear_backward(const ResizeParams& p, const T* gy, T* gx) {
    const auto th = resize_linear_table<T>(p.H, p.H_out, p.scale_h, p.align_corners);
    const auto tw = resize_linear_table<T>(p.W, p.W_out, p.scale_w, p.align_corners);
#pragma omp parallel for if (p.planes > 1 && p.planes * p.H_out * p.W_out > 16384)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
        T* gp = gx + pl * p.H * p.W;
        std::fill(gp, gp + p.H * p.W, T(0));
        for (int64_t i = 0; i < p.H_out; ++i) {
            T* r0 = gp + th.i0[i] * p.W;
            T* r1 = gp + th.i1[i] * p.W;
            const T* g = gy + (pl * p.H_out + i) * p.W_out;
            for (int64_t j = 0; j < p.W_out; ++j) {
                const int64_t j0 = tw.i0[j], j1 = tw.i1[j];
                r0[j0] += th.l0[i] * tw.l0[j] * g[j];
                r0[j1] += th.l0[i] * tw.l1[j] * g[j];
                r1[j0] += th.l1[i] * tw.l0[j] * g[j];
                r1[j1] += th.l1[i] * tw.l1[j] * g[j];
            }
        }
    }
}

void check_float(const char* op, const Tensor& t) {
    CXR_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": dtype ", dtype_name(t.dtype()),
              " is not supported on the CPU (f32, f64)");
}

void nearest_backward_kernel(const ResizeParams& p, const Tensor& gy, const Tensor& gx) {
    check_float("upsample_nearest2d_backward", gy);
    if (gy.dtype() == DType::f32) nearest_backward(p, gy.data<float>(), gx.data<float>());
    else nearest_backward(p, gy.data<double>(), gx.data<double>());
}

void bilinear_forward_kernel(const ResizeParams& p, const Tensor& x, const Tensor& y) {
    check_float("upsample_bilinear2d", x);
    if (x.dtype() == DType::f32) bilinear_forward(p, x.data<float>(), y.data<float>());
    else bilinear_forward(p, x.data<double>(), y.data<double>());
}

void bilinear_backward_kernel(const ResizeParams& p, const Tensor& gy, const Tensor& gx) {
    check_float("upsample_bilinear2d_backward", gy);
    if (gy.dtype() == DType::f32) bilinear_backward(p, gy.data<float>(), gx.data<float>());
    else bilinear_backward(p, gy.data<double>(), gx.data<double>());
}

// ---- pad ----
// Per dim: the input index each output index reads, or -1 (constant padding).

// Calls body(out_offset, in_offset or -1) for every output element in row-major order.
template <class Body>
void for_each_padded(const PadParams& p, Body&& body) {
    const int64_t nd = (int64_t)p.out_sizes.size();
    for (int64_t s : p.out_sizes)
        if (s == 0) return;
    if (nd == 0) {
        body(0, 0);
        return;
    }
    const auto tables = pad_source_tables(p);
    const Shape in_strides = contiguous_strides(p.in_sizes);
    const int64_t inner = p.out_sizes[nd - 1];
    const std::vector<int64_t>& last = tables[nd - 1];
    std::vector<int64_t> counter(nd - 1, 0);
    int64_t out_off = 0;
    while (true) {
        int64_t base = 0;  // input offset of the outer coordinates, -1 when any of them is padding
        for (int64_t d = 0; d < nd - 1 && base >= 0; ++d) {
            const int64_t s = tables[d][counter[d]];
            base = s < 0 ? -1 : base + s * in_strides[d];
        }
        for (int64_t j = 0; j < inner; ++j, ++out_off)
            body(out_off, (base < 0 || last[j] < 0) ? -1 : base + last[j]);
        int64_t d = nd - 2;
        for (; d >= 0; --d) {
            if (++counter[d] < p.out_sizes[d]) break;
            counter[d] = 0;
        }
        if (d < 0) break;
    }
}

void pad_forward_kernel(const PadParams& p, const Tensor& x, const Tensor& y) {
    CXR_DISPATCH_ALL(x.dtype(), "pad", {
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* yp = y.data<scalar_t>();
        const scalar_t v = static_cast<scalar_t>(static_cast<typename ComputeType<scalar_t>::type>(p.value));
        for_each_padded(p, [&](int64_t o, int64_t s) { yp[o] = s < 0 ? v : xp[s]; });
    });
}

template <class T>
void pad_backward(const PadParams& p, const T* gy, T* gx) {
    std::fill(gx, gx + shape_numel(p.in_sizes), T(0));
    for_each_padded(p, [&](int64_t o, int64_t s) {
        if (s >= 0) gx[s] += gy[o];
    });
}

void pad_backward_kernel(const PadParams& p, const Tensor& gy, const Tensor& gx) {
    check_float("pad_backward", gy);
    if (gy.dtype() == DType::f32) pad_backward(p, gy.data<float>(), gx.data<float>());
    else pad_backward(p, gy.data<double>(), gx.data<double>());
}

}  // namespace

void register_resize_kernels(KernelRegistry& r) {
    register_kernel<ResizeKernel>(r, "upsample_nearest2d_forward", DeviceType::CPU, nearest_forward_kernel);
    register_kernel<ResizeKernel>(r, "upsample_nearest2d_backward", DeviceType::CPU, nearest_backward_kernel);
    register_kernel<ResizeKernel>(r, "upsample_bilinear2d_forward", DeviceType::CPU, bilinear_forward_kernel);
    register_kernel<ResizeKernel>(r, "upsample_bilinear2d_backward", DeviceType::CPU, bilinear_backward_kernel);
    register_kernel<PadKernel>(r, "pad_forward", DeviceType::CPU, pad_forward_kernel);
    register_kernel<PadKernel>(r, "pad_backward", DeviceType::CPU, pad_backward_kernel);
}

}  // namespace cxr::tensor::cpu
