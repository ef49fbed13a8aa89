// The list of CPU op families; each registers its kernels with the registry.
#include "tensor/cpu/kernels.h"

namespace cxr::tensor::cpu {

void register_all_kernels(KernelRegistry& r) {
    register_elementwise_kernels(r);
    register_reduce_kernels(r);
}

}  // namespace cxr::tensor::cpu
