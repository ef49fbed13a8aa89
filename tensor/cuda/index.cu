// CUDA kernels of the index family (tensor/ops/index.h): "index_select", "index_add", "gather", "scatter_add",
// every dtype, index always contiguous i64.
//
// Bounds: before each op a check kernel scans the index for values outside [0, n) and records the FIRST bad
// position with an integer atomicMin; the host reads that one word back (a synchronisation) and throws the same
// message as the CPU kernel (op, value, dim, valid range). Nothing is written when an index is bad.
//
// Algorithms (grid-stride loops, no floating-point atomics, deterministic, and in the CPU's summation order so
// results match the CPU bit for bit):
//   index_select — one thread per output element: out[o, k, i] = x[o, index[k], i] over the [outer, n, inner]
//                  split around dim.
//   index_add    — one thread per (o, i) column of the [outer, n, inner] view: it walks k = 0, 1, ... in order
//                  and adds src[o, k, i] into out[o, index[k], i]. Distinct threads own distinct columns, so
//                  duplicate indices accumulate sequentially in ascending k, as the CPU does.
//   gather       — one thread per output element (index coordinates), x read through its strides.
//   scatter_add  — one thread per line of the index tensor along dim (all coordinates but dim's): it walks the
//                  line in ascending order and adds into out along dim. Two lines never touch the same output
//                  element, so duplicates accumulate in the CPU's row-major order. (Parallelism is
//                  numel / size(dim); a very long 1-d scatter runs on one thread — correct, not fast.)
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/index.h"

namespace cxr::tensor::cuda {

namespace {

constexpr int kIdxDims = 8;
constexpr unsigned long long kNoBad = ~0ull;

__global__ void find_bad_index_kernel(const int64_t* idx, int64_t count, int64_t n, unsigned long long* first_bad) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < count; k += (int64_t)gridDim.x * blockDim.x)
        if (idx[k] < 0 || idx[k] >= n) atomicMin(first_bad, (unsigned long long)k);
}

// Throws (as the CPU kernels) unless every entry of the contiguous i64 `index` lies in [0, n).
void check_indices(const char* op, const Tensor& index, int64_t dim, int64_t n) {
    CXR_CHECK(index.dtype() == DType::i64 && index.is_contiguous() && index.is_cuda(), op,
              ": index must be a contiguous i64 CUDA tensor");
    const int64_t count = index.numel();
    if (count == 0) return;
    // the flag lives in the caching allocator (no cudaMalloc/cudaFree, which synchronise the device, per op)
    const Tensor flag_t = Tensor::empty({1}, DType::i64, index.device());
    auto* flag = static_cast<unsigned long long*>(flag_t.raw_data());
    unsigned long long host = kNoBad;
    check(cudaMemcpy(flag, &host, sizeof(host), cudaMemcpyHostToDevice), "index bounds check (flag)");
    find_bad_index_kernel<<<grid_blocks(count), 256>>>(index.data<int64_t>(), count, n, flag);
    after_launch("find_bad_index_kernel");
    check(cudaMemcpy(&host, flag, sizeof(host), cudaMemcpyDeviceToHost), "index bounds check (result)");
    if (host == kNoBad) return;
    int64_t bad = 0;
    check(cudaMemcpy(&bad, index.data<int64_t>() + host, sizeof(bad), cudaMemcpyDeviceToHost), "cudaMemcpy");
    if (n == 0) CXR_FAIL(op, ": index ", bad, " is out of range for dimension ", dim, " of size 0 (no valid index)");
    CXR_FAIL(op, ": index ", bad, " is out of range for dimension ", dim, " of size ", n, " (valid range [0, ", n - 1,
             "])");
}

struct Split3 {
    int64_t outer = 1, n = 1, inner = 1;
};

Split3 split_at(const Shape& sizes, int64_t dim) {
    Split3 s;
    for (int64_t d = 0; d < (int64_t)sizes.size(); ++d) {
        if (d < dim) s.outer *= sizes[d];
        else if (d == dim) s.n = sizes[d];
        else s.inner *= sizes[d];
    }
    return s;
}

template <class T>
__device__ inline void add_into(T& dst, T v) {
    using C = typename ComputeType<T>::type;
    if constexpr (std::is_same_v<T, bool>)
        dst = dst || v;
    else
        dst = T(C(C(dst) + C(v)));
}

// Sizes of the index tensor and the strides of the tensors walked with it.
struct Geom {
    int nd;
    int64_t sizes[kIdxDims];
    int64_t a_strides[kIdxDims];  // gather: x; scatter_add: out
    int64_t b_strides[kIdxDims];  // scatter_add: src
};

Geom make_geom(const Tensor& index, const Tensor& a, const Tensor* b) {
    CXR_CHECK(index.dim() <= kIdxDims, "index ops on CUDA support up to ", kIdxDims, " dims");
    Geom g{};
    g.nd = (int)index.dim();
    for (int d = 0; d < g.nd; ++d) {
        g.sizes[d] = index.size(d);
        g.a_strides[d] = a.stride(d);
        g.b_strides[d] = b ? b->stride(d) : 0;
    }
    return g;
}

