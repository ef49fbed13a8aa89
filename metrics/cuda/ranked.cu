// CUDA kernels of the GPU AUROC / AUPRC and the bootstrap (metrics/gpu.h: GpuBinaryBatch). Formulas: gpu.h and
// classification.h (Mann-Whitney AUROC with half-credit ties, scikit-learn's average precision); resampling:
// statistics.h (Philox randint stream at word offset r · ceil4(n), tensor/philox.h STREAM SPEC).
//
// Layout. The K problems' known cases are concatenated ([M] arrays, problem k at [offset_k, offset_k + m_k)) and
// each slice is sorted once by descending score (CUB DeviceRadixSort, stable; -0.0 and +0.0 are adjacent and
// compare equal, so they share a tie block as on the CPU). Per sorted position a: case_[a] (the case index in
// [0, n)), flags_[a] (bit 0: positive, bit 1: last position of its tie block) and block_start_[a] (first position
// of its tie block: a max-scan of the block-start positions).
// Each problem's sorted order is cut into segments of at least kMinSegment positions whose boundaries are moved
// back to a tie-block start (so no tie block crosses a segment); the cut depends only on the data, never on R.
//
// Kernels (256 threads per block; no floating-point atomics; all integer sums are exact):
//   resample_counts  counts[r][i] = how often resample r drew case i: one thread per Philox block of 4 words,
//                    index = word mod n, integer atomicAdd (exact, so the counts equal bootstrap_weights').
//   segment_totals   one block per (resample, segment): the positive and negative weight of the segment.
//   segment_pass     one block per (resample, segment): streams the segment in tiles of 256 positions; a block scan
//                    (CUB BlockScan, integer pair) gives P(a), N(a), the weight before position a (the carry of the
//                    problem's earlier segments comes from segment_totals); at the last position e of tie block b
//                    (start s) it adds  w+_b (N(s) + N(e+1))  to U' and  w+_b · P(e+1) / (P(e+1) + N(e+1))  to AP,
//                    w+_b = P(e+1) − P(s). P(s), N(s) come from the tile's shared prefixes when s is in the tile,
//                    else from the "open block" carried over from the previous tile (the only block that can cross
//                    a tile boundary). Per-thread sums, then a fixed-tree block reduction.
//   rate_sums        one block per (resample, rate problem): numerator and denominator weights.
// The host folds the segments of each problem in order: W+ = Σ, W− = Σ, 2U = 2 W+ W− − Σ U', AP = Σ AP / W+,
// AUROC = (2U · ½) / (W+ W−) — the CPU's double arithmetic on the same exact integers (RankedBinary::auroc).
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "metrics/cuda/gpu_device.cuh"
#include "metrics/gpu.h"
#include "tensor/cuda/block_reduce.cuh"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/philox.h"

