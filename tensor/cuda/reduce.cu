// CUDA kernels for the reduce family (tensor/ops/reduce.h: "reduce" with every ReduceOp) on a contiguous
// [outer, n] block; same semantics and dtypes as the CPU reference (tensor/cpu/reduce.cpp).
//
// Algorithm (deterministic, no atomics; helpers in tensor/cuda/block_reduce.cuh):
//   - rows of n ≤ 1024 elements: one warp per row; longer rows: one block (256 threads) per row. Each thread
//     folds its strided share sequentially, then warp shuffles and a shared-memory step combine the threads in
//     a fixed tree order.
//   - when there are few long rows (outer < 256), each row is split into `chunks` contiguous chunks (at least
//     16384 elements each, at most 1024 chunks; the count depends only on the shape, never on the GPU), one
//     block per chunk writes a partial state, and a second launch folds each row's partials with one warp.
// Accumulation: f64 sums in f64; f32/f16/bf16 sums in f32 (the CPU reference sums in double, hence the tests'
// f32 tolerance); integer and bool sums in i64. Extremes are compared in the compute type (f32 for f16/bf16);
// amax/amin write the selected input element itself (exact); argmax/argmin return the first index of the extreme,
// a NaN counting as the extreme (the first NaN wins), exactly as the CPU.
#include <cuda_runtime.h>

#include <cstdint>

#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/reduce.h"

