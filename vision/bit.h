// A BiT-style ResNet-v2 (Kolesnikov et al., "Big Transfer (BiT): General Visual Representation Learning",
// ECCV 2020): pre-activation bottlenecks (He et al., "Identity Mappings in Deep Residual Networks", 2016) with
// GroupNorm (32 groups; Wu & He 2018) and weight-standardised convolutions (Qiao et al. 2019), with the module
// names of timm's ResNetV2 "resnetv2_50x1_bit" family so that its state dicts load strictly:
//   stem.conv   StdConv2d 7×7 stride 2 pad 3 (3 → 64·wf), then zero pad 1 and max pool 3×3 stride 2 (BiT's
//               "fixed" padding; no parameters);
//   stages.{0..3}.blocks.{j}: PreActBottleneck(in, out, stride) with mid = out/4:
//       x' = relu(norm1(x));  shortcut = downsample.conv(x') (1×1 StdConv2d, stride) in the first block of a
//       stage, else x;  y = conv1(x') (1×1) → relu(norm2) → conv2 (3×3, stride, pad 1) → relu(norm3) → conv3
//       (1×1, → out);  out = y + shortcut.  Stage widths 256, 512, 1024, 2048 (×wf); strides 1, 2, 2, 2.
//   norm        GroupNorm + ReLU on the last stage's output;
//   head.fc     1×1 Conv2d (F → classes, with bias) on the global average pool, flattened (timm's ClassifierHead
//               with use_conv). An mlp head (vision/heads.h) replaces "head" by the Sequential instead.
// StdConv2d:  w' = (w − mean(w)) / sqrt(var(w) + eps) per output channel (biased variance over in·kh·kw), then
//   conv2d(x, w'); differentiable through the standardisation. eps defaults to 1e-8 as timm's BiT models
//   (timm's _create_resnetv2_bit); the BiT paper's reference code uses 1e-10 (BitConfig::std_eps).
// GroupNorm eps 1e-5. Initialisation as timm's ResNetV2: convolutions kaiming_normal (fan_out, relu), head.fc
// N(0, 0.01) with bias 0, GroupNorm 1 / 0.
#pragma once

#include <array>
#include <memory>

#include "nn/layers.h"
#include "vision/heads.h"

namespace cxr::vision {

class StdConv2d : public nn::Conv2d {
public:
    StdConv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, double eps,
              tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;
    Tensor standardized_weight() const;  // w' above, [out, in, kh, kw]
    double eps;
};

// GroupNorm followed by ReLU (timm's GroupNormAct); keys "weight", "bias".
class GroupNormAct : public nn::GroupNorm {
public:
    GroupNormAct(int64_t groups, int64_t channels) : nn::GroupNorm(groups, channels, 1e-5) {}
    Tensor forward(const Tensor& x) override;
};

class PreActBottleneck : public Module {
public:
    PreActBottleneck(int64_t in, int64_t out, int64_t stride, bool with_downsample, int64_t groups, double eps,
                     tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, H/stride, W/stride]

    std::shared_ptr<Module> downsample;  // holds "conv" (StdConv2d 1×1) or null
    std::shared_ptr<StdConv2d> downsample_conv;
    std::shared_ptr<GroupNormAct> norm1, norm2, norm3;
    std::shared_ptr<StdConv2d> conv1, conv2, conv3;
};

struct BitConfig {
    std::array<int64_t, 4> layers{3, 4, 6, 3};
    int64_t width_factor = 1;
    int64_t num_groups = 32;
    double std_eps = 1e-8;
    HeadConfig head = HeadConfig::linear(1000);
    void validate() const;
};

class BitResNet : public ImageClassifier {
public:
    explicit BitResNet(const BitConfig& config, tensor::Generator* gen = nullptr);
    // x [N, 3, H, W] -> [N, 2048·wf] (relu(norm(stages(stem(x)))) averaged over space)
    Tensor forward_features(const Tensor& x) override;
    // x [N, 3, H, W] -> relu(norm(...)) [N, 2048·wf, H/32, W/32]
    Tensor forward_feature_map(const Tensor& x);

    BitConfig config;
    std::shared_ptr<nn::Sequential> stem;    // "conv"
    std::shared_ptr<nn::Sequential> stages;  // "0".."3", each with "blocks"
    std::shared_ptr<GroupNormAct> norm;

protected:
    std::shared_ptr<Module> build_head(const HeadConfig& config, tensor::Generator* gen) override;
};

// timm's resnetv2_50x1_bit / resnetv2_101x1_bit / resnetv2_50x3_bit architectures.
std::shared_ptr<BitResNet> bit_resnetv2_50x1(const HeadConfig& head = HeadConfig::linear(1000),
                                             tensor::Generator* gen = nullptr);
std::shared_ptr<BitResNet> bit_resnetv2_101x1(const HeadConfig& head = HeadConfig::linear(1000),
                                              tensor::Generator* gen = nullptr);
std::shared_ptr<BitResNet> bit_resnetv2_50x3(const HeadConfig& head = HeadConfig::linear(1000),
                                             tensor::Generator* gen = nullptr);

}  // namespace cxr::vision