namespace cxr::metrics {

namespace {

using tensor::Device;
using tensor::DType;
using tensor::Tensor;
namespace tc = cxr::tensor::cuda;

using u64 = unsigned long long;  // exact 64-bit weight sums

constexpr int kThreads = tc::kBlock;                 // threads per block of every kernel here (256)
constexpr uint8_t kPositive = 1, kBlockEnd = 2;      // flags_ bits
constexpr int64_t kMinSegment = 4096;                // positions per segment, at least
constexpr int64_t kMaxSegmentsPerProblem = 512;      // segments of one problem, at most (before snapping)
constexpr size_t kCountsBudget = size_t(512) << 20;  // bytes of resample counts [R, n] u32 held at once
constexpr int64_t kMaxGrid = int64_t(1) << 20;       // blocks per launch; grid-stride loops cover the rest

// A contiguous piece [begin, end) of one problem's sorted order (absolute positions), starting at a tie-block start.
struct Segment {
    int64_t begin = 0, end = 0;
    int64_t first = 0;  // index of the problem's first segment (the carry sums segments first .. this − 1)
};

// (positive weight, negative weight): the block-scan element.
struct WeightPair {
    u64 p, n;  // no default member initialisers: CUB keeps these in shared memory; WeightPair{} is zero
};
__host__ __device__ inline WeightPair operator+(WeightPair a, WeightPair b) { return WeightPair{a.p + b.p, a.n + b.n}; }

// What segment_pass leaves per (resample, segment).
struct PassPartial {
    u64 u;      // Σ w+_b (N(s_b) + N(e_b + 1)) over the tie blocks of the segment
    double ap;  // Σ w+_b · P / (P + N) at the blocks' ends
};

// ---- weights: how often case c counts in resample r (r local to the pass) ----

struct UnitWeights {
    __device__ u64 operator()(int64_t, int32_t) const { return 1; }
};

struct CountWeights {
    const uint32_t* counts;  // [R, n]
    int64_t n;
    __device__ u64 operator()(int64_t r, int32_t c) const { return counts[r * n + c]; }
};

// ---- device memory from the backend's caching allocator, owned by a u8 tensor ----

template <class T>
struct DeviceBuffer {
    Tensor holder;
    T* ptr = nullptr;
    DeviceBuffer() = default;
    DeviceBuffer(int64_t count, int device) {
        holder = Tensor::empty({std::max<int64_t>(count, 1) * (int64_t)sizeof(T)}, DType::u8, Device::cuda(device));
        ptr = static_cast<T*>(holder.raw_data());
    }
};

template <class T>
void upload(T* dst, const std::vector<T>& src, cudaStream_t stream) {
    if (src.empty()) return;
    tc::check(cudaMemcpyAsync(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync (GPU metrics upload)");
}

template <class T>
std::vector<T> download(const T* src, int64_t count, cudaStream_t stream) {
    std::vector<T> out((size_t)count);
    if (count > 0)
        tc::check(cudaMemcpyAsync(out.data(), src, (size_t)count * sizeof(T), cudaMemcpyDeviceToHost, stream),
                  "cudaMemcpyAsync (GPU metrics download)");
    tc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (GPU metrics)");
    return out;
}

unsigned grid_for_jobs(int64_t jobs) { return (unsigned)std::max<int64_t>(1, std::min(jobs, kMaxGrid)); }

// ---- kernels ----

__global__ void iota_kernel(int32_t* out, int64_t m) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = (int32_t)i;
}

// After problem [off, off + m) is sorted: source = the concatenated input position of each sorted position.
__global__ void finish_sort_kernel(const double* keys, const int32_t* source, const int32_t* case_in,
                                   const uint8_t* positive_in, int32_t* case_out, uint8_t* flags_out,
                                   int32_t* start_mark, int64_t off, int64_t m) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t a = off + i;
        const int32_t g = source[a];
        const bool start = i == 0 || keys[a] != keys[a - 1];
        const bool end = i == m - 1 || keys[a + 1] != keys[a];
        case_out[a] = case_in[g];
        flags_out[a] = (uint8_t)((positive_in[g] ? kPositive : 0) | (end ? kBlockEnd : 0));
        start_mark[a] = start ? (int32_t)a : 0;  // the max-scan of these is each position's block start
    }
}

struct MaxI32 {
    __host__ __device__ int32_t operator()(int32_t a, int32_t b) const { return a > b ? a : b; }
};

__global__ void gather_i32_kernel(const int32_t* src, const int64_t* at, int64_t* out, int64_t count) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = src[at[i]];
}

// counts [R, n] (zeroed) += the draws of resamples first .. first + R − 1: resample r, draw j uses the stream word
// at absolute index r · stride + j (stride = ceil4(n)), i.e. Philox block (r · stride) / 4 + j / 4, lane j % 4.
__global__ void resample_counts_kernel(uint32_t* counts, int64_t n, int64_t resamples, uint64_t seed,
                                       uint64_t first, uint64_t stride) {
    const int64_t blocks_per_resample = (n + 3) / 4;
    const int64_t total = resamples * blocks_per_resample;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = t / blocks_per_resample, q = t % blocks_per_resample;
        uint32_t w[4];
        tensor::philox_block(seed, (first + (uint64_t)r) * stride / 4 + (uint64_t)q, w);
        uint32_t* row = counts + r * n;
        for (int lane = 0; lane < 4; ++lane) {
            const int64_t j = 4 * q + lane;
            if (j < n) atomicAdd(&row[w[lane] % (uint32_t)n], 1u);
        }
    }
}

