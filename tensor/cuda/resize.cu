// CUDA kernels of the resize family, under the CPU's names (tensor/cpu/resize.cpp): "upsample_nearest2d_forward"
// / "_backward", "upsample_bilinear2d_forward" / "_backward", "pad_forward", "pad_backward". Formulas in
// tensor/ops/resize.h. Source-index tables are computed on the host with the CPU's arithmetic (float scale for
// nearest, the tensor's own precision for bilinear, the same reflect/circular rules for pad) and uploaded, so the
// picked source pixels agree exactly with the CPU.
//
// Forward kernels: one thread per output element (grid-stride). Backward kernels are in GATHER form — one
// thread per input element sums the outputs that read it, found through inverse tables built on the host:
//   nearest   — the outputs reading input row h form one range (the table is non-decreasing);
//   bilinear  — two ranges per axis: outputs with i0 == h (weight λ0) and with i1 == h (weight λ1);
//   pad       — per dim, a CSR list of the outputs reading input index s; the thread walks their Cartesian
//               product in row-major output order (the CPU's order).
// No atomics; results are deterministic. Nearest forward and pad forward take every dtype; the rest f32/f64
// (f16/bf16 also accepted, computed in float).
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/resize.h"

namespace cxr::tensor::cuda {

namespace {

template <class T> struct RAcc { using type = typename ComputeType<T>::type; };
template <class T>
__device__ inline typename RAcc<T>::type racc(T v) { return static_cast<typename RAcc<T>::type>(v); }
template <class T, class A>
__device__ inline T rfrom(A v) { return T(static_cast<typename ComputeType<T>::type>(v)); }

Tensor upload_i64(const std::vector<int64_t>& v, Device dev) {
    return from_blob_copy(v.data(), {(int64_t)v.size()}, DType::i64, dev);
}

// For a non-decreasing table over [0, in): range[2s], range[2s+1] = the outputs o with table[o] == s.
std::vector<int64_t> inverse_ranges(const std::vector<int64_t>& t, int64_t in) {
    std::vector<int64_t> r(2 * in, 0);
    for (int64_t s = 0; s < in; ++s) {
        r[2 * s] = std::lower_bound(t.begin(), t.end(), s) - t.begin();
        r[2 * s + 1] = std::upper_bound(t.begin(), t.end(), s) - t.begin();
    }
    return r;
}

template <class T>
__global__ void nearest_forward_kernel(ResizeParams p, const int64_t* th, const int64_t* tw, const T* x, T* y,
                                       int64_t n) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = o % p.W_out, i = (o / p.W_out) % p.H_out, pl = o / (p.W_out * p.H_out);
        y[o] = x[(pl * p.H + th[i]) * p.W + tw[j]];
    }
}

template <class T>
__global__ void nearest_backward_kernel(ResizeParams p, const int64_t* rh, const int64_t* rw, const T* gy, T* gx,
                                        int64_t n) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t w = e % p.W, h = (e / p.W) % p.H, pl = e / (p.W * p.H);
        T acc = T(0.0f);
        for (int64_t i = rh[2 * h]; i < rh[2 * h + 1]; ++i)
            for (int64_t j = rw[2 * w]; j < rw[2 * w + 1]; ++j)
                acc = rfrom<T>(racc(acc) + racc(gy[(pl * p.H_out + i) * p.W_out + j]));
        gx[e] = acc;
    }
}

void nearest_forward(const ResizeParams& p, const Tensor& x, const Tensor& y) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    const int64_t n = y.numel();
    if (n == 0) return;
    Tensor th = upload_i64(resize_nearest_table(p.H, p.H_out, p.scale_h), x.device());
    Tensor tw = upload_i64(resize_nearest_table(p.W, p.W_out, p.scale_w), x.device());
    CXR_DISPATCH_ALL(x.dtype(), "upsample_nearest2d", {
        nearest_forward_kernel<scalar_t><<<grid_blocks(n), 256>>>(p, th.data<int64_t>(), tw.data<int64_t>(),
                                                                    x.data<scalar_t>(), y.data<scalar_t>(), n);
    });
    after_launch("upsample_nearest2d_forward");
}

