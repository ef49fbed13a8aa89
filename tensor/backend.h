// The backend seam (DESIGN.md §3): a small interface every device implements — allocate, free, copy, and a
// registry of named kernels per device type. Op code asks the registry for "conv2d" on CUDA and gets either the
// kernel or a loud error; it never contains #ifdef CUDA. The only #ifdef lives in backend.cpp, which registers
// the CUDA backend when the build has one.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/device.h"
#include "tensor/error.h"

namespace cxr::tensor {

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;
    // Number of devices of this type present at run time (0 for CUDA on a machine without a GPU).
    virtual int device_count() const = 0;
    virtual void* allocate(size_t nbytes, Device device) = 0;
    virtual void deallocate(void* ptr, size_t nbytes, Device device) = 0;
    // Copies nbytes between two buffers; at least one of the two lives on this backend's device type, the
    // other on the CPU or the same type.
    virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) = 0;
    virtual void synchronize(Device device) = 0;
    // Page-locked ("pinned") host memory, which the device can copy from and to without a staging buffer (and
    // asynchronously). nullptr when the backend cannot provide it: the CPU backend never does; CUDA does not when
    // no device is present. Freed with deallocate_pinned_host.
    virtual void* allocate_pinned_host(size_t nbytes) { return nullptr; }
    virtual void deallocate_pinned_host(void* ptr) {}
};

// The backend of a device type; throws if this build has none (e.g. CUDA in a CPU-only build).
Backend& backend_for(DeviceType type);
bool backend_compiled(DeviceType type);
// True when the backend is compiled in and at least one device is present.
bool device_available(DeviceType type);
// Pinned host memory from the first backend that provides it (CUDA when a device is present); nullptr otherwise.
// Memory from allocate_pinned_host must be returned to deallocate_pinned_host.
void* allocate_pinned_host(size_t nbytes);
void deallocate_pinned_host(void* ptr);
// Names of the backends compiled into this build ("cpu", "cuda").
std::vector<std::string> compiled_backends();

// ---- Kernel registry ----
using AnyKernel = void (*)();

class KernelRegistry {
public:
    void add(const std::string& op, DeviceType type, AnyKernel fn);
    AnyKernel find(const std::string& op, DeviceType type) const;  // nullptr if absent
    std::vector<std::string> ops(DeviceType type) const;

private:
    std::map<std::pair<std::string, DeviceType>, AnyKernel> table_;
};

KernelRegistry& kernel_registry();

template <class Fn>
void register_kernel(KernelRegistry& r, const std::string& op, DeviceType type, Fn* fn) {
    r.add(op, type, reinterpret_cast<AnyKernel>(fn));
}

// Looks a kernel up for a device; a missing kernel is an error naming the op and the device — never a
// silent fallback to another backend.
template <class Fn>
Fn* get_kernel(const char* op, Device device) {
    AnyKernel k = kernel_registry().find(op, device.type);
    if (!k)
        CXR_FAIL("op '", op, "' has no kernel for ", device.str(),
                 device.is_cuda() ? " yet (CUDA kernels are added op by op; move the tensor to the CPU)" : "");
    return reinterpret_cast<Fn*>(k);
}

}  // namespace cxr::tensor
