// Registration entry points of the CPU backend: one function per op family registers that family's CPU kernels
// in the kernel registry (tensor/backend.h). register.cpp calls them all.
#pragma once

#include "tensor/backend.h"

namespace cxr::tensor::cpu {

void register_all_kernels(KernelRegistry& r);

void register_elementwise_kernels(KernelRegistry& r);
void register_reduce_kernels(KernelRegistry& r);
void register_softmax_kernels(KernelRegistry& r);
void register_norm_kernels(KernelRegistry& r);
void register_matmul_kernels(KernelRegistry& r);
void register_conv_kernels(KernelRegistry& r);
void register_pool_kernels(KernelRegistry& r);
void register_resize_kernels(KernelRegistry& r);
void register_index_kernels(KernelRegistry& r);
void register_random_kernels(KernelRegistry& r);
void register_optim_kernels(KernelRegistry& r);
void register_attention_kernels(KernelRegistry& r);  // tensor/cpu/attention.cpp

}  // namespace cxr::tensor::cpu
