// CUDA backend, first step: device discovery, allocation, copies, synchronisation, and the elementwise family
// (fill, cast, unary, binary, compare, where) launched from the same single-source functors the CPU runs
// (tensor/ops/elementwise_functors.h). Every other op has no CUDA kernel yet and fails loudly through the kernel
// registry. The caching allocator, streams and the remaining kernels belong to the CUDA issue.
// CXR_SYNC=1 synchronises after each kernel so that an error names the kernel that caused it.
#include "tensor/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "tensor/ops/elementwise.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"

namespace cxr::tensor::cuda {

namespace {

// check, sync_after_kernels and after_launch live in tensor/cuda/cuda_common.cuh (shared by every .cu file).

// cudaMalloc/cudaFree under the caching allocator. Out of memory is reported as nullptr (the allocator then
// empties its cache and retries once); any other CUDA error throws.
struct CudaRawAllocator final : RawAllocator {
    void* alloc(size_t nbytes, int device) override {
        const DeviceGuard device_guard(device);  // restored on return
        void* p = nullptr;
        const cudaError_t err = cudaMalloc(&p, nbytes);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear it: the caller retries
            return nullptr;
        }
        check(err, "cudaMalloc");
        return p;
    }
    void free(void* ptr, int device) override {  // never throws: the previous device is restored by hand
        int previous = 0;
        cudaGetDevice(&previous);
        cudaSetDevice(device);
        cudaFree(ptr);
        cudaSetDevice(previous);
    }
};

CachingAllocator& caching_allocator() {
    // Never destroyed: freeing device memory during static destruction could run after the CUDA runtime is gone.
    static CudaRawAllocator* raw = new CudaRawAllocator;
    static CachingAllocator* allocator = new CachingAllocator(*raw);
    return *allocator;
}

class CudaBackend final : public Backend {
public:
    const char* name() const override { return "cuda"; }
    int device_count() const override {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
            cudaGetLastError();  // no driver or no device: clear the sticky error, report none
            return 0;
        }
        return n;
    }
    // Through the caching allocator (tensor/caching_allocator.h), keyed by the thread's current stream.
    void* allocate(size_t nbytes, Device device) override {
        if (nbytes == 0) return nullptr;
        return caching_allocator().allocate(nbytes, device.index, stream_id(current_stream(device.index)));
    }
    void deallocate(void* ptr, size_t, Device) override { caching_allocator().deallocate(ptr); }
    // cudaHostAlloc'd memory; nullptr (never an error) when there is no device, so callers fall back to pageable.
    void* allocate_pinned_host(size_t nbytes) override {
        if (nbytes == 0 || device_count() == 0) return nullptr;
        void* p = nullptr;
        if (cudaHostAlloc(&p, nbytes, cudaHostAllocDefault) != cudaSuccess) {
            cudaGetLastError();
            return nullptr;
        }
        return p;
    }
    void deallocate_pinned_host(void* ptr) override {
        if (ptr) check(cudaFreeHost(ptr), "cudaFreeHost");
    }
    void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) override {
        if (nbytes == 0) return;
        cudaMemcpyKind kind = src_device.is_cpu() ? cudaMemcpyHostToDevice
                              : dst_device.is_cpu() ? cudaMemcpyDeviceToHost
                                                    : cudaMemcpyDeviceToDevice;
        check(cudaMemcpy(dst, src, nbytes, kind), "cudaMemcpy");
    }
    void synchronize(Device device) override {
        const DeviceGuard device_guard(device.index);  // restored on return
        check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
};

// Up to 8 dims of sizes and per-operand strides, passed by value to kernels.
constexpr int kMaxDims = 8;
template <int N>
struct Indexer {
    int nd;
    int64_t sizes[kMaxDims];
    int64_t strides[N][kMaxDims];
    __device__ void offsets(int64_t linear, int64_t* out) const {
        for (int k = 0; k < N; ++k) out[k] = 0;
        for (int d = nd - 1; d >= 0; --d) {
            int64_t i = linear % sizes[d];
            linear /= sizes[d];
            for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
        }
    }
};

template <int N>
Indexer<N> make_indexer(const Tensor& out, const Tensor* operands[N]) {
    CXR_CHECK(out.dim() <= kMaxDims, "CUDA elementwise kernels support up to ", kMaxDims, " dims");
    Indexer<N> ix{};
    ix.nd = (int)out.dim();
    for (int d = 0; d < ix.nd; ++d) {
        ix.sizes[d] = out.size(d);
        for (int k = 0; k < N; ++k) ix.strides[k][d] = operands[k]->stride(d);
    }
    return ix;
}

// Grid-stride loop calling body(linear index).
template <class Body>
__global__ void grid_loop(int64_t n, Body body) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        body(i);
}


template <class Body>
void launch(const char* name, int64_t n, Body body) {
    if (n == 0) return;
    grid_loop<<<grid_blocks(n), 256>>>(n, body);
    after_launch(name);
}

void fill_kernel(const Tensor& out, double value) {
    const DeviceGuard device_guard(out.device().index);  // the tensors' device, restored on return
    CXR_DISPATCH_ALL(out.dtype(), "fill", {
        const Tensor* ops[1] = {&out};
        auto ix = make_indexer<1>(out, ops);
        scalar_t* p = out.data<scalar_t>();
        launch("fill", out.numel(), [=] __device__(int64_t i) {
            int64_t o[1];
            ix.offsets(i, o);
            p[o[0]] = convert_value<scalar_t>(value);
        });
    });
}