// totals[job] = (positive weight, negative weight) of segment job % S under resample job / S.
template <class W>
__global__ void segment_totals_kernel(W weights, const Segment* segments, int64_t num_segments, int64_t jobs,
                                      const int32_t* case_, const uint8_t* flags, WeightPair* totals) {
    for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
        const int64_t r = job / num_segments;
        const Segment seg = segments[job % num_segments];
        tc::Pair<u64> acc{0, 0};
        for (int64_t a = seg.begin + threadIdx.x; a < seg.end; a += blockDim.x) {
            const u64 w = weights(r, case_[a]);
            if (flags[a] & kPositive)
                acc.a += w;
            else
                acc.b += w;
        }
        acc = tc::block_reduce(tc::PairSumCombine<u64>{}, acc);
        if (threadIdx.x == 0) totals[job] = WeightPair{acc.a, acc.b};
    }
}

// The weighted pass over segment job % S under resample job / S (see the header comment). blockDim = kThreads.
template <class W>
__global__ void segment_pass_kernel(W weights, const Segment* segments, int64_t num_segments, int64_t jobs,
                                    const int32_t* case_, const uint8_t* flags, const int32_t* block_start,
                                    const WeightPair* totals, PassPartial* out) {
    using Scan = cub::BlockScan<WeightPair, kThreads>;
    __shared__ typename Scan::TempStorage scan_storage;
    __shared__ u64 tile_p[kThreads], tile_n[kThreads];  // P(a), N(a) of the tile's positions
    __shared__ u64 open_p, open_n;                      // P(s), N(s) of the tie block open at the tile's start
    const int tid = threadIdx.x;
    for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
        const int64_t r = job / num_segments, s = job % num_segments;
        const Segment seg = segments[s];
        u64 carry_p = 0, carry_n = 0;  // weight of the problem's earlier segments: P, N at seg.begin
        for (int64_t e = seg.first; e < s; ++e) {
            const WeightPair t = totals[r * num_segments + e];
            carry_p += t.p;
            carry_n += t.n;
        }
        if (tid == 0) open_p = open_n = 0;  // a segment starts at a tie-block start: nothing is open
        u64 u = 0;
        double ap = 0.0;
        for (int64_t base = seg.begin; base < seg.end; base += kThreads) {
            const int64_t a = base + tid;
            const bool valid = a < seg.end;
            uint8_t f = 0;
            u64 w = 0;
            if (valid) {
                f = flags[a];
                w = weights(r, case_[a]);
            }
            const WeightPair in = (f & kPositive) ? WeightPair{w, 0} : WeightPair{0, w};
            WeightPair before, tile_total;
            Scan(scan_storage).ExclusiveSum(in, before, tile_total);
            const u64 p_before = carry_p + before.p, n_before = carry_n + before.n;  // P(a), N(a)
            tile_p[tid] = p_before;
            tile_n[tid] = n_before;
            __syncthreads();
            if (valid && (f & kBlockEnd)) {
                const int64_t bs = block_start[a];
                u64 p_start, n_start;
                if (bs >= base) {
                    p_start = tile_p[bs - base];
                    n_start = tile_n[bs - base];
                } else {
                    p_start = open_p;
                    n_start = open_n;
                }
                const u64 p_end = p_before + in.p, n_end = n_before + in.n;  // P(e + 1), N(e + 1)
                const u64 w_pos = p_end - p_start;
                if (w_pos > 0) {
                    u += w_pos * (n_start + n_end);
                    ap += (double)w_pos * ((double)p_end / (double)(p_end + n_end));
                }
            }
            __syncthreads();  // every reader of tile_*, open_* is done
            if (tid == 0) {
                const int64_t last = (base + kThreads < seg.end ? base + kThreads : seg.end) - 1;
                if (!(flags[last] & kBlockEnd)) {  // the tie block of `last` continues in the next tile
                    const int64_t bs = block_start[last];
                    if (bs >= base) {
                        open_p = tile_p[bs - base];
                        open_n = tile_n[bs - base];
                    }  // else: it was already open at this tile's start; open_* stay
                }
            }
            carry_p += tile_total.p;
            carry_n += tile_total.n;
            __syncthreads();  // open_* written; tile_* and the scan storage free for the next tile
        }
        u = tc::block_reduce(tc::SumCombine<u64>{}, u);
        ap = tc::block_reduce(tc::SumCombine<double>{}, ap);
        if (tid == 0) out[job] = PassPartial{u, ap};
    }
}

