// Pooling layers over tensor/ops/pool.h (semantics in nn/pooling.h, after torch.nn).
#include "nn/pooling.h"

#include "tensor/ops/pool.h"

namespace cxr::nn {

namespace {
tensor::Size2 stride_or_kernel(const tensor::Size2& stride, const tensor::Size2& kernel) {
    return {stride[0] == 0 ? kernel[0] : stride[0], stride[1] == 0 ? kernel[1] : stride[1]};
}
std::string s2(const tensor::Size2& s) { return tensor::size2_str(s); }
}  // namespace

MaxPool2d::MaxPool2d(Pair2 k, Pair2 s, Pair2 p, Pair2 d, bool ceil)
    : Module("MaxPool2d"), kernel_size(k), stride(stride_or_kernel(s, k)), padding(p), dilation(d), ceil_mode(ceil) {}

Tensor MaxPool2d::forward(const Tensor& x) {
    return tensor::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
    return "kernel_size=" + s2(kernel_size) + ", stride=" + s2(stride) + ", padding=" + s2(padding) +
           ", dilation=" + s2(dilation) + ", ceil_mode=" + (ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(Pair2 k, Pair2 s, Pair2 p, bool ceil, bool include_pad)
    : Module("AvgPool2d"), kernel_size(k), stride(stride_or_kernel(s, k)), padding(p), ceil_mode(ceil),
      count_include_pad(include_pad) {}

Tensor AvgPool2d::forward(const Tensor& x) {
    return tensor::avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
    return "kernel_size=" + s2(kernel_size) + ", stride=" + s2(stride) + ", padding=" + s2(padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Pair2 out) : Module("AdaptiveAvgPool2d"), output_size(out) {}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return tensor::adaptive_avg_pool2d(x, output_size); }

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + s2(output_size); }

}  // namespace cxr::nn
