// The CUDA backend's entry points, seen only by tensor/backend.cpp (the one place that knows CUDA is compiled in).
#pragma once

#include "tensor/backend.h"

namespace cxr::tensor::cuda {

Backend& backend();
void register_all_kernels(KernelRegistry& r);

}  // namespace cxr::tensor::cuda
