// Private helper of the GPU metrics (metrics/cuda/*.cu): the check that a CUDA device is there before any work,
// with the message metrics/gpu.h promises ("no CUDA device") instead of a raw CUDA error.
#pragma once

#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr::metrics::gpu_detail {

inline void require_device(const char* what, int device) {
    using tensor::DeviceType;
    CXR_CHECK(tensor::device_available(DeviceType::CUDA), what,
              ": no CUDA device is present on this machine (metrics_gpu_available() is false); use the CPU version "
              "in metrics/");
    const int count = tensor::backend_for(DeviceType::CUDA).device_count();
    CXR_CHECK(device >= 0 && device < count, what, ": CUDA device ", device, " does not exist (", count,
              " present)");
}

}  // namespace cxr::metrics::gpu_detail