template <class T>
__global__ void index_select_kernel(Split3 s, int64_t K, const int64_t* idx, const T* x, T* out, int64_t total) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e % s.inner, k = (e / s.inner) % K, o = e / (s.inner * K);
        out[e] = x[(o * s.n + idx[k]) * s.inner + i];
    }
}

template <class T>
__global__ void index_add_kernel(Split3 s, int64_t K, const int64_t* idx, T* out, const T* src, int64_t columns) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < columns; c += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = c % s.inner, o = c / s.inner;
        for (int64_t k = 0; k < K; ++k) add_into(out[(o * s.n + idx[k]) * s.inner + i], src[(o * K + k) * s.inner + i]);
    }
}

template <class T>
__global__ void gather_kernel(Geom g, int dim, const int64_t* idx, const T* x, T* out, int64_t total) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = e, off = 0;
        for (int d = g.nd - 1; d >= 0; --d) {
            const int64_t c = rem % g.sizes[d];
            rem /= g.sizes[d];
            off += (d == dim ? idx[e] : c) * g.a_strides[d];
        }
        out[e] = x[off];
    }
}

template <class T>
__global__ void scatter_add_kernel(Geom g, int dim, const int64_t* idx, T* out, const T* src, int64_t lines) {
    const int64_t len = g.sizes[dim];
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines; l += (int64_t)gridDim.x * blockDim.x) {
        // Coordinates of the line (dim's coordinate 0): out/src base offsets and the linear index of its start.
        int64_t rem = l, out_base = 0, src_base = 0, lin = 0, lin_stride = 1, dim_lin_stride = 1;
        for (int d = g.nd - 1; d >= 0; --d) {
            if (d == dim) {
                dim_lin_stride = lin_stride;
            } else {
                const int64_t c = rem % g.sizes[d];
                rem /= g.sizes[d];
                out_base += c * g.a_strides[d];
                src_base += c * g.b_strides[d];
                lin += c * lin_stride;
            }
            lin_stride *= g.sizes[d];
        }
        for (int64_t j = 0; j < len; ++j)
            add_into(out[out_base + idx[lin + j * dim_lin_stride] * g.a_strides[dim]],
                     src[src_base + j * g.b_strides[dim]]);
    }
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    const Split3 s = split_at(x.sizes(), dim);
    check_indices("index_select", index, dim, s.n);
    CXR_CHECK(x.is_contiguous() && out.is_contiguous(), "index_select: CUDA kernel expects contiguous tensors");
    const int64_t K = index.numel(), total = out.numel();
    if (total == 0) return;
    CXR_DISPATCH_ALL(x.dtype(), "index_select", {
        index_select_kernel<scalar_t><<<grid_blocks(total), 256>>>(s, K, index.data<int64_t>(), x.data<scalar_t>(),
                                                                    out.data<scalar_t>(), total);
    });
    after_launch("index_select");
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    const DeviceGuard device_guard(out.device().index);  // the tensors' device, restored on return
    const Split3 s = split_at(out.sizes(), dim);
    check_indices("index_add", index, dim, s.n);
    CXR_CHECK(out.is_contiguous() && src.is_contiguous(), "index_add: CUDA kernel expects contiguous tensors");
    const int64_t K = index.numel(), columns = s.outer * s.inner;
    if (K == 0 || columns == 0) return;
    CXR_DISPATCH_ALL(out.dtype(), "index_add", {
        index_add_kernel<scalar_t><<<grid_blocks(columns), 256>>>(s, K, index.data<int64_t>(), out.data<scalar_t>(),
                                                                   src.data<scalar_t>(), columns);
    });
    after_launch("index_add");
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    check_indices("gather", index, dim, x.size(dim));
    CXR_CHECK(out.is_contiguous(), "gather: CUDA kernel expects a contiguous output");
    const int64_t total = index.numel();
    if (total == 0) return;
    const Geom g = make_geom(index, x, nullptr);
    CXR_DISPATCH_ALL(x.dtype(), "gather", {
        gather_kernel<scalar_t><<<grid_blocks(total), 256>>>(g, (int)dim, index.data<int64_t>(), x.data<scalar_t>(),
                                                              out.data<scalar_t>(), total);
    });
    after_launch("gather");
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    const DeviceGuard device_guard(out.device().index);  // the tensors' device, restored on return
    check_indices("scatter_add", index, dim, out.size(dim));
    const int64_t total = index.numel();
    if (total == 0) return;
    const int64_t lines = total / index.size(dim);
    const Geom g = make_geom(index, out, &src);
    CXR_DISPATCH_ALL(out.dtype(), "scatter_add", {
        scatter_add_kernel<scalar_t><<<grid_blocks(lines), 256>>>(g, (int)dim, index.data<int64_t>(),
                                                                   out.data<scalar_t>(), src.data<scalar_t>(), lines);
    });
    after_launch("scatter_add");
}

}  // namespace

void register_index_kernels(KernelRegistry& r) {
    register_kernel<IndexSelectKernel>(r, "index_select", DeviceType::CUDA, index_select);
    register_kernel<IndexAddKernel>(r, "index_add", DeviceType::CUDA, index_add);
    register_kernel<GatherKernel>(r, "gather", DeviceType::CUDA, gather);
    register_kernel<ScatterAddKernel>(r, "scatter_add", DeviceType::CUDA, scatter_add);
}

}  // namespace cxr::tensor::cuda