void nearest_backward(const ResizeParams& p, const Tensor& gy, const Tensor& gx) {
    const DeviceGuard device_guard(gy.device().index);  // the tensors' device, restored on return
    const int64_t n = gx.numel();
    if (n == 0) return;
    Tensor rh = upload_i64(inverse_ranges(resize_nearest_table(p.H, p.H_out, p.scale_h), p.H), gy.device());
    Tensor rw = upload_i64(inverse_ranges(resize_nearest_table(p.W, p.W_out, p.scale_w), p.W), gy.device());
    CXR_DISPATCH_FLOAT(gy.dtype(), "upsample_nearest2d_backward", {
        nearest_backward_kernel<scalar_t><<<grid_blocks(n), 256>>>(p, rh.data<int64_t>(), rw.data<int64_t>(),
                                                                     gy.data<scalar_t>(), gx.data<scalar_t>(), n);
    });
    after_launch("upsample_nearest2d_backward");
}

// ---- bilinear (weights: resize_linear_table in precision C, tensor/ops/resize.h, as the CPU) ----

// Device copy of one axis' table: idx = [i0..., i1...], inv = inverse ranges of i0 then of i1, lam = [l0..., l1...].
struct AxisTables {
    Tensor idx, inv, lam;
};

template <class C>
AxisTables upload_axis(const ResizeLinearTable<C>& t, int64_t in, Device dev) {
    std::vector<int64_t> idx(t.i0);
    idx.insert(idx.end(), t.i1.begin(), t.i1.end());
    std::vector<int64_t> inv = inverse_ranges(t.i0, in), inv1 = inverse_ranges(t.i1, in);
    inv.insert(inv.end(), inv1.begin(), inv1.end());
    std::vector<C> lam(t.l0);
    lam.insert(lam.end(), t.l1.begin(), t.l1.end());
    const DType dt = std::is_same_v<C, double> ? DType::f64 : DType::f32;
    return {upload_i64(idx, dev), upload_i64(inv, dev), from_blob_copy(lam.data(), {(int64_t)lam.size()}, dt, dev)};
}

template <class T, class C>
__global__ void bilinear_forward_kernel(ResizeParams p, const int64_t* ih, const C* lh, const int64_t* iw,
                                        const C* lw, const T* x, T* y, int64_t n) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = o % p.W_out, i = (o / p.W_out) % p.H_out, pl = o / (p.W_out * p.H_out);
        const T* r0 = x + (pl * p.H + ih[i]) * p.W;
        const T* r1 = x + (pl * p.H + ih[p.H_out + i]) * p.W;
        const int64_t j0 = iw[j], j1 = iw[p.W_out + j];
        const C h0 = lh[i], h1 = lh[p.H_out + i], w0 = lw[j], w1 = lw[p.W_out + j];
        y[o] = rfrom<T>(h0 * (w0 * C(racc(r0[j0])) + w1 * C(racc(r0[j1]))) +
                        h1 * (w0 * C(racc(r1[j0])) + w1 * C(racc(r1[j1]))));
    }
}

template <class T, class C>
__global__ void bilinear_backward_kernel(ResizeParams p, const int64_t* invh, const C* lh, const int64_t* invw,
                                         const C* lw, const T* gy, T* gx, int64_t n) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t w = e % p.W, h = (e / p.W) % p.H, pl = e / (p.W * p.H);
        const T* g = gy + pl * p.H_out * p.W_out;
        C acc = C(0);
        for (int sh = 0; sh < 2; ++sh) {  // outputs whose i0 (sh = 0) or i1 (sh = 1) is h
            const int64_t* rh = invh + sh * 2 * p.H + 2 * h;
            for (int64_t i = rh[0]; i < rh[1]; ++i) {
                const C wh = lh[sh * p.H_out + i];
                for (int sw = 0; sw < 2; ++sw) {
                    const int64_t* rw = invw + sw * 2 * p.W + 2 * w;
                    for (int64_t j = rw[0]; j < rw[1]; ++j)
                        acc += wh * lw[sw * p.W_out + j] * C(racc(g[i * p.W_out + j]));
                }
            }
        }
        gx[e] = rfrom<T>(acc);
    }
}

