// BiT-style ResNet-v2: weight-standardised convolutions, GroupNorm, pre-activation bottlenecks (definitions,
// names and references in vision/bit.h).
#include "vision/bit.h"

#include "tensor/autograd.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

StdConv2d::StdConv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, double eps_,
                     tensor::Generator* gen)
    : nn::Conv2d(in, out, kernel, stride, padding, 1, 1, false, gen), eps(eps_) {}

Tensor StdConv2d::standardized_weight() const {
    Tensor w = weight.reshape({out_channels, -1});                   // [O, I·kh·kw]
    Tensor mean = tensor::mean(w, {1}, true);                         // [O, 1]
    Tensor var = tensor::var(w, {1}, /*correction=*/0, true);         // [O, 1], biased
    Tensor ws = tensor::mul(tensor::sub(w, mean), tensor::rsqrt(tensor::add(var, eps)));
    return ws.reshape(weight.sizes());
}

Tensor StdConv2d::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == in_channels, "StdConv2d(", in_channels, ", ", out_channels,
              "): expected input [N, ", in_channels, ", H, W], got ", tensor::shape_str(x.sizes()));
    return tensor::conv2d(x, standardized_weight(), bias, stride, padding, dilation, groups);
}

Tensor GroupNormAct::forward(const Tensor& x) { return tensor::relu(nn::GroupNorm::forward(x)); }

PreActBottleneck::PreActBottleneck(int64_t in, int64_t out, int64_t stride, bool with_downsample, int64_t groups,
                                   double eps, tensor::Generator* gen)
    : Module("PreActBottleneck") {
    const int64_t mid = out / 4;
    if (with_downsample) {
        // timm's DownsampleConv with preact = true: a 1×1 StdConv2d and an Identity norm (no parameters).
        auto ds = std::make_shared<nn::Sequential>();
        downsample_conv = ds->add("conv", std::make_shared<StdConv2d>(in, out, 1, stride, 0, eps, gen));
        ds->add("norm", std::make_shared<nn::Identity>());
        downsample = register_module("downsample", std::shared_ptr<Module>(ds));
    }
    norm1 = register_module("norm1", std::make_shared<GroupNormAct>(groups, in));
    conv1 = register_module("conv1", std::make_shared<StdConv2d>(in, mid, 1, 1, 0, eps, gen));
    norm2 = register_module("norm2", std::make_shared<GroupNormAct>(groups, mid));
    conv2 = register_module("conv2", std::make_shared<StdConv2d>(mid, mid, 3, stride, 1, eps, gen));
    norm3 = register_module("norm3", std::make_shared<GroupNormAct>(groups, mid));
    conv3 = register_module("conv3", std::make_shared<StdConv2d>(mid, out, 1, 1, 0, eps, gen));
}

Tensor PreActBottleneck::forward(const Tensor& x) {
    Tensor preact = norm1->forward(x);
    Tensor shortcut = downsample ? downsample_conv->forward(preact) : x;
    Tensor y = conv1->forward(preact);
    y = conv2->forward(norm2->forward(y));
    y = conv3->forward(norm3->forward(y));
    return tensor::add(y, shortcut);
}

void BitConfig::validate() const {
    for (int64_t n : layers) CXR_CHECK(n > 0, "BitConfig: every stage needs at least one block");
    CXR_CHECK(width_factor > 0 && num_groups > 0, "BitConfig: width_factor and num_groups must be positive");
    CXR_CHECK((64 * width_factor) % num_groups == 0, "BitConfig: 64·width_factor must be divisible by num_groups");
    CXR_CHECK(std_eps > 0, "BitConfig: std_eps must be positive");
    head.validate();
}

