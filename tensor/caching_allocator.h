// A device-agnostic caching allocator (DESIGN.md §3 "Memory"): the logic the CUDA backend puts in front of
// cudaMalloc/cudaFree so that a training loop reuses blocks instead of calling the driver. The raw allocator is
// injected (RawAllocator), so the same class is tested on the CPU with a fake one.
//
// Rules it follows:
//   * Size classes. A request of n > 0 bytes is rounded up to a block size:
//       n <= kSmallLimit (1 MiB):  a multiple of kSmallAlign (512 B)       -> the "small" pool
//       n >  kSmallLimit:          a multiple of kLargeAlign (2 MiB)       -> the "large" pool
//     round_size() is that function. allocate(0) returns nullptr and changes nothing.
//   * No splitting. A block is always one whole raw allocation of its rounded size; it is never cut into pieces
//     and pieces are never merged. This keeps the bookkeeping trivial and makes every pointer handed out the
//     start of a raw allocation (compute-sanitizer sees exact bounds when caching is off). The price is internal
//     waste of at most 511 B for small blocks and under 2 MiB for large ones, plus the reuse limit below.
//   * Reuse (best fit, bounded). A freed block goes to the free list of its (device, stream, pool). A request
//     on (device, stream) takes the smallest cached block of that list whose size is >= the rounded size:
//       small pool: only a block of exactly the rounded size;
//       large pool: a block of at most 2 x the rounded size (so a 2 MiB request never pins a 1 GiB block).
//     Otherwise it calls the raw allocator.
//   * Stream-ordered reuse. Blocks are only reused on the stream they were freed on: work queued on that stream
//     before the free finishes before work queued after the reuse, so no synchronisation is needed. A block
//     used on another stream must be synchronised by the caller before it is freed (no record_stream).
//   * Out of memory. RawAllocator::alloc returns nullptr when the device is full. The allocator then frees every
//     cached block of that device (empty_cache for the device) and retries once; if that fails too it throws
//     cxr::Error naming the request, the rounded size, the device and the statistics.
//   * CXR_CUDA_CACHE=0 in the environment (read when the allocator is constructed) disables caching: every
//     allocate calls the raw allocator with the exact requested size and every deallocate frees immediately,
//     for debugging with compute-sanitizer. Statistics are still kept (cache_hits stays 0).
//   * Errors: deallocate of a pointer that is cached (already freed) is a "double free"; of a pointer this
//     allocator never handed out an "unknown pointer". Both throw cxr::Error and change nothing.
//   * Thread-safe (one mutex). Statistics are per device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cxr::tensor {

// The allocator underneath the cache (cudaMalloc/cudaFree on CUDA; a fake in tests).
struct RawAllocator {
    virtual ~RawAllocator() = default;
    // nbytes > 0 on `device`; returns nullptr when the device is out of memory (other failures may throw).
    virtual void* alloc(size_t nbytes, int device) = 0;
    virtual void free(void* ptr, int device) = 0;
};

// Opaque stream handle (a cudaStream_t cast to an integer on CUDA); 0 is the default stream.
using StreamId = uint64_t;

// Per-device statistics, in bytes of block sizes (rounded sizes; exact sizes when caching is off).
struct CachingAllocatorStats {
    uint64_t allocated = 0;       // bytes of blocks handed out and not yet freed
    uint64_t reserved = 0;        // bytes held from the raw allocator (allocated + cached)
    uint64_t peak_allocated = 0;  // maxima since construction or reset_peak_stats()
    uint64_t peak_reserved = 0;
    uint64_t num_allocs = 0;      // allocate() calls with nbytes > 0
    uint64_t num_raw_allocs = 0;  // successful raw allocations
    uint64_t num_raw_frees = 0;
    uint64_t cache_hits = 0;      // allocate() calls served from the cache
    uint64_t num_oom_retries = 0; // raw allocations that failed and were retried after emptying the cache
};

class CachingAllocator {
public:
    static constexpr size_t kSmallAlign = 512;
    static constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
    static constexpr size_t kLargeAlign = size_t(2) << 20;  // 2 MiB

    // Caching on unless the environment has CXR_CUDA_CACHE=0.
    explicit CachingAllocator(RawAllocator& raw);
    CachingAllocator(RawAllocator& raw, bool caching_enabled);
    // Returns every cached block to the raw allocator. Blocks still handed out are left alone (leaked).
    ~CachingAllocator();
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // The block size a request of n bytes is rounded to (see the header comment); round_size(0) == 0.
    static size_t round_size(size_t nbytes);
    // True unless CXR_CUDA_CACHE is set to "0".
    static bool caching_enabled_by_env();

    void* allocate(size_t nbytes, int device, StreamId stream = 0);
    void deallocate(void* ptr);  // nullptr is a no-op
    // Frees every cached (not handed-out) block of every device / of one device.
    void empty_cache();
    void empty_cache(int device);

    bool caching_enabled() const { return caching_; }
    CachingAllocatorStats stats(int device) const;
    void reset_peak_stats(int device);
    // The statistics of a device as one line, "allocated 1.0 MiB, reserved 2.0 MiB, ...".
    std::string stats_str(int device) const;

private:
    struct Block {
        size_t size = 0;
        int device = 0;
        StreamId stream = 0;
    };
    // (device, stream, is_large) -> size -> pointers of cached blocks of that size
    struct PoolKey {
        int device;
        StreamId stream;
        bool large;
        bool operator<(const PoolKey& o) const {
            if (device != o.device) return device < o.device;
            if (stream != o.stream) return stream < o.stream;
            return large < o.large;
        }
    };

    void* raw_alloc_locked(size_t size, int device);
    void empty_cache_locked(int device, bool all_devices);
    std::string stats_str_locked(int device) const;

    RawAllocator& raw_;
    const bool caching_;
    mutable std::mutex mutex_;
    std::unordered_map<void*, Block> active_;  // handed out
    std::unordered_map<void*, Block> cached_;  // in a free list
    std::map<PoolKey, std::multimap<size_t, void*>> free_lists_;
    std::map<int, CachingAllocatorStats> stats_;
};

// Formats a byte count as "512 B", "1.5 KiB", "2.0 MiB", "3.25 GiB" (for messages and `cxr backends`).
std::string format_bytes(uint64_t nbytes);

}  // namespace cxr::tensor