template <class T, bool Backward>
void bilinear_typed(const ResizeParams& p, const Tensor& in, const Tensor& out) {
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const Device dev = in.device();
    const AxisTables th = upload_axis<C>(resize_linear_table<C>(p.H, p.H_out, p.scale_h, p.align_corners), p.H, dev);
    const AxisTables tw = upload_axis<C>(resize_linear_table<C>(p.W, p.W_out, p.scale_w, p.align_corners), p.W, dev);
    const int64_t n = out.numel();
    if (Backward)
        bilinear_backward_kernel<T, C><<<grid_blocks(n), 256>>>(p, th.inv.data<int64_t>(), th.lam.data<C>(),
                                                                  tw.inv.data<int64_t>(), tw.lam.data<C>(),
                                                                  in.data<T>(), out.data<T>(), n);
    else
        bilinear_forward_kernel<T, C><<<grid_blocks(n), 256>>>(p, th.idx.data<int64_t>(), th.lam.data<C>(),
                                                                 tw.idx.data<int64_t>(), tw.lam.data<C>(),
                                                                 in.data<T>(), out.data<T>(), n);
    after_launch(Backward ? "upsample_bilinear2d_backward" : "upsample_bilinear2d_forward");
}

template <bool Backward>
void bilinear_kernel(const ResizeParams& p, const Tensor& in, const Tensor& out) {
    if (out.numel() == 0) return;
    CXR_DISPATCH_FLOAT(in.dtype(), Backward ? "upsample_bilinear2d_backward" : "upsample_bilinear2d",
                       { bilinear_typed<scalar_t, Backward>(p, in, out); });
}

// ---- pad ----
constexpr int kPadDims = 8;
struct PadGeom {
    int nd;
    int64_t in_sizes[kPadDims], out_sizes[kPadDims], in_strides[kPadDims], out_strides[kPadDims];
    int64_t table_off[kPadDims];  // forward: start of dim d's table (out_sizes[d] entries, -1 = constant)
    int64_t ptr_off[kPadDims];    // backward: start of dim d's CSR pointers (in_sizes[d] + 1 entries)
};

PadGeom pad_geom(const PadParams& p) {
    CXR_CHECK(p.in_sizes.size() <= (size_t)kPadDims, "pad (CUDA): at most ", kPadDims, " dims");
    PadGeom g{};
    g.nd = (int)p.in_sizes.size();
    const Shape is = contiguous_strides(p.in_sizes), os = contiguous_strides(p.out_sizes);
    for (int d = 0; d < g.nd; ++d) {
        g.in_sizes[d] = p.in_sizes[d], g.out_sizes[d] = p.out_sizes[d];
        g.in_strides[d] = is[d], g.out_strides[d] = os[d];
    }
    return g;
}

template <class T>
__global__ void pad_forward_kernel(PadGeom g, const int64_t* tables, const T* x, T* y, T value, int64_t n) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = o, src = 0;
        bool inside = true;
        for (int d = g.nd - 1; d >= 0; --d) {
            const int64_t c = rem % g.out_sizes[d];
            rem /= g.out_sizes[d];
            const int64_t s = tables[g.table_off[d] + c];
            if (s < 0) inside = false;
            else src += s * g.in_strides[d];
        }
        y[o] = inside ? x[src] : value;
    }
}

template <class T>
__global__ void pad_backward_kernel(PadGeom g, const int64_t* ptr, const int64_t* outs, const T* gy, T* gx,
                                    int64_t n) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t lo[kPadDims], hi[kPadDims], cur[kPadDims];
        int64_t rem = e;
        bool empty = false;
        for (int d = g.nd - 1; d >= 0; --d) {
            const int64_t s = rem % g.in_sizes[d];
            rem /= g.in_sizes[d];
            lo[d] = ptr[g.ptr_off[d] + s], hi[d] = ptr[g.ptr_off[d] + s + 1];
            cur[d] = lo[d];
            if (lo[d] == hi[d]) empty = true;
        }
        T acc = T(0.0f);
        if (!empty) {
            while (true) {  // odometer over the per-dim output lists, row-major
                int64_t off = 0;
                for (int d = 0; d < g.nd; ++d) off += outs[cur[d]] * g.out_strides[d];
                acc = rfrom<T>(racc(acc) + racc(gy[off]));
                int d = g.nd - 1;
                for (; d >= 0; --d) {
                    if (++cur[d] < hi[d]) break;
                    cur[d] = lo[d];
                }
                if (d < 0) break;
            }
        }
        gx[e] = acc;
    }
}

