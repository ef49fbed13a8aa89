// Devices a tensor can live on: the CPU, or CUDA device n.
#pragma once

#include <cstdint>
#include <string>

namespace cxr::tensor {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
    DeviceType type = DeviceType::CPU;
    int index = 0;

    static Device cpu() { return {DeviceType::CPU, 0}; }
    static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
    bool is_cpu() const { return type == DeviceType::CPU; }
    bool is_cuda() const { return type == DeviceType::CUDA; }
    std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
    bool operator!=(const Device& o) const { return !(*this == o); }
};

// Parses "cpu", "cuda", "cuda:1".
Device parse_device(const std::string& s);

}  // namespace cxr::tensor
