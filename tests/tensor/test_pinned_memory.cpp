// Pinned (page-locked) host tensors (tensor/tensor.h Tensor::empty_pinned, tensor/backend.h allocate_pinned_host).
// [cpu]: without a CUDA device the request falls back to ordinary memory (is_pinned() false) and the tensor works
//        like any CPU tensor; with one it is pinned. Either way, freeing is clean.
// [gpu][cuda]: with a device the request is pinned (cudaHostAlloc succeeded), and pinned tensors copy to the device
//        and back bit for bit, in many sizes, many times (allocation and cudaFreeHost are checked calls).
#include "tests/support/testing.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/tensor.h"

using namespace cxr::tensor;

TEST_CASE("pinned memory: empty_pinned falls back to pageable memory without a CUDA device", "[cpu][tensor]") {
    const bool gpu = device_available(DeviceType::CUDA);
    INFO("CUDA device present: " << gpu);
    Tensor t = Tensor::empty_pinned({3, 4});
    CHECK(t.is_cpu());
    CHECK(t.is_pinned() == gpu);
    CHECK(t.dtype() == DType::f32);
    CHECK(t.sizes() == Shape{3, 4});
    CHECK(t.is_contiguous());
    float* p = t.data<float>();
    for (int i = 0; i < 12; ++i) p[i] = (float)i * 0.5f;
    Tensor c = t.clone();  // CPU kernels work on it as on any CPU tensor; the clone is ordinary memory
    CHECK_FALSE(c.is_pinned());
    for (int i = 0; i < 12; ++i) CHECK(c.data<float>()[i] == (float)i * 0.5f);
    CHECK_FALSE(Tensor::empty({2}).is_pinned());
    CHECK(Tensor::empty_pinned({0}).numel() == 0);  // an empty request allocates nothing
    CHECK_THROWS(Tensor::empty_pinned({-1}));
    if (!backend_compiled(DeviceType::CUDA)) CHECK(allocate_pinned_host(64) == nullptr);
}

TEST_CASE("pinned memory: page-locked tensors copy to the GPU and back bit for bit", "[gpu][cuda][tensor]") {
    CXR_SKIP_WITHOUT_GPU();
    for (int round = 0; round < 3; ++round) {
        for (int64_t n : {1, 7, 4096, 1 << 20}) {
            Tensor h = Tensor::empty_pinned({n}, DType::i32);
            REQUIRE(h.is_pinned());
            int32_t* p = h.data<int32_t>();
            for (int64_t i = 0; i < n; ++i) p[i] = (int32_t)(i * 2654435761u) ^ round;
            Tensor d = h.to(Device::cuda(0));
            CHECK(d.is_cuda());
            Tensor back = d.to(Device::cpu());
            CHECK_FALSE(back.is_pinned());
            CHECK(std::memcmp(back.data<int32_t>(), p, (size_t)n * sizeof(int32_t)) == 0);
        }
    }
    // Raw interface: a pinned block is returned to the same backend.
    void* raw = allocate_pinned_host(1000);
    REQUIRE(raw != nullptr);
    std::memset(raw, 0x5a, 1000);
    deallocate_pinned_host(raw);
}