void pad_forward(const PadParams& p, const Tensor& x, const Tensor& y) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    const int64_t n = y.numel();
    if (n == 0) return;
    PadGeom g = pad_geom(p);
    const auto tables = pad_source_tables(p);
    std::vector<int64_t> flat;
    for (int d = 0; d < g.nd; ++d) {
        g.table_off[d] = (int64_t)flat.size();
        flat.insert(flat.end(), tables[d].begin(), tables[d].end());
    }
    flat.push_back(0);  // never empty
    Tensor t = upload_i64(flat, x.device());
    CXR_DISPATCH_ALL(x.dtype(), "pad", {
        const scalar_t v = static_cast<scalar_t>(static_cast<typename ComputeType<scalar_t>::type>(p.value));
        pad_forward_kernel<scalar_t><<<grid_blocks(n), 256>>>(g, t.data<int64_t>(), x.data<scalar_t>(),
                                                                y.data<scalar_t>(), v, n);
    });
    after_launch("pad_forward");
}

void pad_backward(const PadParams& p, const Tensor& gy, const Tensor& gx) {
    const DeviceGuard device_guard(gy.device().index);  // the tensors' device, restored on return
    const int64_t n = gx.numel();
    if (n == 0) return;
    PadGeom g = pad_geom(p);
    const auto tables = pad_source_tables(p);
    // CSR per dim: ptr (in + 1 entries, absolute positions into outs), outs = output indices grouped by input.
    std::vector<int64_t> ptr, outs;
    for (int d = 0; d < g.nd; ++d) {
        const int64_t in = p.in_sizes[d];
        std::vector<std::vector<int64_t>> lists(in);
        if (gy.numel() > 0)
            for (int64_t o = 0; o < p.out_sizes[d]; ++o)
                if (tables[d][o] >= 0) lists[tables[d][o]].push_back(o);
        g.ptr_off[d] = (int64_t)ptr.size();
        for (int64_t s = 0; s < in; ++s) {
            ptr.push_back((int64_t)outs.size());
            outs.insert(outs.end(), lists[s].begin(), lists[s].end());
        }
        ptr.push_back((int64_t)outs.size());
    }
    ptr.push_back(0), outs.push_back(0);  // never empty
    Tensor tp = upload_i64(ptr, gy.device()), to = upload_i64(outs, gy.device());
    CXR_DISPATCH_FLOAT(gy.dtype(), "pad_backward", {
        pad_backward_kernel<scalar_t><<<grid_blocks(n), 256>>>(g, tp.data<int64_t>(), to.data<int64_t>(),
                                                                 gy.data<scalar_t>(), gx.data<scalar_t>(), n);
    });
    after_launch("pad_backward");
}

}  // namespace

void register_resize_kernels(KernelRegistry& r) {
    register_kernel<ResizeKernel>(r, "upsample_nearest2d_forward", DeviceType::CUDA, nearest_forward);
    register_kernel<ResizeKernel>(r, "upsample_nearest2d_backward", DeviceType::CUDA, nearest_backward);
    register_kernel<ResizeKernel>(r, "upsample_bilinear2d_forward", DeviceType::CUDA, bilinear_kernel<false>);
    register_kernel<ResizeKernel>(r, "upsample_bilinear2d_backward", DeviceType::CUDA, bilinear_kernel<true>);
    register_kernel<PadKernel>(r, "pad_forward", DeviceType::CUDA, pad_forward);
    register_kernel<PadKernel>(r, "pad_backward", DeviceType::CUDA, pad_backward);
}

}  // namespace cxr::tensor::cuda
