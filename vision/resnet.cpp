// ResNet and its blocks (architecture, names and initialisation in vision/resnet.h; He et al. 2016, with
// torchvision's v1.5 bottleneck).
#include "vision/resnet.h"

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"

namespace cxr::vision {

namespace {

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, tensor::Generator* gen) {
    return std::make_shared<nn::Conv2d>(in, out, 3, stride, 1, 1, 1, false, gen);
}
std::shared_ptr<nn::Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride, tensor::Generator* gen) {
    return std::make_shared<nn::Conv2d>(in, out, 1, stride, 0, 1, 1, false, gen);
}
std::shared_ptr<nn::Sequential> make_downsample(int64_t in, int64_t out, int64_t stride, tensor::Generator* gen) {
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(conv1x1(in, out, stride, gen));        // "downsample.0"
    seq->push_back(std::make_shared<nn::BatchNorm2d>(out));  // "downsample.1"
    return seq;
}

// torchvision's ResNet init: kaiming_normal(fan_out, relu) for convolutions; BatchNorm 1 / 0 (already the
// BatchNorm2d defaults). The head keeps torch's Linear default.
void init_convs(Module& m, tensor::Generator* gen) {
    tensor::NoGradGuard ng;
    m.apply([gen](Module& sub) {
        if (auto* conv = dynamic_cast<nn::Conv2d*>(&sub))
            nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu,
                                      gen);
    });
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, bool with_downsample,
                       tensor::Generator* gen)
    : Module("BasicBlock") {
    conv1 = register_module("conv1", conv3x3(inplanes, planes, stride, gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    relu = register_module("relu", std::make_shared<nn::ReLU>());
    conv2 = register_module("conv2", conv3x3(planes, planes, 1, gen));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    if (with_downsample)
        downsample = register_module("downsample", make_downsample(inplanes, planes * expansion, stride, gen));
}

Tensor BasicBlock::forward(const Tensor& x) {
    Tensor out = relu->forward(bn1->forward(conv1->forward(x)));
    out = bn2->forward(conv2->forward(out));
    Tensor identity = downsample ? downsample->forward(x) : x;
    return relu->forward(tensor::add(out, identity));
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, bool with_downsample,
                       tensor::Generator* gen)
    : Module("Bottleneck") {
    const int64_t width = planes;  // groups 1, base width 64
    conv1 = register_module("conv1", conv1x1(inplanes, width, 1, gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
    conv2 = register_module("conv2", conv3x3(width, width, stride, gen));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
    conv3 = register_module("conv3", conv1x1(width, planes * expansion, 1, gen));
    bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(planes * expansion));
    relu = register_module("relu", std::make_shared<nn::ReLU>());
    if (with_downsample)
        downsample = register_module("downsample", make_downsample(inplanes, planes * expansion, stride, gen));
}

Tensor Bottleneck::forward(const Tensor& x) {
    Tensor out = relu->forward(bn1->forward(conv1->forward(x)));
    out = relu->forward(bn2->forward(conv2->forward(out)));
    out = bn3->forward(conv3->forward(out));
    Tensor identity = downsample ? downsample->forward(x) : x;
    return relu->forward(tensor::add(out, identity));
}

void ResNetConfig::validate() const {
    for (int64_t n : layers) CXR_CHECK(n > 0, "ResNetConfig: every stage needs at least one block");
    CXR_CHECK(width > 0, "ResNetConfig: width must be positive, got ", width);
    head.validate();
}

ResNet::ResNet(const ResNetConfig& cfg, tensor::Generator* gen) : ImageClassifier("ResNet", "fc"), config(cfg) {
    config.validate();
    const int64_t expansion = config.bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
    const int64_t w = config.width;
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(3, w, 7, 2, 3, 1, 1, false, gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(w));
    relu = register_module("relu", std::make_shared<nn::ReLU>());
    maxpool = register_module("maxpool", std::make_shared<nn::MaxPool2d>(3, 2, 1));
    int64_t inplanes = w;
    auto make_layer = [&](int64_t planes, int64_t blocks, int64_t stride) {
        auto seq = std::make_shared<nn::Sequential>();
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t s = b == 0 ? stride : 1;
            const bool down = b == 0 && (s != 1 || inplanes != planes * expansion);
            if (config.bottleneck)
                seq->push_back(std::make_shared<Bottleneck>(inplanes, planes, s, down, gen));
            else
                seq->push_back(std::make_shared<BasicBlock>(inplanes, planes, s, down, gen));
            inplanes = planes * expansion;
        }
        return seq;
    };
    layer1 = register_module("layer1", make_layer(w, config.layers[0], 1));
    layer2 = register_module("layer2", make_layer(2 * w, config.layers[1], 2));
    layer3 = register_module("layer3", make_layer(4 * w, config.layers[2], 2));
    layer4 = register_module("layer4", make_layer(8 * w, config.layers[3], 2));
    avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
    init_convs(*this, gen);
    init_head(8 * w * expansion, config.head, gen);
}

Tensor ResNet::forward_feature_map(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "ResNet: expected input [N, 3, H, W], got ",
              tensor::shape_str(x.sizes()));
    Tensor h = maxpool->forward(relu->forward(bn1->forward(conv1->forward(x))));  // [N, width, H/4, W/4]
    h = layer2->forward(layer1->forward(h));
    return layer4->forward(layer3->forward(h));  // [N, 8·width·expansion, H/32, W/32]
}

Tensor ResNet::forward_features(const Tensor& x) {
    return avgpool->forward(forward_feature_map(x)).flatten(1);  // [N, 8·width·expansion]
}

namespace {
std::shared_ptr<ResNet> make_resnet(bool bottleneck, std::array<int64_t, 4> layers, const HeadConfig& head,
                                    tensor::Generator* gen) {
    ResNetConfig c;
    c.bottleneck = bottleneck;
    c.layers = layers;
    c.head = head;
    return std::make_shared<ResNet>(c, gen);
}
}  // namespace

std::shared_ptr<ResNet> resnet18(const HeadConfig& h, tensor::Generator* g) { return make_resnet(false, {2, 2, 2, 2}, h, g); }
std::shared_ptr<ResNet> resnet34(const HeadConfig& h, tensor::Generator* g) { return make_resnet(false, {3, 4, 6, 3}, h, g); }
std::shared_ptr<ResNet> resnet50(const HeadConfig& h, tensor::Generator* g) { return make_resnet(true, {3, 4, 6, 3}, h, g); }
std::shared_ptr<ResNet> resnet101(const HeadConfig& h, tensor::Generator* g) { return make_resnet(true, {3, 4, 23, 3}, h, g); }
std::shared_ptr<ResNet> resnet152(const HeadConfig& h, tensor::Generator* g) { return make_resnet(true, {3, 8, 36, 3}, h, g); }

}  // namespace cxr::vision
