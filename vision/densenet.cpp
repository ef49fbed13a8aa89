// DenseNet and its blocks (architecture, names and initialisation in vision/densenet.h; Huang et al. 2017).
#include "vision/densenet.h"

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

DenseLayer::DenseLayer(int64_t in_features, int64_t growth, int64_t bn_size, tensor::Generator* gen)
    : Module("_DenseLayer") {
    norm1 = register_module("norm1", std::make_shared<nn::BatchNorm2d>(in_features));
    relu1 = register_module("relu1", std::make_shared<nn::ReLU>());
    conv1 = register_module("conv1",
                            std::make_shared<nn::Conv2d>(in_features, bn_size * growth, 1, 1, 0, 1, 1, false, gen));
    norm2 = register_module("norm2", std::make_shared<nn::BatchNorm2d>(bn_size * growth));
    relu2 = register_module("relu2", std::make_shared<nn::ReLU>());
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(bn_size * growth, growth, 3, 1, 1, 1, 1, false, gen));
}

Tensor DenseLayer::forward(const Tensor& x) {
    Tensor h = conv1->forward(relu1->forward(norm1->forward(x)));  // [N, bn_size·growth, H, W]
    return conv2->forward(relu2->forward(norm2->forward(h)));      // [N, growth, H, W]
}

DenseBlock::DenseBlock(int64_t num_layers, int64_t in_features, int64_t growth, int64_t bn_size,
                       tensor::Generator* gen)
    : Module("_DenseBlock"), out_features_(in_features + num_layers * growth) {
    for (int64_t i = 0; i < num_layers; ++i)
        layers_.push_back(register_module("denselayer" + std::to_string(i + 1),
                                          std::make_shared<DenseLayer>(in_features + i * growth, growth, bn_size, gen)));
}

Tensor DenseBlock::forward(const Tensor& x) {
    std::vector<Tensor> feats{x};
    for (const auto& layer : layers_) feats.push_back(layer->forward(tensor::cat(feats, 1)));
    return tensor::cat(feats, 1);
}

void DenseNetConfig::validate() const {
    CXR_CHECK(growth_rate > 0 && num_init_features > 0 && bn_size > 0,
              "DenseNetConfig: growth_rate, num_init_features and bn_size must be positive");
    for (int64_t n : block_config) CXR_CHECK(n > 0, "DenseNetConfig: every block needs at least one layer");
    head.validate();
}

DenseNet::DenseNet(const DenseNetConfig& cfg, tensor::Generator* gen)
    : ImageClassifier("DenseNet", "classifier"), config(cfg) {
    config.validate();
    features = register_module("features", std::make_shared<nn::Sequential>());
    features->add("conv0", std::make_shared<nn::Conv2d>(3, config.num_init_features, 7, 2, 3, 1, 1, false, gen));
    features->add("norm0", std::make_shared<nn::BatchNorm2d>(config.num_init_features));
    features->add("relu0", std::make_shared<nn::ReLU>());
    features->add("pool0", std::make_shared<nn::MaxPool2d>(3, 2, 1));
    int64_t c = config.num_init_features;
    for (size_t b = 0; b < config.block_config.size(); ++b) {
        auto block = features->add("denseblock" + std::to_string(b + 1),
                                   std::make_shared<DenseBlock>(config.block_config[b], c, config.growth_rate,
                                                                config.bn_size, gen));
        c = block->out_features();
        if (b + 1 < config.block_config.size()) {
            auto trans = std::make_shared<nn::Sequential>();
            trans->add("norm", std::make_shared<nn::BatchNorm2d>(c));
            trans->add("relu", std::make_shared<nn::ReLU>());
            trans->add("conv", std::make_shared<nn::Conv2d>(c, c / 2, 1, 1, 0, 1, 1, false, gen));
            trans->add("pool", std::make_shared<nn::AvgPool2d>(2, 2));
            features->add("transition" + std::to_string(b + 1), trans);
            c /= 2;
        }
    }
    features->add("norm5", std::make_shared<nn::BatchNorm2d>(c));
    {
        // torchvision's DenseNet init: kaiming_normal_ (torch's defaults: fan_in, leaky_relu with a = 0 → gain √2).
        tensor::NoGradGuard ng;
        features->apply([gen](Module& m) {
            if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) nn::init::kaiming_normal_(conv->weight, 0.0,
                                                                                     nn::init::FanMode::fan_in,
                                                                                     nn::init::Nonlinearity::leaky_relu,
                                                                                     gen);
        });
    }
    init_head(c, config.head, gen);
    // torchvision zeroes the Linear biases of the classifier.
    tensor::NoGradGuard ng;
    head().apply([](Module& m) {
        if (auto* lin = dynamic_cast<nn::Linear*>(&m)) nn::init::zeros_(lin->bias);
    });
}

Tensor DenseNet::forward_feature_map(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "DenseNet: expected input [N, 3, H, W], got ",
              tensor::shape_str(x.sizes()));
    return tensor::relu(features->forward(x));  // [N, F, H/32, W/32]
}

Tensor DenseNet::forward_features(const Tensor& x) {
    return tensor::adaptive_avg_pool2d(forward_feature_map(x), {1, 1}).flatten(1);  // [N, F]
}

namespace {
std::shared_ptr<DenseNet> make_densenet(std::array<int64_t, 4> blocks, const HeadConfig& head, tensor::Generator* gen) {
    DenseNetConfig c;
    c.block_config = blocks;
    c.head = head;
    return std::make_shared<DenseNet>(c, gen);
}
}  // namespace

std::shared_ptr<DenseNet> densenet121(const HeadConfig& h, tensor::Generator* g) { return make_densenet({6, 12, 24, 16}, h, g); }
std::shared_ptr<DenseNet> densenet169(const HeadConfig& h, tensor::Generator* g) { return make_densenet({6, 12, 32, 32}, h, g); }
std::shared_ptr<DenseNet> densenet201(const HeadConfig& h, tensor::Generator* g) { return make_densenet({6, 12, 48, 32}, h, g); }

}  // namespace cxr::vision
