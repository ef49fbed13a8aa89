// The list of CPU op families; each registers its kernels with the registry.
#include "tensor/cpu/kernels.h"

namespace cxr::tensor::cpu {

void register_all_kernels(KernelRegistry& r) {
    register_elementwise_kernels(r);
    register_reduce_kernels(r);
    register_softmax_kernels(r);
    register_norm_kernels(r);
    register_matmul_kernels(r);
    register_conv_kernels(r);
    register_pool_kernels(r);
    register_resize_kernels(r);
    register_index_kernels(r);
    register_random_kernels(r);
    register_optim_kernels(r);
    register_attention_kernels(r);
}

}  // namespace cxr::tensor::cpu