namespace cxr::tensor::cuda {

namespace {

constexpr int64_t kMinChunk = 16384;  // elements per chunk when a row is split over several blocks
constexpr int64_t kMaxChunks = 1024;
constexpr int64_t kFewRows = 256;     // below this many long rows, split them

// ---- ops: State identity(), State combine(a, b), State load(row, i), void store(job, State) ----

template <class T, class A, class Out>
struct SumRows : SumCombine<A> {
    using State = A;
    const T* x;
    Out* out;
    int64_t n;
    __device__ A load(int64_t r, int64_t i) const {
        using C = typename ComputeType<T>::type;
        return A(C(x[r * n + i]));
    }
    __device__ void store(int64_t r, A s) const {
        if constexpr (std::is_same_v<Out, T>) {
            using C = typename ComputeType<T>::type;
            out[r] = T(C(s));
        } else {
            out[r] = Out(s);
        }
    }
};

template <class C>
struct ArgState {
    C v;
    int64_t i;  // < 0: empty
};

// The extreme of two states; NaN beats everything, ties go to the smaller index — so the result does not depend
// on the combination order and equals the CPU's sequential scan.
template <class C, bool MAX>
struct ArgCombine {
    __device__ ArgState<C> identity() const { return ArgState<C>{C(0), -1}; }
    __device__ ArgState<C> combine(ArgState<C> a, ArgState<C> b) const {
        if (a.i < 0) return b;
        if (b.i < 0) return a;
        const bool an = a.v != a.v, bn = b.v != b.v;
        if (an || bn) {
            if (an && bn) return a.i < b.i ? a : b;
            return an ? a : b;
        }
        if (MAX ? (b.v > a.v) : (b.v < a.v)) return b;
        if (MAX ? (a.v > b.v) : (a.v < b.v)) return a;
        return a.i < b.i ? a : b;
    }
};

template <class T, bool MAX, bool INDEX>
struct ExtremeRows : ArgCombine<typename ComputeType<T>::type, MAX> {
    using C = typename ComputeType<T>::type;
    using State = ArgState<C>;
    const T* x;
    T* out_value;        // amax/amin
    int64_t* out_index;  // argmax/argmin
    int64_t n;
    __device__ State load(int64_t r, int64_t i) const { return State{C(x[r * n + i]), i}; }
    __device__ void store(int64_t r, State s) const {
        if constexpr (INDEX)
            out_index[r] = s.i;
        else
            out_value[r] = x[r * n + s.i];
    }
};

// Stage 1 of a split row: the op's loads, states stored to buf[job].
template <class Op>
struct ToPartials {
    using State = typename Op::State;
    Op op;
    State* buf;
    __device__ State identity() const { return op.identity(); }
    __device__ State combine(State a, State b) const { return op.combine(a, b); }
    __device__ State load(int64_t r, int64_t i) const { return op.load(r, i); }
    __device__ void store(int64_t job, State s) const { buf[job] = s; }
};

// Stage 2: folds the `chunks` partial states of each row, then the op's store.
template <class Op>
struct FromPartials {
    using State = typename Op::State;
    Op op;
    const State* buf;
    int64_t chunks;
    __device__ State identity() const { return op.identity(); }
    __device__ State combine(State a, State b) const { return op.combine(a, b); }
    __device__ State load(int64_t r, int64_t i) const { return buf[r * chunks + i]; }
    __device__ void store(int64_t r, State s) const { op.store(r, s); }
};

// One warp per row (rows of n ≤ kWarpRowMax).
template <class Op>
__global__ void rows_warp_kernel(Op op, int64_t rows, int64_t n) {
    using S = typename Op::State;
    const Team<kWarp> t;
    for (int64_t r = t.id; r < rows; r += t.count) {
        S s = op.identity();
        for (int64_t i = t.rank; i < n; i += kWarp) s = op.combine(s, op.load(r, i));
        s = warp_reduce(op, s);
        if (t.rank == 0) op.store(r, s);
    }
}

// One block per job; job = row·chunks + chunk covers elements [chunk·chunk_len, min(n, (chunk+1)·chunk_len)).
template <class Op>
__global__ void rows_block_kernel(Op op, int64_t jobs, int64_t chunks, int64_t chunk_len, int64_t n) {
    using S = typename Op::State;
    const Team<kBlock> t;
    for (int64_t job = t.id; job < jobs; job += t.count) {
        const int64_t r = job / chunks, c = job % chunks;
        const int64_t begin = c * chunk_len;
        const int64_t end = begin + chunk_len < n ? begin + chunk_len : n;
        S s = op.identity();
        for (int64_t i = begin + t.rank; i < end; i += kBlock) s = op.combine(s, op.load(r, i));
        s = block_reduce(op, s);
        if (t.rank == 0) op.store(job, s);
    }
}

template <class Op>
void run_rows(const char* name, const Op& op, int64_t rows, int64_t n, Device device) {
    using S = typename Op::State;
    if (rows == 0) return;
    if (n <= kWarpRowMax) {
        rows_warp_kernel<<<team_grid(rows, kWarp), kBlock>>>(op, rows, n);
        after_launch(name);
        return;
    }
    int64_t chunks = 1;
    if (rows < kFewRows) {
        chunks = n / kMinChunk;
        const int64_t cap = kMaxChunks / rows;
        if (chunks > cap) chunks = cap;
        if (chunks < 1) chunks = 1;
    }
    if (chunks == 1) {
        rows_block_kernel<<<team_grid(rows, kBlock), kBlock>>>(op, rows, 1, n, n);
        after_launch(name);
        return;
    }
    const int64_t chunk_len = (n + chunks - 1) / chunks;
    chunks = (n + chunk_len - 1) / chunk_len;
    Tensor partial = Tensor::empty({rows * chunks * (int64_t)sizeof(S)}, DType::u8, device);  // [rows, chunks] states
    S* buf = reinterpret_cast<S*>(partial.data<uint8_t>());
    ToPartials<Op> stage1{op, buf};
    rows_block_kernel<<<team_grid(rows * chunks, kBlock), kBlock>>>(stage1, rows * chunks, chunks, chunk_len, n);
    after_launch(name);
    FromPartials<Op> stage2{op, buf, chunks};
    rows_warp_kernel<<<team_grid(rows, kWarp), kBlock>>>(stage2, rows, chunks);
    after_launch(name);
}

void reduce_kernel(ReduceOp op, const Tensor& x, const Tensor& out) {
    CXR_CHECK(x.dim() == 2 && x.is_contiguous() && out.is_contiguous() && out.numel() == x.size(0),
              "reduce (CUDA): expects a contiguous [outer, n] input and an [outer] output, got ",
              shape_str(x.sizes()), " and ", shape_str(out.sizes()));
    const DeviceGuard device_guard(x.device().index);  // restored on return
    const int64_t rows = x.size(0), n = x.size(1);
    if (op != ReduceOp::sum) CXR_CHECK(n > 0 || rows == 0, "max/min over an empty dimension");
    CXR_DISPATCH_ALL(x.dtype(), "reduce", {
        using T = scalar_t;
        using C = typename ComputeType<T>::type;
        const T* xp = x.data<T>();
        switch (op) {
            case ReduceOp::sum:
                if constexpr (std::is_floating_point_v<C>) {
                    using A = typename AccType<T>::type;
                    SumRows<T, A, T> k;
                    k.x = xp, k.out = out.data<T>(), k.n = n;
                    run_rows("reduce_sum", k, rows, n, x.device());
                } else {
                    SumRows<T, int64_t, int64_t> k;
                    k.x = xp, k.out = out.data<int64_t>(), k.n = n;
                    run_rows("reduce_sum", k, rows, n, x.device());
                }
                break;
            case ReduceOp::amax: {
                ExtremeRows<T, true, false> k;
                k.x = xp, k.out_value = out.data<T>(), k.out_index = nullptr, k.n = n;
                run_rows("reduce_amax", k, rows, n, x.device());
                break;
            }
            case ReduceOp::amin: {
                ExtremeRows<T, false, false> k;
                k.x = xp, k.out_value = out.data<T>(), k.out_index = nullptr, k.n = n;
                run_rows("reduce_amin", k, rows, n, x.device());
                break;
            }
            case ReduceOp::argmax: {
                ExtremeRows<T, true, true> k;
                k.x = xp, k.out_value = nullptr, k.out_index = out.data<int64_t>(), k.n = n;
                run_rows("reduce_argmax", k, rows, n, x.device());
                break;
            }
            case ReduceOp::argmin: {
                ExtremeRows<T, false, true> k;
                k.x = xp, k.out_value = nullptr, k.out_index = out.data<int64_t>(), k.n = n;
                run_rows("reduce_argmin", k, rows, n, x.device());
                break;
            }
        }
    });
}

}  // namespace

void register_reduce_kernels(KernelRegistry& r) {
    register_kernel<ReduceKernel>(r, "reduce", DeviceType::CUDA, reduce_kernel);
}

}  // namespace cxr::tensor::cuda