// out[job] = (numerator weight, denominator weight) of rate problem job % Q under resample job / Q.
template <class W>
__global__ void rate_sums_kernel(W weights, const int32_t* cases, const uint8_t* numerator, const int64_t* offsets,
                                 int64_t num_rates, int64_t jobs, WeightPair* out) {
    for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
        const int64_t r = job / num_rates, q = job % num_rates;
        tc::Pair<u64> acc{0, 0};
        for (int64_t i = offsets[q] + threadIdx.x; i < offsets[q + 1]; i += blockDim.x) {
            const u64 w = weights(r, cases[i]);
            acc.b += w;
            if (numerator[i]) acc.a += w;
        }
        acc = tc::block_reduce(tc::PairSumCombine<u64>{}, acc);
        if (threadIdx.x == 0) out[job] = WeightPair{acc.a, acc.b};
    }
}

}  // namespace

// ============================================================================================ GpuBinaryBatch

struct GpuBinaryBatch::Impl {
    int device = 0;
    int64_t n = 0;
    // problems
    std::vector<int64_t> size, positives;                  // [K]
    std::vector<int64_t> first_segment, segment_count;     // [K]
    int64_t num_segments = 0;
    DeviceBuffer<Segment> segments;                        // [S]
    DeviceBuffer<int32_t> case_, block_start;              // [M]
    DeviceBuffer<uint8_t> flags;                           // [M]
    // rates
    int64_t num_rates = 0;
    DeviceBuffer<int32_t> rate_cases;                      // [Σ |cases|]
    DeviceBuffer<uint8_t> rate_numerator;
    DeviceBuffer<int64_t> rate_offsets;                    // [Q + 1]

    // Values on `count` resamples (first .. first + count − 1), or the unit weights when unit (count = 1).
    BatchValues evaluate(bool unit, uint64_t seed, int64_t first, int64_t count) const;

    template <class W>
    void run_pass(const W& weights, int64_t resamples, cudaStream_t stream, std::vector<WeightPair>& totals,
                  std::vector<PassPartial>& partials, std::vector<WeightPair>& rates) const;
};

