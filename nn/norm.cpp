// BatchNorm2d, GroupNorm and LayerNorm layers over tensor/ops/norm.h (semantics in nn/norm.h, after torch.nn).
#include "nn/norm.h"

#include <sstream>

#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/norm.h"

namespace cxr::nn {

namespace {
std::string num_str(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}
}  // namespace

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, std::optional<double> momentum_, bool affine_, bool track)
    : Module("BatchNorm2d"), num_features(c), eps(eps_), momentum(momentum_), affine(affine_),
      track_running_stats(track) {
    CXR_CHECK(c > 0, "BatchNorm2d: num_features must be positive, got ", c);
    if (affine) {
        weight = tensor::ones({c});
        bias = tensor::zeros({c});
    }
    register_parameter("weight", weight);
    register_parameter("bias", bias);
    if (track) {
        running_mean = tensor::zeros({c});
        running_var = tensor::ones({c});
        num_batches_tracked = tensor::zeros({}, tensor::DType::i64);
    }
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
}

void BatchNorm2d::reset_running_stats() {
    if (!track_running_stats) return;
    tensor::NoGradGuard ng;
    running_mean.fill_(0.0);
    running_var.fill_(1.0);
    num_batches_tracked.fill_(0.0);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4, "BatchNorm2d: expected 4D input [N, C, H, W], got ", tensor::shape_str(x.sizes()));
    CXR_CHECK(x.size(1) == num_features, "BatchNorm2d(", num_features, "): input has ", x.size(1), " channels");
    double factor = momentum.value_or(0.0);
    if (is_training() && track_running_stats) {
        tensor::NoGradGuard ng;
        num_batches_tracked.copy_(tensor::add(num_batches_tracked, tensor::ones({}, {tensor::DType::i64,
                                                                                    num_batches_tracked.device()})));
        if (!momentum) factor = 1.0 / num_batches_tracked.item();  // cumulative moving average
    }
    // Batch statistics in training, or in eval when no running statistics are kept (torch's bn_training).
    const bool batch_stats = is_training() || !running_mean.defined();
    return tensor::batch_norm(x, running_mean, running_var, weight, bias, batch_stats, factor, eps);
}

std::string BatchNorm2d::extra_repr() const {
    return std::to_string(num_features) + ", eps=" + num_str(eps) +
           ", momentum=" + (momentum ? num_str(*momentum) : std::string("None")) +
           ", affine=" + (affine ? "True" : "False") +
           ", track_running_stats=" + (track_running_stats ? "True" : "False");
}

GroupNorm::GroupNorm(int64_t g, int64_t c, double eps_, bool affine)
    : Module("GroupNorm"), num_groups(g), num_channels(c), eps(eps_) {
    CXR_CHECK(g > 0 && c > 0 && c % g == 0, "GroupNorm: num_channels ", c, " must be divisible by num_groups ", g);
    if (affine) {
        weight = tensor::ones({c});
        bias = tensor::zeros({c});
    }
    register_parameter("weight", weight);
    register_parameter("bias", bias);
}

Tensor GroupNorm::forward(const Tensor& x) {
    CXR_CHECK(x.dim() >= 2 && x.size(1) == num_channels, "GroupNorm(", num_groups, ", ", num_channels,
              "): expected input [N, ", num_channels, ", ...], got ", tensor::shape_str(x.sizes()));
    return tensor::group_norm(x, num_groups, weight, bias, eps);
}

std::string GroupNorm::extra_repr() const {
    return std::to_string(num_groups) + ", " + std::to_string(num_channels) + ", eps=" + num_str(eps) +
           ", affine=" + (weight.defined() ? "True" : "False");
}

LayerNorm::LayerNorm(Shape shape, double eps_, bool elementwise_affine, bool with_bias)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(eps_) {
    CXR_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must not be empty");
    if (elementwise_affine) {
        weight = tensor::ones(normalized_shape);
        if (with_bias) bias = tensor::zeros(normalized_shape);
    }
    register_parameter("weight", weight);
    register_parameter("bias", bias);
}

Tensor LayerNorm::forward(const Tensor& x) { return tensor::layer_norm(x, normalized_shape, weight, bias, eps); }

std::string LayerNorm::extra_repr() const {
    return tensor::shape_str(normalized_shape) + ", eps=" + num_str(eps) +
           ", elementwise_affine=" + (weight.defined() ? "True" : "False");
}

}  // namespace cxr::nn
