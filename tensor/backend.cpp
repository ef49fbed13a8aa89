// The backend registry: the CPU backend (malloc/free/memcpy), the CUDA backend when the build has one, and the
// kernel registry filled by each backend's register function. This file and the build files are the only places
// that know whether CUDA was compiled in.
#include "tensor/backend.h"

#include <cstdlib>
#include <cstring>

#include "tensor/cpu/kernels.h"

#ifdef CXR_HAVE_CUDA
#include "tensor/cuda/cuda_backend.h"
#endif

namespace cxr::tensor {

namespace {

class CpuBackend final : public Backend {
public:
    const char* name() const override { return "cpu"; }
    int device_count() const override { return 1; }
    void* allocate(size_t nbytes, Device) override {
        if (nbytes == 0) return nullptr;
        // 64-byte alignment for vector loads; aligned_alloc needs a multiple of the alignment.
        size_t rounded = (nbytes + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, rounded);
        CXR_CHECK(p, "out of CPU memory allocating ", nbytes, " bytes");
        return p;
    }
    void deallocate(void* ptr, size_t, Device) override { std::free(ptr); }
    void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) override {
        CXR_CHECK(dst_device.is_cpu() && src_device.is_cpu(), "cpu backend copy between ", src_device.str(),
                  " and ", dst_device.str());
        if (nbytes) std::memcpy(dst, src, nbytes);
    }
    void synchronize(Device) override {}
};

}  // namespace

Backend& backend_for(DeviceType type) {
    static CpuBackend cpu_backend;
    if (type == DeviceType::CPU) return cpu_backend;
#ifdef CXR_HAVE_CUDA
    return cuda::backend();
#else
    CXR_FAIL("this build of cxr has no CUDA backend (configure with CXR_CUDA=ON on a machine with nvcc)");
#endif
}

bool backend_compiled(DeviceType type) {
#ifdef CXR_HAVE_CUDA
    (void)type;
    return true;
#else
    return type == DeviceType::CPU;
#endif
}

bool device_available(DeviceType type) { return backend_compiled(type) && backend_for(type).device_count() > 0; }

// Only CUDA pins host memory; a build without it always falls back to pageable memory.
void* allocate_pinned_host(size_t nbytes) {
    return backend_compiled(DeviceType::CUDA) ? backend_for(DeviceType::CUDA).allocate_pinned_host(nbytes) : nullptr;
}

void deallocate_pinned_host(void* ptr) {
    if (ptr) backend_for(DeviceType::CUDA).deallocate_pinned_host(ptr);
}

std::vector<std::string> compiled_backends() {
    std::vector<std::string> names{"cpu"};
#ifdef CXR_HAVE_CUDA
    names.push_back("cuda");
#endif
    return names;
}

void KernelRegistry::add(const std::string& op, DeviceType type, AnyKernel fn) {
    CXR_CHECK(!table_.count({op, type}), "kernel '", op, "' registered twice for one backend");
    table_[{op, type}] = fn;
}

AnyKernel KernelRegistry::find(const std::string& op, DeviceType type) const {
    auto it = table_.find({op, type});
    return it == table_.end() ? nullptr : it->second;
}

std::vector<std::string> KernelRegistry::ops(DeviceType type) const {
    std::vector<std::string> out;
    for (const auto& kv : table_)
        if (kv.first.second == type) out.push_back(kv.first.first);
    return out;
}

KernelRegistry& kernel_registry() {
    static KernelRegistry registry = [] {
        KernelRegistry r;
        cpu::register_all_kernels(r);
#ifdef CXR_HAVE_CUDA
        cuda::register_all_kernels(r);
#endif
        return r;
    }();
    return registry;
}

Device parse_device(const std::string& s) {
    if (s == "cpu") return Device::cpu();
    if (s == "cuda") return Device::cuda(0);
    if (s.rfind("cuda:", 0) == 0) {
        try {
            return Device::cuda(std::stoi(s.substr(5)));
        } catch (...) {
        }
    }
    CXR_FAIL("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

}  // namespace cxr::tensor
