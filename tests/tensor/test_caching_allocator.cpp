// Tests of tensor/caching_allocator.h on the CPU with a fake raw allocator that records every call and can be
// made to run out of memory: size classes (hand-computed rounding), reuse, per-stream separation, statistics and
// peaks, empty_cache, CXR_CUDA_CACHE=0, the empty-cache-and-retry-once path on OOM, and the error paths; and
// ([gpu][cuda]) that CUDA tensors go through the allocator, as tensor/cuda_memory.h reports.
#include "tests/support/testing.h"

#include <cstdlib>
#include <map>
#include <vector>

#include "tensor/backend.h"
#include "tensor/caching_allocator.h"
#include "tensor/cuda_memory.h"
#include "tensor/ops/creation.h"
#include "tensor/error.h"

using namespace cxr::tensor;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// A raw allocator over malloc that counts calls and refuses to hold more than `capacity` bytes at once.
struct FakeRaw final : RawAllocator {
    size_t capacity = SIZE_MAX;
    size_t held = 0;
    int allocs = 0, frees = 0, failures = 0;
    std::vector<size_t> alloc_sizes;
    std::map<void*, size_t> live;
    void* alloc(size_t nbytes, int device) override {
        REQUIRE(nbytes > 0);
        REQUIRE(device >= 0);
        if (held + nbytes > capacity) {
            ++failures;
            return nullptr;
        }
        void* p = std::malloc(nbytes);
        ++allocs;
        alloc_sizes.push_back(nbytes);
        held += nbytes;
        live[p] = nbytes;
        return p;
    }
    void free(void* p, int) override {
        auto it = live.find(p);
        REQUIRE(it != live.end());  // the allocator never frees a pointer twice or one it did not get
        held -= it->second;
        live.erase(it);
        ++frees;
        std::free(p);
    }
    ~FakeRaw() override {
        for (auto& kv : live) std::free(kv.first);
    }
};

}  // namespace

TEST_CASE("caching allocator: size classes round to 512 B up to 1 MiB, then to 2 MiB", "[cpu]") {
    CHECK(CachingAllocator::round_size(0) == 0);
    CHECK(CachingAllocator::round_size(1) == 512);
    CHECK(CachingAllocator::round_size(512) == 512);
    CHECK(CachingAllocator::round_size(513) == 1024);
    CHECK(CachingAllocator::round_size(1000) == 1024);
    CHECK(CachingAllocator::round_size(MiB - 1) == MiB);
    CHECK(CachingAllocator::round_size(MiB) == MiB);
    CHECK(CachingAllocator::round_size(MiB + 1) == 2 * MiB);
    CHECK(CachingAllocator::round_size(2 * MiB + 1) == 4 * MiB);
    CHECK(CachingAllocator::round_size(5 * MiB) == 6 * MiB);
    CHECK(CachingAllocator::round_size(100 * MiB) == 100 * MiB);
    CHECK_THROWS_AS(CachingAllocator::round_size(SIZE_MAX), cxr::Error);

    FakeRaw raw;
    CachingAllocator a(raw, true);
    void* p = a.allocate(1000, 0);
    void* q = a.allocate(3 * MiB, 0);
    REQUIRE(raw.alloc_sizes == std::vector<size_t>{1024, 4 * MiB});
    CHECK(a.stats(0).allocated == 1024 + 4 * MiB);
    CHECK(a.allocate(0, 0) == nullptr);
    CHECK(a.stats(0).num_allocs == 2);  // a zero-byte request is not counted
    a.deallocate(p);
    a.deallocate(q);
    a.deallocate(nullptr);  // no-op
}

TEST_CASE("caching allocator: a freed block is reused for the same size class without a raw call", "[cpu]") {
    FakeRaw raw;
    CachingAllocator a(raw, true);
    void* p = a.allocate(700, 0);  // block of 1024
    a.deallocate(p);
    CHECK(raw.frees == 0);
    void* q = a.allocate(1024, 0);  // same class -> same block
    CHECK(q == p);
    CHECK(raw.allocs == 1);
    CHECK(a.stats(0).cache_hits == 1);
    // A small request never takes a larger small block (exact class only).
    a.deallocate(q);
    void* r = a.allocate(512, 0);
    CHECK(r != p);
    CHECK(raw.allocs == 2);
    // Large pool: best fit up to 2x the rounded size.
    void* big = a.allocate(8 * MiB, 0);
    a.deallocate(big);
    void* l1 = a.allocate(5 * MiB, 0);  // rounds to 6 MiB; 8 <= 12 -> reuse
    CHECK(l1 == big);
    a.deallocate(l1);
    void* l2 = a.allocate(3 * MiB, 0);  // rounds to 4 MiB; 8 <= 8 -> reuse
    CHECK(l2 == big);
    a.deallocate(l2);
    void* l3 = a.allocate(2 * MiB, 0);  // 8 > 2 * 2 -> a new raw block
    CHECK(l3 != big);
    CHECK(raw.alloc_sizes.back() == 2 * MiB);
    // Small and large pools never mix: a 1 MiB (small) request does not take the cached 8 MiB block.
    void* s = a.allocate(MiB, 0);
    CHECK(s != big);
    CHECK(a.stats(0).cache_hits == 3);
    a.deallocate(r);
    a.deallocate(l3);
    a.deallocate(s);
}

