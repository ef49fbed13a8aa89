// Tensor <-> safetensors conversion (see tensor_file.h).
#include "tensor/io/tensor_file.h"

#include <cstring>

#include "tensor/autograd.h"
#include "tensor/ops/creation.h"

namespace cxr::tensor {

TensorFile load_tensor_file(const std::string& path) {
    SafetensorsFile f = read_safetensors(path);
    TensorFile out;
    out.metadata = std::move(f.metadata);
    for (auto& kv : f.tensors)
        out.tensors[kv.first] = from_blob_copy(kv.second.data.data(), kv.second.shape, kv.second.dtype);
    return out;
}

void save_tensor_file(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    NoGradGuard ng;
    SafetensorsFile f;
    f.metadata = metadata;
    for (const auto& kv : tensors) {
        CXR_CHECK(kv.second.defined(), "save_tensor_file: tensor '", kv.first, "' is undefined");
        Tensor host = kv.second.to(Device::cpu()).contiguous();
        SafetensorsTensor t;
        t.dtype = host.dtype();
        t.shape = host.sizes();
        t.data.resize(host.numel() * host.element_size());
        if (!t.data.empty()) std::memcpy(t.data.data(), host.raw_data(), t.data.size());
        f.tensors[kv.first] = std::move(t);
    }
    write_safetensors(path, f);
}

}  // namespace cxr::tensor