namespace {
// timm's BiT head with a linear config: "fc" = 1×1 Conv2d on the pooled features, flattened.
class BitLinearHead : public Module {
public:
    BitLinearHead(int64_t in, int64_t classes, tensor::Generator* gen) : Module("ClassifierHead") {
        fc = register_module("fc", std::make_shared<nn::Conv2d>(in, classes, 1, 1, 0, 1, 1, true, gen));
        tensor::NoGradGuard ng;
        nn::init::normal_(fc->weight, 0.0, 0.01, gen);
        nn::init::zeros_(fc->bias);
    }
    Tensor forward(const Tensor& features) override {  // [N, F] -> [N, classes]
        return fc->forward(features.reshape({features.size(0), features.size(1), 1, 1})).flatten(1);
    }
    std::shared_ptr<nn::Conv2d> fc;
};
}  // namespace

BitResNet::BitResNet(const BitConfig& cfg, tensor::Generator* gen) : ImageClassifier("ResNetV2", "head"), config(cfg) {
    config.validate();
    const int64_t wf = config.width_factor;
    stem = register_module("stem", std::make_shared<nn::Sequential>());
    stem->add("conv", std::make_shared<StdConv2d>(3, 64 * wf, 7, 2, 3, config.std_eps, gen));
    stages = register_module("stages", std::make_shared<nn::Sequential>());
    int64_t prev = 64 * wf;
    const std::array<int64_t, 4> widths{256, 512, 1024, 2048};
    for (size_t s = 0; s < 4; ++s) {
        const int64_t out = widths[s] * wf;
        auto blocks = std::make_shared<nn::Sequential>();
        for (int64_t b = 0; b < config.layers[s]; ++b) {
            const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
            blocks->push_back(std::make_shared<PreActBottleneck>(b == 0 ? prev : out, out, stride, b == 0,
                                                                 config.num_groups, config.std_eps, gen));
        }
        auto stage = std::make_shared<nn::Sequential>();
        stage->add("blocks", blocks);
        stages->push_back(stage);
        prev = out;
    }
    norm = register_module("norm", std::make_shared<GroupNormAct>(config.num_groups, prev));
    {
        tensor::NoGradGuard ng;
        apply([gen](Module& m) {
            if (auto* conv = dynamic_cast<StdConv2d*>(&m))
                nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu,
                                          gen);
        });
    }
    init_head(prev, config.head, gen);
}

std::shared_ptr<Module> BitResNet::build_head(const HeadConfig& c, tensor::Generator* gen) {
    if (c.kind == HeadConfig::Kind::linear) {
        c.validate();
        return std::make_shared<BitLinearHead>(num_features(), c.num_classes, gen);
    }
    return make_head(num_features(), c, gen);
}

Tensor BitResNet::forward_feature_map(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == 3, "BitResNet: expected input [N, 3, H, W], got ",
              tensor::shape_str(x.sizes()));
    Tensor h = stem->forward(x);                       // [N, 64·wf, H/2, W/2]
    h = tensor::pad(h, {1, 1, 1, 1});                  // BiT's fixed padding, zeros
    h = tensor::max_pool2d(h, {3, 3}, {2, 2});         // [N, 64·wf, H/4, W/4]
    return norm->forward(stages->forward(h));          // [N, 2048·wf, H/32, W/32]
}

Tensor BitResNet::forward_features(const Tensor& x) {
    return tensor::mean(forward_feature_map(x), {2, 3});  // [N, 2048·wf]
}

namespace {
std::shared_ptr<BitResNet> make_bit(std::array<int64_t, 4> layers, int64_t wf, const HeadConfig& head,
                                    tensor::Generator* gen) {
    BitConfig c;
    c.layers = layers;
    c.width_factor = wf;
    c.head = head;
    return std::make_shared<BitResNet>(c, gen);
}
}  // namespace

std::shared_ptr<BitResNet> bit_resnetv2_50x1(const HeadConfig& h, tensor::Generator* g) { return make_bit({3, 4, 6, 3}, 1, h, g); }
std::shared_ptr<BitResNet> bit_resnetv2_101x1(const HeadConfig& h, tensor::Generator* g) { return make_bit({3, 4, 23, 3}, 1, h, g); }
std::shared_ptr<BitResNet> bit_resnetv2_50x3(const HeadConfig& h, tensor::Generator* g) { return make_bit({3, 4, 6, 3}, 3, h, g); }

}  // namespace cxr::vision
