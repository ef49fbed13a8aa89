// Deterministic warp / block reductions shared by the CUDA reduce, softmax and norm kernels
// (tensor/cuda/{reduce,softmax,norm}.cu).
//
// Algorithm: each thread first folds its strided share of a row sequentially (i = rank, rank + T, ...), then the
// team combines the per-thread states in a fixed tree: warp shuffles (__shfl_down_sync, offsets 16, 8, 4, 2, 1),
// then, for a block, one value per warp in shared memory folded by warp 0 the same way. The combination order
// depends only on the launch shape (blockDim = kBlock, a team of 32 or kBlock threads), never on timing, so
// results are bit-identical from run to run. No floating-point atomics.
//
// A "combine op" is a small struct with `State identity() const` and `State combine(State a, State b) const`.
// A team is either one warp (TEAM = 32, for short rows) or one block (TEAM = kBlock, for long rows).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "tensor/dtype.h"

namespace cxr::tensor::cuda {

constexpr int kBlock = 256;                // threads per block of every row kernel
constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kWarpRowMax = 1024;      // rows up to this length get one warp each, longer rows one block

// Accumulation type: f64 inputs accumulate in f64, f32/f16/bf16 in f32.
template <class T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };

// Blocks for a grid-stride loop over `teams` teams of `team` threads (blockDim = kBlock).
inline unsigned team_grid(int64_t teams, int team) {
    const int64_t per_block = kBlock / team;
    int64_t b = (teams + per_block - 1) / per_block;
    const int64_t cap = 65535LL * 8;
    return (unsigned)(b < 1 ? 1 : (b > cap ? cap : b));
}

// __shfl_down_sync / __shfl_sync of any trivially copyable state, 32 bits at a time.
template <class S>
__device__ __forceinline__ S shfl_down_any(const S& v, int delta) {
    constexpr int W = (int)((sizeof(S) + 3) / 4);
    int buf[W] = {};
    memcpy(buf, &v, sizeof(S));
#pragma unroll
    for (int k = 0; k < W; ++k) buf[k] = __shfl_down_sync(kFullMask, buf[k], delta);
    S out;
    memcpy(&out, buf, sizeof(S));
    return out;
}

template <class S>
__device__ __forceinline__ S shfl_idx_any(const S& v, int src) {
    constexpr int W = (int)((sizeof(S) + 3) / 4);
    int buf[W] = {};
    memcpy(buf, &v, sizeof(S));
#pragma unroll
    for (int k = 0; k < W; ++k) buf[k] = __shfl_sync(kFullMask, buf[k], src);
    S out;
    memcpy(&out, buf, sizeof(S));
    return out;
}

// Lane 0 ends with the combination of the 32 lanes' states (fixed tree order).
template <class Op, class S>
__device__ __forceinline__ S warp_reduce(const Op& op, S s) {
#pragma unroll
    for (int d = kWarp / 2; d > 0; d >>= 1) s = op.combine(s, shfl_down_any(s, d));
    return s;
}

// Every thread of the block gets the combination of all threads' states. Needs blockDim.x a multiple of 32 and
// every thread of the block to call it (it synchronises).
template <class Op, class S>
__device__ S block_reduce(const Op& op, S s) {
    __shared__ __align__(16) unsigned char smem_raw[kWarp * sizeof(S)];
    S* smem = reinterpret_cast<S*>(smem_raw);
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nwarps = blockDim.x / kWarp;
    s = warp_reduce(op, s);
    __syncthreads();  // a previous call's readers of smem[0] are done
    if (lane == 0) smem[warp] = s;
    __syncthreads();
    if (warp == 0) {
        S t = lane < nwarps ? smem[lane] : op.identity();
        t = warp_reduce(op, t);
        if (lane == 0) smem[0] = t;
    }
    __syncthreads();
    return smem[0];
}

// A team of TEAM threads (one warp or the whole block) working on one row at a time.
template <int TEAM>
struct Team {
    int rank;       // thread's index inside the team
    int64_t id;     // team index in the grid
    int64_t count;  // teams in the grid
    __device__ Team()
        : rank((int)(threadIdx.x % TEAM)),
          id((int64_t)blockIdx.x * (blockDim.x / TEAM) + threadIdx.x / TEAM),
          count((int64_t)gridDim.x * (blockDim.x / TEAM)) {}
    // Every thread of the team gets the team's combined state.
    template <class Op, class S>
    __device__ S all_reduce(const Op& op, S s) const {
        if constexpr (TEAM == kWarp) {
            return shfl_idx_any(warp_reduce(op, s), 0);
        } else {
            return block_reduce(op, s);
        }
    }
};

// ---- combine ops ----

template <class A>
struct SumCombine {
    __device__ A identity() const { return A(0); }
    __device__ A combine(A a, A b) const { return a + b; }
};

// Maximum; a NaN on either side may win (the caller's later arithmetic then turns the row into NaN, as the CPU).
template <class A>
struct MaxCombine {
    __device__ A identity() const { return -INFINITY; }
    __device__ A combine(A a, A b) const { return b > a ? b : a; }
};

template <class A>
struct Pair {
    A a, b;
};

template <class A>
struct PairSumCombine {
    __device__ Pair<A> identity() const { return Pair<A>{A(0), A(0)}; }
    __device__ Pair<A> combine(Pair<A> x, Pair<A> y) const { return Pair<A>{x.a + y.a, x.b + y.b}; }
};

}  // namespace cxr::tensor::cuda
