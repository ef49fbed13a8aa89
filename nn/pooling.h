// Pooling layers (torch.nn names and argument order; no parameters) over tensor/ops/pool.h (formulas there):
//   MaxPool2d(kernel_size, stride = kernel_size, padding = 0, dilation = 1, ceil_mode = false)
//   AvgPool2d(kernel_size, stride = kernel_size, padding = 0, ceil_mode = false, count_include_pad = true)
//   AdaptiveAvgPool2d(output_size)
// A stride of 0 means "equal to kernel_size" (torch's stride=None).
#pragma once

#include "nn/module.h"
#include "nn/pair.h"

namespace cxr::nn {

class MaxPool2d : public Module {
public:
    MaxPool2d(Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0, Pair2 dilation = 1, bool ceil_mode = false);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;
    tensor::Size2 kernel_size, stride, padding, dilation;
    bool ceil_mode;
};

class AvgPool2d : public Module {
public:
    AvgPool2d(Pair2 kernel_size, Pair2 stride = 0, Pair2 padding = 0, bool ceil_mode = false,
              bool count_include_pad = true);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;
    tensor::Size2 kernel_size, stride, padding;
    bool ceil_mode, count_include_pad;
};

class AdaptiveAvgPool2d : public Module {
public:
    explicit AdaptiveAvgPool2d(Pair2 output_size);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;
    tensor::Size2 output_size;
};

}  // namespace cxr::nn
