// Classifier heads and the common shape of every vision classifier in cxr.
//
// HeadConfig describes the layer(s) after the penultimate features [N, F]:
//   - linear:  Linear(F, num_classes)  — torchvision's own head ("fc" in ResNet, "classifier" in DenseNet);
//              e.g. the 14 CheXpert/NIH labels of the fairness studies (HeadConfig::linear(14)).
//   - mlp:     Sequential(Linear(F, hidden), ReLU, Dropout(p), Linear(hidden, num_classes)), children "0".."3"
//              as torch's nn.Sequential, so the keys are "<head>.0.weight" and "<head>.3.weight" — the
//              1024→512→ReLU→Dropout(0.5)→2 head of the pneumonia study on DenseNet-121 (HeadConfig::mlp(2)).
//
// ImageClassifier is the base of the models: forward(x) = head(forward_features(x)), where forward_features
// returns the pooled penultimate features [N, F] (for FID with a chest X-ray encoder and embedding similarity).
// replace_head() swaps the head for fine-tuning (e.g. 1000 ImageNet classes → 14 labels, or pretraining on
// synthetic labels → fine-tuning on real ones); the new head keeps the model's head name, so a state dict saved
// afterwards has the keys a torchvision user gets after `model.fc = nn.Linear(F, 14)`.
#pragma once

#include <memory>
#include <string>

#include "nn/module.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::vision {

using nn::Module;
using tensor::Tensor;

struct HeadConfig {
    enum class Kind { linear, mlp };
    Kind kind = Kind::linear;
    int64_t num_classes = 1000;
    int64_t hidden = 512;  // mlp only
    double dropout = 0.5;  // mlp only

    static HeadConfig linear(int64_t num_classes) { return {Kind::linear, num_classes, 512, 0.5}; }
    static HeadConfig mlp(int64_t num_classes, int64_t hidden = 512, double dropout = 0.5) {
        return {Kind::mlp, num_classes, hidden, dropout};
    }
    void validate() const;  // throws cxr::Error on non-positive sizes or a dropout outside [0, 1)
};

// A head taking [N, in_features] to [N, num_classes], initialised as torch's defaults (nn/basic.h: Linear).
std::shared_ptr<Module> make_head(int64_t in_features, const HeadConfig& config, tensor::Generator* gen = nullptr);

class ImageClassifier : public Module {
public:
    // x [N, 3, H, W] -> logits [N, num_classes]
    Tensor forward(const Tensor& x) override;
    // x [N, 3, H, W] -> pooled penultimate features [N, num_features()]
    virtual Tensor forward_features(const Tensor& x) = 0;
    // features [N, F] -> logits [N, num_classes]
    virtual Tensor forward_head(const Tensor& features);

    int64_t num_features() const { return num_features_; }
    const HeadConfig& head_config() const { return head_config_; }
    const std::string& head_name() const { return head_name_; }
    Module& head() const { return *head_; }
    // Replaces the head by a freshly initialised one (the backbone is untouched; the new head is in the model's
    // current train/eval mode, device and dtype).
    void replace_head(const HeadConfig& config, tensor::Generator* gen = nullptr);

protected:
    ImageClassifier(std::string type_name, std::string head_name) : Module(std::move(type_name)),
                                                                    head_name_(std::move(head_name)) {}
    // Builds and registers the head; called by the subclass constructor once num_features is known.
    void init_head(int64_t num_features, const HeadConfig& config, tensor::Generator* gen);
    // The head module for a config; subclasses override to keep a library's own head layout (BiT's 1x1 conv).
    virtual std::shared_ptr<Module> build_head(const HeadConfig& config, tensor::Generator* gen);

private:
    std::string head_name_;
    int64_t num_features_ = 0;
    HeadConfig head_config_;
    std::shared_ptr<Module> head_;
};

}  // namespace cxr::vision