GpuBinaryBatch::GpuBinaryBatch(int64_t n, const std::vector<BinaryProblem>& problems,
                               const std::vector<RateProblem>& rates, int device)
    : impl_(std::make_unique<Impl>()) {
    gpu_detail::require_device("GpuBinaryBatch", device);
    CXR_CHECK(n >= 1 && n < (int64_t(1) << 31), "GpuBinaryBatch: the number of cases must be in [1, 2^31), got ", n);
    Impl& im = *impl_;
    im.device = device;
    im.n = n;
    const int64_t K = (int64_t)problems.size();
    // ---- the known cases of every problem, concatenated (host) ----
    std::vector<double> keys;
    std::vector<int32_t> cases;
    std::vector<uint8_t> positive;
    std::vector<int64_t> offset(K);
    size_t capacity = 0;
    for (const BinaryProblem& pr : problems) capacity += pr.subset ? pr.subset->size() : (size_t)n;
    keys.reserve(capacity);
    cases.reserve(capacity);
    positive.reserve(capacity);
    im.size.assign(K, 0);
    im.positives.assign(K, 0);
    for (int64_t k = 0; k < K; ++k) {
        const BinaryProblem& pr = problems[k];
        CXR_CHECK(pr.scores && pr.labels, pr.what, ": GpuBinaryBatch problem ", k, " has no scores or labels");
        check_binary_inputs(*pr.scores, *pr.labels, pr.what);
        CXR_CHECK((int64_t)pr.scores->size() == n, pr.what, ": ", pr.scores->size(), " scores but the batch has ", n,
                  " cases");
        offset[k] = (int64_t)keys.size();
        auto add = [&](int64_t i) {
            const int y = (*pr.labels)[i];
            if (y == -1) return;
            keys.push_back((*pr.scores)[i]);
            cases.push_back((int32_t)i);
            positive.push_back(y == 1 ? 1 : 0);
            im.positives[k] += y == 1;
        };
        if (pr.subset) {
            for (int64_t i : *pr.subset) {
                CXR_CHECK(i >= 0 && i < n, pr.what, ": subset index ", i, " out of range [0, ", n, ")");
                add(i);
            }
        } else {
            for (int64_t i = 0; i < n; ++i) add(i);
        }
        im.size[k] = (int64_t)keys.size() - offset[k];
        CXR_CHECK(keys.size() < (size_t(1) << 31), "GpuBinaryBatch: more than 2^31 known cases over all problems");
    }
    const int64_t M = (int64_t)keys.size();

    const tc::DeviceGuard device_guard(device);  // restored on return
    cudaStream_t stream = tc::current_stream(device);
    im.case_ = DeviceBuffer<int32_t>(M, device);
    im.block_start = DeviceBuffer<int32_t>(M, device);
    im.flags = DeviceBuffer<uint8_t>(M, device);
    if (M > 0) {
        // ---- sort each problem by descending score; tie blocks ----
        DeviceBuffer<double> keys_in(M, device), keys_out(M, device);
        DeviceBuffer<int32_t> source_in(M, device), source_out(M, device), case_in(M, device), start_mark(M, device);
        DeviceBuffer<uint8_t> positive_in(M, device);
        upload(keys_in.ptr, keys, stream);
        upload(case_in.ptr, cases, stream);
        upload(positive_in.ptr, positive, stream);
        iota_kernel<<<tc::grid_blocks(M), kThreads, 0, stream>>>(source_in.ptr, M);
        tc::after_launch("metrics_iota");
        size_t temp_bytes = 0;
        for (int64_t k = 0; k < K; ++k) {
            if (im.size[k] == 0) continue;
            size_t sort_bytes = 0, scan_bytes = 0;
            tc::check(cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, keys_in.ptr, keys_out.ptr,
                                                                source_in.ptr, source_out.ptr, (int)im.size[k], 0,
                                                                64, stream),
                      "cub::DeviceRadixSort::SortPairsDescending (size query)");
            tc::check(cub::DeviceScan::InclusiveScan(nullptr, scan_bytes, start_mark.ptr, im.block_start.ptr,
                                                     MaxI32{}, (int)im.size[k], stream),
                      "cub::DeviceScan::InclusiveScan (size query)");
            temp_bytes = std::max({temp_bytes, sort_bytes, scan_bytes});
        }
        DeviceBuffer<uint8_t> temp((int64_t)temp_bytes, device);
        for (int64_t k = 0; k < K; ++k) {
            const int64_t off = offset[k], m = im.size[k];
            if (m == 0) continue;
            size_t bytes = temp_bytes;
            tc::check(cub::DeviceRadixSort::SortPairsDescending(temp.ptr, bytes, keys_in.ptr + off, keys_out.ptr + off,
                                                                source_in.ptr + off, source_out.ptr + off, (int)m, 0,
                                                                64, stream),
                      "cub::DeviceRadixSort::SortPairsDescending");
            finish_sort_kernel<<<tc::grid_blocks(m), kThreads, 0, stream>>>(keys_out.ptr, source_out.ptr, case_in.ptr,
                                                                          positive_in.ptr, im.case_.ptr, im.flags.ptr,
                                                                          start_mark.ptr, off, m);
            tc::after_launch("metrics_finish_sort");
            bytes = temp_bytes;
            tc::check(cub::DeviceScan::InclusiveScan(temp.ptr, bytes, start_mark.ptr + off, im.block_start.ptr + off,
                                                     MaxI32{}, (int)m, stream),
                      "cub::DeviceScan::InclusiveScan");
        }
        // ---- segments: cut every L positions, each cut moved back to the start of its tie block ----
        std::vector<int64_t> cut_at;     // absolute positions whose block start is a cut
        std::vector<int64_t> cut_count(K, 0);
        for (int64_t k = 0; k < K; ++k) {
            const int64_t m = im.size[k];
            const int64_t len = std::max(kMinSegment, (m + kMaxSegmentsPerProblem - 1) / kMaxSegmentsPerProblem);
            for (int64_t j = len; j < m; j += len) {
                cut_at.push_back(offset[k] + j);
                ++cut_count[k];
            }
        }
        std::vector<int64_t> cuts;
        if (!cut_at.empty()) {
            DeviceBuffer<int64_t> d_at((int64_t)cut_at.size(), device), d_cut((int64_t)cut_at.size(), device);
            upload(d_at.ptr, cut_at, stream);
            gather_i32_kernel<<<tc::grid_blocks((int64_t)cut_at.size()), kThreads, 0, stream>>>(
                im.block_start.ptr, d_at.ptr, d_cut.ptr, (int64_t)cut_at.size());
            tc::after_launch("metrics_gather_cuts");
            cuts = download(d_cut.ptr, (int64_t)cut_at.size(), stream);
        }
        std::vector<Segment> segs;
        im.first_segment.assign(K, 0);
        im.segment_count.assign(K, 0);
        int64_t c = 0;
        for (int64_t k = 0; k < K; ++k) {
            im.first_segment[k] = (int64_t)segs.size();
            int64_t begin = offset[k];
            const int64_t end = offset[k] + im.size[k];
            for (int64_t j = 0; j < cut_count[k]; ++j, ++c) {
                const int64_t at = cuts[c];
                if (at <= begin) continue;  // a tie block longer than the segment length: no cut here
                segs.push_back(Segment{begin, at, im.first_segment[k]});
                begin = at;
            }
            if (end > begin) segs.push_back(Segment{begin, end, im.first_segment[k]});
            im.segment_count[k] = (int64_t)segs.size() - im.first_segment[k];
        }
        im.num_segments = (int64_t)segs.size();
        im.segments = DeviceBuffer<Segment>(im.num_segments, device);
        upload(im.segments.ptr, segs, stream);
        tc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (GpuBinaryBatch sort)");
    } else {
        im.first_segment.assign(K, 0);
        im.segment_count.assign(K, 0);
    }
    // ---- rates ----
    im.num_rates = (int64_t)rates.size();
    std::vector<int32_t> rate_cases;
    std::vector<uint8_t> rate_numerator;
    std::vector<int64_t> rate_offsets{0};
    for (size_t q = 0; q < rates.size(); ++q) {
        const RateProblem& rp = rates[q];
        CXR_CHECK(rp.cases.size() == rp.numerator.size(), "GpuBinaryBatch: rate problem ", q, " has ", rp.cases.size(),
                  " cases but ", rp.numerator.size(), " numerator flags");
        for (size_t j = 0; j < rp.cases.size(); ++j) {
            CXR_CHECK(rp.cases[j] >= 0 && rp.cases[j] < n, "GpuBinaryBatch: rate problem ", q, ": case index ",
                      rp.cases[j], " out of range [0, ", n, ")");
            rate_cases.push_back((int32_t)rp.cases[j]);
            rate_numerator.push_back(rp.numerator[j] ? 1 : 0);
        }
        rate_offsets.push_back((int64_t)rate_cases.size());
        CXR_CHECK(rate_cases.size() < (size_t(1) << 31), "GpuBinaryBatch: more than 2^31 rate entries");
    }
    if (im.num_rates > 0) {
        im.rate_cases = DeviceBuffer<int32_t>((int64_t)rate_cases.size(), device);
        im.rate_numerator = DeviceBuffer<uint8_t>((int64_t)rate_numerator.size(), device);
        im.rate_offsets = DeviceBuffer<int64_t>((int64_t)rate_offsets.size(), device);
        upload(im.rate_cases.ptr, rate_cases, stream);
        upload(im.rate_numerator.ptr, rate_numerator, stream);
        upload(im.rate_offsets.ptr, rate_offsets, stream);
        tc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (GpuBinaryBatch rates)");
    }
}

