// Conv2d and ConvTranspose2d layers over tensor/ops/conv.h (definitions and references in nn/conv.h).
#include "nn/conv.h"

#include "nn/init.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"

namespace cxr::nn {

namespace {
std::string pair_str(const tensor::Size2& s) { return tensor::size2_str(s); }

void check_channels(const char* what, int64_t in, int64_t out, int64_t groups) {
    CXR_CHECK(in > 0 && out > 0 && groups > 0, what, ": channels and groups must be positive (in ", in, ", out ", out,
              ", groups ", groups, ")");
    CXR_CHECK(in % groups == 0 && out % groups == 0, what, ": in_channels ", in, " and out_channels ", out,
              " must be divisible by groups ", groups);
}
}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Pair2 k, Pair2 s, Pair2 p, Pair2 d, int64_t g, bool with_bias,
               tensor::Generator* gen)
    : Module("Conv2d"), in_channels(in), out_channels(out), groups(g), kernel_size(k), stride(s), padding(p),
      dilation(d) {
    check_channels("Conv2d", in, out, g);
    weight = tensor::empty({out, in / g, kernel_size[0], kernel_size[1]});
    if (with_bias) bias = tensor::empty({out});
    reset_parameters(gen);
    register_parameter("weight", weight);
    register_parameter("bias", bias);
}

void Conv2d::reset_parameters(tensor::Generator* gen) { init::default_weight_bias_init(weight, bias, gen); }

Tensor Conv2d::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Conv2d(", in_channels, ", ", out_channels,
              "): expected input [N, ", in_channels, ", H, W], got ", tensor::shape_str(x.sizes()));
    return tensor::conv2d(x, weight, bias, stride, padding, dilation, groups);
}

std::string Conv2d::extra_repr() const {
    std::string r = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                    ", kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride);
    if (padding != tensor::Size2{0, 0}) r += ", padding=" + pair_str(padding);
    if (dilation != tensor::Size2{1, 1}) r += ", dilation=" + pair_str(dilation);
    if (groups != 1) r += ", groups=" + std::to_string(groups);
    if (!bias.defined()) r += ", bias=False";
    return r;
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Pair2 k, Pair2 s, Pair2 p, Pair2 op, int64_t g,
                                 bool with_bias, Pair2 d, tensor::Generator* gen)
    : Module("ConvTranspose2d"), in_channels(in), out_channels(out), groups(g), kernel_size(k), stride(s),
      padding(p), output_padding(op), dilation(d) {
    check_channels("ConvTranspose2d", in, out, g);
    weight = tensor::empty({in, out / g, kernel_size[0], kernel_size[1]});
    if (with_bias) bias = tensor::empty({out});
    reset_parameters(gen);
    register_parameter("weight", weight);
    register_parameter("bias", bias);
}

void ConvTranspose2d::reset_parameters(tensor::Generator* gen) { init::default_weight_bias_init(weight, bias, gen); }

Tensor ConvTranspose2d::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ConvTranspose2d(", in_channels, ", ", out_channels,
              "): expected input [N, ", in_channels, ", H, W], got ", tensor::shape_str(x.sizes()));
    return tensor::conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation);
}

std::string ConvTranspose2d::extra_repr() const {
    std::string r = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                    ", kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride);
    if (padding != tensor::Size2{0, 0}) r += ", padding=" + pair_str(padding);
    if (output_padding != tensor::Size2{0, 0}) r += ", output_padding=" + pair_str(output_padding);
    if (dilation != tensor::Size2{1, 1}) r += ", dilation=" + pair_str(dilation);
    if (groups != 1) r += ", groups=" + std::to_string(groups);
    if (!bias.defined()) r += ", bias=False";
    return r;
}

}  // namespace cxr::nn
