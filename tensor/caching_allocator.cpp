// The caching allocator of caching_allocator.h: size classes, per-(device, stream) free lists, no splitting,
// statistics, the CXR_CUDA_CACHE=0 switch and the empty-cache-and-retry-once path on out-of-memory.
#include "tensor/caching_allocator.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tensor/error.h"

namespace cxr::tensor {

std::string format_bytes(uint64_t nbytes) {
    char buf[64];
    const double b = (double)nbytes;
    if (nbytes < 1024)
        std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)nbytes);
    else if (nbytes < (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
    else if (nbytes < (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1024.0 * 1024.0));
    else
        std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

bool CachingAllocator::caching_enabled_by_env() {
    const char* v = std::getenv("CXR_CUDA_CACHE");
    return !(v && std::string(v) == "0");
}

CachingAllocator::CachingAllocator(RawAllocator& raw) : CachingAllocator(raw, caching_enabled_by_env()) {}

CachingAllocator::CachingAllocator(RawAllocator& raw, bool caching_enabled) : raw_(raw), caching_(caching_enabled) {}

CachingAllocator::~CachingAllocator() {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        empty_cache_locked(0, /*all_devices=*/true);
    } catch (...) {
        // a destructor must not throw; the raw memory is then left to the process exit
    }
}

size_t CachingAllocator::round_size(size_t nbytes) {
    if (nbytes == 0) return 0;
    const size_t align = nbytes <= kSmallLimit ? kSmallAlign : kLargeAlign;
    CXR_CHECK(nbytes <= SIZE_MAX - (align - 1), "CachingAllocator: request of ", nbytes, " bytes is too large");
    return (nbytes + align - 1) / align * align;
}

void* CachingAllocator::raw_alloc_locked(size_t size, int device) {
    CachingAllocatorStats& st = stats_[device];
    void* p = raw_.alloc(size, device);
    if (!p) {
        // Out of memory: give the cached blocks of this device back and try once more.
        ++st.num_oom_retries;
        empty_cache_locked(device, false);
        p = raw_.alloc(size, device);
    }
    if (!p) return nullptr;
    ++st.num_raw_allocs;
    st.reserved += size;
    if (st.reserved > st.peak_reserved) st.peak_reserved = st.reserved;
    return p;
}

void* CachingAllocator::allocate(size_t nbytes, int device, StreamId stream) {
    if (nbytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    CachingAllocatorStats& st = stats_[device];
    ++st.num_allocs;
    const size_t size = caching_ ? round_size(nbytes) : nbytes;
    const bool large = size > kSmallLimit;

    void* p = nullptr;
    size_t block_size = size;
    if (caching_) {
        auto fl = free_lists_.find(PoolKey{device, stream, large});
        if (fl != free_lists_.end()) {
            auto it = fl->second.lower_bound(size);  // smallest cached size >= request
            const size_t limit = large ? 2 * size : size;
            if (it != fl->second.end() && it->first <= limit) {
                block_size = it->first;
                p = it->second;
                fl->second.erase(it);
                cached_.erase(p);
                ++st.cache_hits;
            }
        }
    }
    if (!p) {
        p = raw_alloc_locked(size, device);
        if (!p)
            CXR_FAIL("out of memory on device ", device, ": could not allocate ", nbytes, " bytes (",
                     format_bytes(nbytes), ", block of ", format_bytes(size),
                     ") even after emptying the cache; ", stats_str_locked(device),
                     ". Free tensors, lower the batch size, or set CXR_CUDA_CACHE=0 to debug");
    }
    active_[p] = Block{block_size, device, stream};
    st.allocated += block_size;
    if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
    return p;
}

void CachingAllocator::deallocate(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = active_.find(ptr);
    if (it == active_.end()) {
        if (cached_.count(ptr)) CXR_FAIL("CachingAllocator: double free of pointer ", ptr, " (already freed)");
        CXR_FAIL("CachingAllocator: deallocate of unknown pointer ", ptr, " (not allocated by this allocator)");
    }
    const Block b = it->second;
    active_.erase(it);
    CachingAllocatorStats& st = stats_[b.device];
    st.allocated -= b.size;
    if (!caching_) {
        raw_.free(ptr, b.device);
        ++st.num_raw_frees;
        st.reserved -= b.size;
        return;
    }
    cached_[ptr] = b;
    free_lists_[PoolKey{b.device, b.stream, b.size > kSmallLimit}].emplace(b.size, ptr);
}

void CachingAllocator::empty_cache_locked(int device, bool all_devices) {
    for (auto fl = free_lists_.begin(); fl != free_lists_.end();) {
        if (!all_devices && fl->first.device != device) {
            ++fl;
            continue;
        }
        CachingAllocatorStats& st = stats_[fl->first.device];
        for (const auto& kv : fl->second) {
            raw_.free(kv.second, fl->first.device);
            cached_.erase(kv.second);
            ++st.num_raw_frees;
            st.reserved -= kv.first;
        }
        fl = free_lists_.erase(fl);
    }
}

void CachingAllocator::empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    empty_cache_locked(0, true);
}

void CachingAllocator::empty_cache(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    empty_cache_locked(device, false);
}

CachingAllocatorStats CachingAllocator::stats(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = stats_.find(device);
    return it == stats_.end() ? CachingAllocatorStats{} : it->second;
}

void CachingAllocator::reset_peak_stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    CachingAllocatorStats& st = stats_[device];
    st.peak_allocated = st.allocated;
    st.peak_reserved = st.reserved;
}

std::string CachingAllocator::stats_str_locked(int device) const {
    auto it = stats_.find(device);
    const CachingAllocatorStats st = it == stats_.end() ? CachingAllocatorStats{} : it->second;
    return "allocated " + format_bytes(st.allocated) + ", reserved " + format_bytes(st.reserved) +
           ", peak allocated " + format_bytes(st.peak_allocated) + ", peak reserved " +
           format_bytes(st.peak_reserved) + ", raw allocations " + std::to_string(st.num_raw_allocs) +
           ", cache hits " + std::to_string(st.cache_hits) + (caching_ ? "" : " (caching off: CXR_CUDA_CACHE=0)");
}

std::string CachingAllocator::stats_str(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_str_locked(device);
}

}  // namespace cxr::tensor
