// Convolution layers with torch.nn's names, argument order and state-dict keys ("weight", "bias"):
//   Conv2d(in, out, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=true)
//     weight [out, in/groups, kH, kW], bias [out];  y = conv2d(x, weight, bias, ...) (tensor/ops/conv.h)
//   ConvTranspose2d(in, out, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=true, dilation=1)
//     weight [in, out/groups, kH, kW] (torch's layout), bias [out];  y = conv_transpose2d(x, weight, bias, ...)
// Initialisation as torch's _ConvNd.reset_parameters: weight kaiming_uniform(a = √5), i.e.
// U(−1/√fan_in, 1/√fan_in), and bias U(−1/√fan_in, 1/√fan_in), fan_in computed from the weight's shape by torch's
// rule (nn/init.h), which for ConvTranspose2d is (out/groups)·kH·kW.
#pragma once

#include "nn/module.h"
#include "nn/pair.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::nn {

class Conv2d : public Module {
public:
    Conv2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size, Pair2 stride = 1, Pair2 padding = 0,
           Pair2 dilation = 1, int64_t groups = 1, bool bias = true, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, H_out, W_out]
    std::string extra_repr() const override;
    void reset_parameters(tensor::Generator* gen = nullptr);

    int64_t in_channels, out_channels, groups;
    tensor::Size2 kernel_size, stride, padding, dilation;
    Tensor weight;  // [out, in/groups, kH, kW]
    Tensor bias;    // [out] or undefined
};

class ConvTranspose2d : public Module {
public:
    ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size, Pair2 stride = 1,
                    Pair2 padding = 0, Pair2 output_padding = 0, int64_t groups = 1, bool bias = true,
                    Pair2 dilation = 1, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, H_out, W_out]
    std::string extra_repr() const override;
    void reset_parameters(tensor::Generator* gen = nullptr);

    int64_t in_channels, out_channels, groups;
    tensor::Size2 kernel_size, stride, padding, output_padding, dilation;
    Tensor weight;  // [in, out/groups, kH, kW]
    Tensor bias;    // [out] or undefined
};

}  // namespace cxr::nn
