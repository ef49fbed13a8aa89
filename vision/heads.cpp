// Classifier heads and the ImageClassifier base (definitions in vision/heads.h).
#include "vision/heads.h"

#include "nn/layers.h"

namespace cxr::vision {

void HeadConfig::validate() const {
    CXR_CHECK(num_classes > 0, "HeadConfig: num_classes must be positive, got ", num_classes);
    if (kind == Kind::mlp) {
        CXR_CHECK(hidden > 0, "HeadConfig: hidden size must be positive, got ", hidden);
        CXR_CHECK(dropout >= 0.0 && dropout < 1.0, "HeadConfig: dropout must be in [0, 1), got ", dropout);
    }
}

std::shared_ptr<Module> make_head(int64_t in_features, const HeadConfig& config, tensor::Generator* gen) {
    config.validate();
    CXR_CHECK(in_features > 0, "make_head: in_features must be positive, got ", in_features);
    if (config.kind == HeadConfig::Kind::linear)
        return std::make_shared<nn::Linear>(in_features, config.num_classes, true, gen);
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(std::make_shared<nn::Linear>(in_features, config.hidden, true, gen));  // "0"
    seq->push_back(std::make_shared<nn::ReLU>());                                         // "1"
    // masks from the default generator: `gen` only initialises and may not outlive construction
    seq->push_back(std::make_shared<nn::Dropout>(config.dropout, nullptr));                // "2"
    seq->push_back(std::make_shared<nn::Linear>(config.hidden, config.num_classes, true, gen));  // "3"
    return seq;
}

Tensor ImageClassifier::forward(const Tensor& x) { return forward_head(forward_features(x)); }

Tensor ImageClassifier::forward_head(const Tensor& features) { return head_->forward(features); }

void ImageClassifier::init_head(int64_t num_features, const HeadConfig& config, tensor::Generator* gen) {
    num_features_ = num_features;
    head_config_ = config;
    head_ = register_module(head_name_, build_head(config, gen));
}

std::shared_ptr<Module> ImageClassifier::build_head(const HeadConfig& config, tensor::Generator* gen) {
    return make_head(num_features_, config, gen);
}

void ImageClassifier::replace_head(const HeadConfig& config, tensor::Generator* gen) {
    auto fresh = build_head(config, gen);
    // Follow the backbone's dtype and device (every model here has backbone parameters besides the head).
    for (const auto& [key, p] : named_parameters()) {
        if (key.rfind(head_name_ + ".", 0) == 0) continue;
        fresh->to(p.dtype());
        fresh->to(p.device());
        break;
    }
    fresh->train(is_training());
    replace_module(head_name_, fresh);
    head_ = fresh;
    head_config_ = config;
}

}  // namespace cxr::vision
