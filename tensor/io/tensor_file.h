// Tensors to and from safetensors files: the Tensor-level layer over tensor/io/safetensors.h. Loading gives CPU
// tensors keyed by name; saving copies each tensor (any device, any strides) to contiguous host bytes.
#pragma once

#include <map>
#include <string>

#include "tensor/io/safetensors.h"
#include "tensor/tensor.h"

namespace cxr::tensor {

struct TensorFile {
    std::map<std::string, std::string> metadata;
    std::map<std::string, Tensor> tensors;
};

TensorFile load_tensor_file(const std::string& path);
void save_tensor_file(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace cxr::tensor