void cast_kernel(const Tensor& src, const Tensor& dst) {
    const DeviceGuard device_guard(src.device().index);  // the tensors' device, restored on return
    CXR_DISPATCH_ALL(src.dtype(), "cast", {
        using src_t = scalar_t;
        const src_t* s = src.data<src_t>();
        CXR_DISPATCH_ALL(dst.dtype(), "cast", {
            const Tensor* ops[2] = {&dst, &src};
            auto ix = make_indexer<2>(dst, ops);
            scalar_t* d = dst.data<scalar_t>();
            launch("cast", dst.numel(), [=] __device__(int64_t i) {
                int64_t o[2];
                ix.offsets(i, o);
                d[o[0]] = convert_value<scalar_t>(s[o[1]]);
            });
        });
    });
}

template <class F>
void unary_typed(const Tensor& x, const Tensor& out, const EwParams& p) {
    CXR_DISPATCH_NUMERIC(out.dtype(), "unary", {
        using C = typename ComputeType<scalar_t>::type;
        if constexpr (!ew::functor_supports<F, C>()) {
            CXR_FAIL("unary op on integer dtype ", dtype_name(out.dtype()), " is not supported");
        } else {
        const Tensor* ops[2] = {&out, &x};
        auto ix = make_indexer<2>(out, ops);
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        launch("unary", out.numel(), [=] __device__(int64_t i) {
            int64_t o[2];
            ix.offsets(i, o);
            op[o[0]] = scalar_t(F()(C(xp[o[1]]), p));
        });
        }
    });
}

void unary_kernel(UnaryOp op, const Tensor& x, const Tensor& out, const EwParams& p) {
    const DeviceGuard device_guard(x.device().index);  // the tensors' device, restored on return
    switch (op) {
#define CXR_CASE(name) \
    case UnaryOp::name: unary_typed<ew::name>(x, out, p); break;
        CXR_UNARY_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

template <class F>
void binary_typed(const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p) {
    CXR_DISPATCH_NUMERIC(out.dtype(), "binary", {
        using C = typename ComputeType<scalar_t>::type;
        if constexpr (!ew::functor_supports<F, C>()) {
            CXR_FAIL("binary op on integer dtype ", dtype_name(out.dtype()), " is not supported");
        } else {
        const Tensor* ops[3] = {&out, &a, &b};
        auto ix = make_indexer<3>(out, ops);
        const scalar_t* ap = a.data<scalar_t>();
        const scalar_t* bp = b.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        launch("binary", out.numel(), [=] __device__(int64_t i) {
            int64_t o[3];
            ix.offsets(i, o);
            op[o[0]] = scalar_t(F()(C(ap[o[1]]), C(bp[o[2]]), p));
        });
        }
    });
}

void binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p) {
    const DeviceGuard device_guard(a.device().index);  // the tensors' device, restored on return
    switch (op) {
#define CXR_CASE(name) \
    case BinaryOp::name: binary_typed<ew::name>(a, b, out, p); break;
        CXR_BINARY_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

template <class F>
void compare_typed(const Tensor& a, const Tensor& b, const Tensor& out) {
    CXR_DISPATCH_ALL(a.dtype(), "compare", {
        using C = typename ComputeType<scalar_t>::type;
        const Tensor* ops[3] = {&out, &a, &b};
        auto ix = make_indexer<3>(out, ops);
        const scalar_t* ap = a.data<scalar_t>();
        const scalar_t* bp = b.data<scalar_t>();
        bool* op = out.data<bool>();
        launch("compare", out.numel(), [=] __device__(int64_t i) {
            int64_t o[3];
            ix.offsets(i, o);
            op[o[0]] = F()(C(ap[o[1]]), C(bp[o[2]]));
        });
    });
}

void compare_kernel(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    const DeviceGuard device_guard(a.device().index);  // the tensors' device, restored on return
    switch (op) {
#define CXR_CASE(name) \
    case CompareOp::name: compare_typed<ew::name>(a, b, out); break;
        CXR_COMPARE_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

void where_kernel(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
    const DeviceGuard device_guard(cond.device().index);  // the tensors' device, restored on return
    const bool* cp = cond.data<bool>();
    CXR_DISPATCH_ALL(out.dtype(), "where", {
        const Tensor* ops[4] = {&out, &cond, &a, &b};
        auto ix = make_indexer<4>(out, ops);
        const scalar_t* ap = a.data<scalar_t>();
        const scalar_t* bp = b.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        launch("where", out.numel(), [=] __device__(int64_t i) {
            int64_t o[4];
            ix.offsets(i, o);
            op[o[0]] = cp[o[1]] ? ap[o[2]] : bp[o[3]];
        });
    });
}

}  // namespace

Backend& backend() {
    static CudaBackend b;
    return b;
}

CachingAllocatorStats memory_stats(int device) { return caching_allocator().stats(device); }
void empty_cache() { caching_allocator().empty_cache(); }
bool caching_enabled() { return caching_allocator().caching_enabled(); }

void register_all_kernels(KernelRegistry& r) {
    register_kernel<FillKernel>(r, "fill", DeviceType::CUDA, fill_kernel);
    register_kernel<CastKernel>(r, "cast", DeviceType::CUDA, cast_kernel);
    register_kernel<UnaryKernel>(r, "unary", DeviceType::CUDA, unary_kernel);
    register_kernel<BinaryKernel>(r, "binary", DeviceType::CUDA, binary_kernel);
    register_kernel<CompareKernel>(r, "compare", DeviceType::CUDA, compare_kernel);
    register_kernel<WhereKernel>(r, "where", DeviceType::CUDA, where_kernel);
    register_reduce_kernels(r);
    register_softmax_kernels(r);
    register_norm_kernels(r);
    register_matmul_kernels(r);
    register_conv_kernels(r);
    register_pool_kernels(r);
    register_resize_kernels(r);
    register_index_kernels(r);
    register_random_kernels(r);
    register_attention_kernels(r);
    register_optim_kernels(r);
}

}  // namespace cxr::tensor::cuda