TEST_CASE("caching allocator: statistics, peaks and empty_cache", "[cpu]") {
    FakeRaw raw;
    CachingAllocator a(raw, true);
    void* p = a.allocate(100, 0);      // 512
    void* q = a.allocate(3 * MiB, 0);  // 4 MiB
    auto st = a.stats(0);
    CHECK(st.allocated == 512 + 4 * MiB);
    CHECK(st.reserved == 512 + 4 * MiB);
    CHECK(st.peak_allocated == 512 + 4 * MiB);
    CHECK(st.num_raw_allocs == 2);
    a.deallocate(q);
    st = a.stats(0);
    CHECK(st.allocated == 512);
    CHECK(st.reserved == 512 + 4 * MiB);  // cached, still reserved
    CHECK(st.peak_allocated == 512 + 4 * MiB);
    a.reset_peak_stats(0);
    CHECK(a.stats(0).peak_allocated == 512);
    CHECK(a.stats(0).peak_reserved == 512 + 4 * MiB);
    a.empty_cache();
    st = a.stats(0);
    CHECK(st.reserved == 512);
    CHECK(st.num_raw_frees == 1);
    CHECK(raw.held == 512);  // the handed-out block was not touched
    // Per-device statistics and empty_cache(device).
    void* d1 = a.allocate(2000, 1);  // 2048 on device 1
    a.deallocate(d1);
    a.deallocate(p);
    CHECK(a.stats(1).reserved == 2048);
    CHECK(a.stats(0).reserved == 512);
    a.empty_cache(1);
    CHECK(a.stats(1).reserved == 0);
    CHECK(a.stats(0).reserved == 512);
    CHECK(a.stats(7).allocated == 0);  // a device never used: zeros
    CHECK(a.stats_str(0).find("reserved 512 B") != std::string::npos);
    CHECK(format_bytes(1536) == "1.50 KiB");
    CHECK(format_bytes(3 * MiB) == "3.00 MiB");
}

TEST_CASE("caching allocator: free lists are per stream (stream-ordered reuse)", "[cpu]") {
    FakeRaw raw;
    CachingAllocator a(raw, true);
    void* p = a.allocate(4096, 0, /*stream=*/11);
    a.deallocate(p);
    void* q = a.allocate(4096, 0, /*stream=*/22);  // other stream: not reused
    CHECK(q != p);
    CHECK(raw.allocs == 2);
    void* r = a.allocate(4096, 0, /*stream=*/11);  // same stream: reused
    CHECK(r == p);
    void* s = a.allocate(4096, 1, /*stream=*/11);  // same stream id on another device: not reused
    CHECK(s != p);
    CHECK(raw.allocs == 3);
    a.deallocate(q);
    a.deallocate(r);
    a.deallocate(s);
}

TEST_CASE("caching allocator: CXR_CUDA_CACHE=0 sends every free straight to the raw allocator", "[cpu]") {
    FakeRaw raw;
    ::setenv("CXR_CUDA_CACHE", "0", 1);
    CachingAllocator a(raw);  // reads the environment here
    ::unsetenv("CXR_CUDA_CACHE");
    CHECK_FALSE(a.caching_enabled());
    void* p = a.allocate(700, 0);
    CHECK(raw.alloc_sizes.back() == 700);  // exact size: sanitizers see the true bounds
    a.deallocate(p);
    CHECK(raw.frees == 1);
    void* q = a.allocate(700, 0);
    CHECK(raw.allocs == 2);
    auto st = a.stats(0);
    CHECK(st.cache_hits == 0);
    CHECK(st.allocated == 700);
    CHECK(st.reserved == 700);
    a.deallocate(q);
    CHECK(a.stats(0).reserved == 0);
    CHECK(a.stats_str(0).find("caching off") != std::string::npos);

    ::setenv("CXR_CUDA_CACHE", "1", 1);
    CachingAllocator b(raw);
    ::unsetenv("CXR_CUDA_CACHE");
    CHECK(b.caching_enabled());
    CachingAllocator c(raw);
    CHECK(c.caching_enabled());  // unset: on
}

