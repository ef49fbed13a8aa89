// DenseNet-121/169/201 (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017) with torchvision's
// module names, so a torchvision state dict (converted to safetensors) loads strictly:
//   features: Sequential of conv0 (7×7, stride 2, pad 3, no bias), norm0, relu0, pool0 (max 3×3, stride 2, pad 1),
//             denseblock1, transition1, denseblock2, transition2, denseblock3, transition3, denseblock4, norm5;
//   classifier: the head (vision/heads.h).
// Dense layer i of a block ("denselayer1", ...) sees the concatenation of the block input and every earlier
// layer's output (c_in = c0 + (i−1)·growth) and adds `growth` channels (the bottleneck "DenseNet-B"):
//   norm1 → relu1 → conv1 (1×1, c_in → bn_size·growth) → norm2 → relu2 → conv2 (3×3, pad 1, → growth).
// A transition halves channels and resolution ("DenseNet-C", compression 0.5):
//   norm → relu → conv (1×1, c → c/2, no bias) → pool (avg 2×2, stride 2).
// forward_features = adaptive_avg_pool(relu(features(x)), 1) flattened, as torchvision's forward.
// growth 32, bn_size 4, 64 initial features; blocks: 121 (6,12,24,16), 169 (6,12,32,32), 201 (6,12,48,32);
// drop_rate 0 and no memory-efficient checkpointing. Initialisation as torchvision: convolutions kaiming_normal
// (fan_in, leaky_relu gain with a = 0, i.e. √2), BatchNorm 1 / 0, the linear head's bias 0.
#pragma once

#include <array>
#include <memory>

#include "nn/layers.h"
#include "vision/heads.h"

namespace cxr::vision {

class DenseLayer : public Module {
public:
    DenseLayer(int64_t in_features, int64_t growth_rate, int64_t bn_size, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, c_in, H, W] -> [N, growth, H, W] (the new features only)

    std::shared_ptr<nn::BatchNorm2d> norm1, norm2;
    std::shared_ptr<nn::ReLU> relu1, relu2;
    std::shared_ptr<nn::Conv2d> conv1, conv2;
};

class DenseBlock : public Module {
public:
    DenseBlock(int64_t num_layers, int64_t in_features, int64_t growth_rate, int64_t bn_size,
               tensor::Generator* gen);
    // [N, c0, H, W] -> [N, c0 + num_layers·growth, H, W]: the input and every layer's output, concatenated
    Tensor forward(const Tensor& x) override;
    int64_t out_features() const { return out_features_; }

private:
    std::vector<std::shared_ptr<DenseLayer>> layers_;
    int64_t out_features_;
};

struct DenseNetConfig {
    int64_t growth_rate = 32;
    std::array<int64_t, 4> block_config{6, 12, 24, 16};
    int64_t num_init_features = 64;
    int64_t bn_size = 4;
    HeadConfig head = HeadConfig::linear(1000);
    void validate() const;
};

class DenseNet : public ImageClassifier {
public:
    explicit DenseNet(const DenseNetConfig& config, tensor::Generator* gen = nullptr);
    // x [N, 3, H, W] -> [N, num_features()] (1024 for densenet121, 1664 for 169, 1920 for 201)
    Tensor forward_features(const Tensor& x) override;
    // x [N, 3, H, W] -> relu(features(x)) [N, F, H/32, W/32] (for class activation maps)
    Tensor forward_feature_map(const Tensor& x);

    DenseNetConfig config;
    std::shared_ptr<nn::Sequential> features;
};

std::shared_ptr<DenseNet> densenet121(const HeadConfig& head = HeadConfig::linear(1000),
                                      tensor::Generator* gen = nullptr);
std::shared_ptr<DenseNet> densenet169(const HeadConfig& head = HeadConfig::linear(1000),
                                      tensor::Generator* gen = nullptr);
std::shared_ptr<DenseNet> densenet201(const HeadConfig& head = HeadConfig::linear(1000),
                                      tensor::Generator* gen = nullptr);

}  // namespace cxr::vision