GpuBinaryBatch::~GpuBinaryBatch() = default;
GpuBinaryBatch::GpuBinaryBatch(GpuBinaryBatch&&) noexcept = default;
GpuBinaryBatch& GpuBinaryBatch::operator=(GpuBinaryBatch&&) noexcept = default;

namespace {
// A moved-from batch has no state: say so instead of dereferencing null.
template <class P>
const P& live(const std::unique_ptr<P>& impl) {
    CXR_CHECK(impl != nullptr, "GpuBinaryBatch: used after it was moved from");
    return *impl;
}
}  // namespace

int64_t GpuBinaryBatch::cases() const { return live(impl_).n; }
int64_t GpuBinaryBatch::problems() const { return (int64_t)live(impl_).size.size(); }
int64_t GpuBinaryBatch::rates() const { return live(impl_).num_rates; }
int64_t GpuBinaryBatch::size(int64_t k) const { return live(impl_).size.at((size_t)k); }
int64_t GpuBinaryBatch::positives(int64_t k) const { return live(impl_).positives.at((size_t)k); }

BatchValues GpuBinaryBatch::point() const { return live(impl_).evaluate(true, 0, 0, 1); }

BatchValues GpuBinaryBatch::resamples(uint64_t seed, int64_t first, int64_t count) const {
    CXR_CHECK(count >= 1, "GpuBinaryBatch::resamples: count must be >= 1, got ", count);
    CXR_CHECK(first >= 0, "GpuBinaryBatch::resamples: negative first resample ", first);
    return live(impl_).evaluate(false, seed, first, count);
}