TEST_CASE("caching allocator: out of memory empties the cache, retries once, then throws with the stats", "[cpu]") {
    FakeRaw raw;
    raw.capacity = 10 * MiB;
    CachingAllocator a(raw, true);
    void* p = a.allocate(4 * MiB, 0);
    void* q = a.allocate(4 * MiB, 0);
    a.deallocate(p);  // 4 MiB cached
    // 6 MiB does not fit beside 8 MiB held; the cached 4 MiB block is too small to reuse (pool: needs >= 6 MiB),
    // so the first raw call fails, the cache is emptied and the retry succeeds.
    void* r = a.allocate(6 * MiB, 0);
    REQUIRE(r != nullptr);
    CHECK(raw.failures == 1);
    CHECK(raw.frees == 1);
    auto st = a.stats(0);
    CHECK(st.num_oom_retries == 1);
    CHECK(st.reserved == 10 * MiB);
    CHECK(st.allocated == 10 * MiB);
    // Nothing cached is left to free: the retry fails too and the error names the request and the stats.
    try {
        a.allocate(3 * MiB, 0);
        FAIL("expected an out-of-memory error");
    } catch (const cxr::Error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("out of memory on device 0") != std::string::npos);
        CHECK(msg.find("3145728 bytes") != std::string::npos);
        CHECK(msg.find("block of 4.00 MiB") != std::string::npos);
        CHECK(msg.find("allocated 10.00 MiB") != std::string::npos);
    }
    CHECK(raw.failures == 3);
    CHECK(a.stats(0).allocated == 10 * MiB);  // the failure changed nothing
    a.deallocate(q);
    a.deallocate(r);
}

TEST_CASE("caching allocator: double free and unknown pointers are errors that change nothing", "[cpu]") {
    FakeRaw raw;
    CachingAllocator a(raw, true);
    void* p = a.allocate(100, 0);
    a.deallocate(p);
    CHECK_THROWS_WITH(a.deallocate(p), Catch::Contains("double free"));
    int local = 0;
    CHECK_THROWS_WITH(a.deallocate(&local), Catch::Contains("unknown pointer"));
    auto st = a.stats(0);
    CHECK(st.allocated == 0);
    CHECK(st.reserved == 512);
    void* q = a.allocate(100, 0);  // the cached block is still usable exactly once
    CHECK(q == p);
    a.deallocate(q);

    CachingAllocator off(raw, false);
    void* r = off.allocate(100, 0);
    off.deallocate(r);
    CHECK_THROWS_WITH(off.deallocate(r), Catch::Contains("unknown pointer"));  // already returned to raw
}

TEST_CASE("caching allocator: the destructor returns cached blocks to the raw allocator", "[cpu]") {
    FakeRaw raw;
    {
        CachingAllocator a(raw, true);
        a.deallocate(a.allocate(100, 0));
        a.deallocate(a.allocate(3 * MiB, 2));
        CHECK(raw.held == 512 + 4 * MiB);
    }
    CHECK(raw.held == 0);
    CHECK(raw.frees == 2);
}

TEST_CASE("cuda_memory_info: zeros without a CUDA backend or before any CUDA allocation", "[cpu]") {
    const CudaMemoryInfo m = cuda_memory_info(0);
    CHECK(m.compiled == backend_compiled(DeviceType::CUDA));
    if (!m.compiled) {
        CHECK_FALSE(m.caching_enabled);
        CHECK(m.stats.allocated == 0);
        CHECK(m.stats.reserved == 0);
        CHECK(m.stats.num_raw_allocs == 0);
        cuda_empty_cache();  // a no-op
    }
}

TEST_CASE("cuda: tensors are allocated through the caching allocator and blocks are reused", "[gpu][cuda]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    cuda_empty_cache();
    const CudaMemoryInfo before = cuda_memory_info(0);
    REQUIRE(before.compiled);
    INFO("stats before: allocated " << before.stats.allocated << ", reserved " << before.stats.reserved);
    const uint64_t hits0 = before.stats.cache_hits;
    {
        Tensor t = empty({1000, 3}, Options(DType::f32, gpu));  // 12000 B -> a 12288 B block
        const CudaMemoryInfo during = cuda_memory_info(0);
        const uint64_t block = before.caching_enabled ? 12288 : 12000;
        CHECK(during.stats.allocated == before.stats.allocated + block);
        CHECK(during.stats.peak_allocated >= during.stats.allocated);
        CHECK(during.stats.reserved >= during.stats.allocated);
    }
    const CudaMemoryInfo after = cuda_memory_info(0);
    CHECK(after.stats.allocated == before.stats.allocated);
    if (before.caching_enabled) {
        CHECK(after.stats.reserved >= before.stats.reserved + 12288);  // cached, not returned
        Tensor u = empty({3000}, Options(DType::f32, gpu));  // same 12288 B class, same stream
        CHECK(cuda_memory_info(0).stats.cache_hits == hits0 + 1);
    }
    cuda_empty_cache();
    CHECK(cuda_memory_info(0).stats.reserved <= after.stats.reserved);
}
