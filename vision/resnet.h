// ResNet-18/34/50/101/152 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) with
// torchvision's module names, so a torchvision state dict (converted to safetensors) loads strictly:
//   conv1 (7×7, stride 2, pad 3, no bias), bn1, relu, maxpool (3×3, stride 2, pad 1),
//   layer1..layer4 — Sequential of blocks "0", "1", ...; the first block of layers 2–4 has stride 2;
//   avgpool (adaptive, 1×1), fc (the head; see vision/heads.h).
// BasicBlock (resnet18/34, expansion 1):  conv1 3×3 (stride) → bn1 → relu → conv2 3×3 → bn2, + identity, relu.
// Bottleneck (resnet50/101/152, expansion 4), torchvision's "v1.5": the stride sits on the 3×3 conv:
//   conv1 1×1 → bn1 → relu → conv2 3×3 (stride) → bn2 → relu → conv3 1×1 (×4) → bn3, + identity, relu.
// The identity is downsample = Sequential(conv 1×1 with the block's stride, no bias; BatchNorm) ("downsample.0",
// "downsample.1") when the stride is not 1 or the channel count changes.
// Stage widths 64, 128, 256, 512 (×4 for bottlenecks; ResNetConfig::width scales them); blocks per stage: 18 [2,2,2,2], 34 [3,4,6,3],
// 50 [3,4,6,3], 101 [3,4,23,3], 152 [3,8,36,3].
// Initialisation as torchvision: convolutions kaiming_normal (mode fan_out, relu gain), BatchNorm weight 1 and
// bias 0, the head as torch's Linear default.
#pragma once

#include <array>
#include <memory>

#include "nn/layers.h"
#include "vision/heads.h"

namespace cxr::vision {

class BasicBlock : public Module {
public:
    static constexpr int64_t expansion = 1;
    BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, bool with_downsample, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, inplanes, H, W] -> [N, planes, H/stride, W/stride]

    std::shared_ptr<nn::Conv2d> conv1, conv2;
    std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
    std::shared_ptr<nn::ReLU> relu;
    std::shared_ptr<nn::Sequential> downsample;  // null when the identity is used as it is
};

class Bottleneck : public Module {
public:
    static constexpr int64_t expansion = 4;
    Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, bool with_downsample, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, inplanes, H, W] -> [N, 4·planes, H/stride, W/stride]

    std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
    std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
    std::shared_ptr<nn::ReLU> relu;
    std::shared_ptr<nn::Sequential> downsample;
};

struct ResNetConfig {
    bool bottleneck = false;               // BasicBlock when false
    std::array<int64_t, 4> layers{2, 2, 2, 2};
    // Stage widths width, 2·width, 4·width, 8·width (torchvision: 64). Smaller widths give the small models the
    // CPU demo and tests train in seconds (e.g. "resnet18-w16", vision/models.h); the key names are unchanged.
    int64_t width = 64;
    HeadConfig head = HeadConfig::linear(1000);
    void validate() const;
};

class ResNet : public ImageClassifier {
public:
    explicit ResNet(const ResNetConfig& config, tensor::Generator* gen = nullptr);
    // x [N, 3, H, W] -> [N, 8·width·expansion] (after avgpool, flattened)
    Tensor forward_features(const Tensor& x) override;
    // x [N, 3, H, W] -> the last stage's map [N, 8·width·expansion, H/32, W/32] (for class activation maps)
    Tensor forward_feature_map(const Tensor& x);

    ResNetConfig config;
    std::shared_ptr<nn::Conv2d> conv1;
    std::shared_ptr<nn::BatchNorm2d> bn1;
    std::shared_ptr<nn::ReLU> relu;
    std::shared_ptr<nn::MaxPool2d> maxpool;
    std::shared_ptr<nn::Sequential> layer1, layer2, layer3, layer4;
    std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
};

std::shared_ptr<ResNet> resnet18(const HeadConfig& head = HeadConfig::linear(1000), tensor::Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet34(const HeadConfig& head = HeadConfig::linear(1000), tensor::Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet50(const HeadConfig& head = HeadConfig::linear(1000), tensor::Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet101(const HeadConfig& head = HeadConfig::linear(1000), tensor::Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet152(const HeadConfig& head = HeadConfig::linear(1000), tensor::Generator* gen = nullptr);

}  // namespace cxr::vision