template <class W>
void GpuBinaryBatch::Impl::run_pass(const W& weights, int64_t resamples, cudaStream_t stream,
                                    std::vector<WeightPair>& totals, std::vector<PassPartial>& partials,
                                    std::vector<WeightPair>& rate_sums) const {
    const int64_t S = num_segments, Q = num_rates;
    totals.clear();
    partials.clear();
    rate_sums.clear();
    if (S > 0) {
        const int64_t jobs = resamples * S;
        DeviceBuffer<WeightPair> d_totals(jobs, device);
        DeviceBuffer<PassPartial> d_partials(jobs, device);
        segment_totals_kernel<<<grid_for_jobs(jobs), kThreads, 0, stream>>>(weights, segments.ptr, S, jobs, case_.ptr,
                                                                           flags.ptr, d_totals.ptr);
        tc::after_launch("metrics_segment_totals");
        segment_pass_kernel<<<grid_for_jobs(jobs), kThreads, 0, stream>>>(
            weights, segments.ptr, S, jobs, case_.ptr, flags.ptr, block_start.ptr, d_totals.ptr, d_partials.ptr);
        tc::after_launch("metrics_segment_pass");
        totals = download(d_totals.ptr, jobs, stream);
        partials = download(d_partials.ptr, jobs, stream);
    }
    if (Q > 0) {
        const int64_t jobs = resamples * Q;
        DeviceBuffer<WeightPair> d_rates(jobs, device);
        rate_sums_kernel<<<grid_for_jobs(jobs), kThreads, 0, stream>>>(weights, rate_cases.ptr, rate_numerator.ptr,
                                                                      rate_offsets.ptr, Q, jobs, d_rates.ptr);
        tc::after_launch("metrics_rate_sums");
        rate_sums = download(d_rates.ptr, jobs, stream);
    }
}

