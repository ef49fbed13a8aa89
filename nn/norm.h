// Normalisation layers with torch.nn's names and state-dict keys, over tensor/ops/norm.h (formulas there):
//   BatchNorm2d(C, eps=1e-5, momentum=0.1, affine=true, track_running_stats=true)  (Ioffe & Szegedy 2015)
//     parameters "weight" [C] = 1, "bias" [C] = 0 (when affine); buffers "running_mean" [C] = 0,
//     "running_var" [C] = 1 and "num_batches_tracked" (0-d i64) = 0 (when track_running_stats), exactly the keys
//     of a torchvision checkpoint. Training: batch statistics; the running statistics are updated with
//     factor = momentum, or 1/num_batches_tracked when momentum is nullopt (cumulative average), and
//     num_batches_tracked counts the training batches. Eval: the running statistics (batch statistics when
//     track_running_stats is off), as torch.nn.BatchNorm2d.
//   GroupNorm(G, C, eps=1e-5, affine=true)  (Wu & He 2018): "weight" [C] = 1, "bias" [C] = 0.
//   LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=true, bias=true)  (Ba et al. 2016):
//     "weight" = 1, "bias" = 0, both of normalized_shape.
#pragma once

#include <optional>

#include "nn/module.h"

namespace cxr::nn {

class BatchNorm2d : public Module {
public:
    explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                         bool affine = true, bool track_running_stats = true);
    Tensor forward(const Tensor& x) override;  // [N, C, H, W]
    std::string extra_repr() const override;
    void reset_running_stats();

    int64_t num_features;
    double eps;
    std::optional<double> momentum;
    bool affine, track_running_stats;
    Tensor weight, bias;                                  // [C] or undefined
    Tensor running_mean, running_var, num_batches_tracked;  // [C], [C], [] i64 or undefined
};

class GroupNorm : public Module {
public:
    GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
    Tensor forward(const Tensor& x) override;  // [N, C, ...]
    std::string extra_repr() const override;

    int64_t num_groups, num_channels;
    double eps;
    Tensor weight, bias;  // [C] or undefined
};

class LayerNorm : public Module {
public:
    explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
    Tensor forward(const Tensor& x) override;  // [..., *normalized_shape]
    std::string extra_repr() const override;

    Shape normalized_shape;
    double eps;
    Tensor weight, bias;  // normalized_shape or undefined
};

}  // namespace cxr::nn