BatchValues GpuBinaryBatch::Impl::evaluate(bool unit, uint64_t seed, int64_t first, int64_t count) const {
    const tc::DeviceGuard device_guard(device);  // restored on return
    cudaStream_t stream = tc::current_stream(device);
    const int64_t K = (int64_t)size.size(), S = num_segments, Q = num_rates;
    BatchValues out;
    out.resamples = count;
    out.problems = K;
    out.rates = Q;
    out.auroc.assign((size_t)(count * K), std::nullopt);
    out.auprc.assign((size_t)(count * K), std::nullopt);
    out.rate.assign((size_t)(count * Q), std::nullopt);
    // Resamples per pass: their counts [chunk, n] u32 within the budget.
    // Per pass also 32 B per (resample, segment or rate) job on the device and as much on the host: bounded too.
    int64_t chunk = unit ? 1 : std::max<int64_t>(1, std::min<int64_t>(count, (int64_t)(kCountsBudget / (4 * (size_t)n))));
    if (!unit && S + Q > 0)
        chunk = std::max<int64_t>(1, std::min<int64_t>(chunk, (int64_t)(kCountsBudget / (32 * (size_t)(S + Q)))));
    DeviceBuffer<uint32_t> counts;
    if (!unit) counts = DeviceBuffer<uint32_t>(chunk * n, device);
    std::vector<WeightPair> totals, rate_sums;
    std::vector<PassPartial> partials;
    for (int64_t c0 = 0; c0 < count; c0 += chunk) {
        const int64_t rc = std::min(chunk, count - c0);
        if (unit) {
            run_pass(UnitWeights{}, 1, stream, totals, partials, rate_sums);
        } else {
            tc::check(cudaMemsetAsync(counts.ptr, 0, (size_t)(rc * n) * sizeof(uint32_t), stream),
                      "cudaMemsetAsync (bootstrap counts)");
            const uint64_t stride = ((uint64_t)n + 3) / 4 * 4;  // ceil4(n) words per resample
            resample_counts_kernel<<<tc::grid_blocks(rc * ((n + 3) / 4)), kThreads, 0, stream>>>(
                counts.ptr, n, rc, seed, (uint64_t)(first + c0), stride);
            tc::after_launch("metrics_resample_counts");
            run_pass(CountWeights{counts.ptr, n}, rc, stream, totals, partials, rate_sums);
        }
        // ---- fold each problem's segments in order (host, exact integers; AP in a fixed order) ----
        for (int64_t rl = 0; rl < rc; ++rl) {
            const int64_t r = c0 + rl;
            for (int64_t k = 0; k < K; ++k) {
                u64 wp = 0, wn = 0, u = 0;
                double ap = 0.0;
                for (int64_t e = first_segment[k]; e < first_segment[k] + segment_count[k]; ++e) {
                    const WeightPair& t = totals[(size_t)(rl * S + e)];
                    const PassPartial& pp = partials[(size_t)(rl * S + e)];
                    wp += t.p;
                    wn += t.n;
                    u += pp.u;
                    ap += pp.ap;
                }
                if (wp > 0 && wn > 0) {
                    const u64 twice_u = 2 * wp * wn - u;  // 2U, exact
                    out.auroc[(size_t)(r * K + k)] = ((double)twice_u * 0.5) / ((double)wp * (double)wn);
                }
                if (wp > 0) out.auprc[(size_t)(r * K + k)] = ap / (double)wp;
            }
            for (int64_t q = 0; q < Q; ++q) {
                const WeightPair& t = rate_sums[(size_t)(rl * Q + q)];
                if (t.n > 0) out.rate[(size_t)(r * Q + q)] = (double)t.p / (double)t.n;
            }
        }
    }
    return out;
}

}  // namespace cxr::metrics
