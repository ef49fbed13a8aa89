// The classifier registry: builds any vision model by an architecture name, so configs, checkpoints and the
// command line name a model with one string.
//
// Names:
//   resnet18 resnet34 resnet50 resnet101 resnet152     torchvision's ResNets (vision/resnet.h)
//   densenet121 densenet169 densenet201                  torchvision's DenseNets (vision/densenet.h)
//   bit_resnetv2_50x1 bit_resnetv2_101x1 bit_resnetv2_50x3   BiT ResNet-v2 (vision/bit.h)
// Suffixes for small models (same key names, fewer channels; for CPU demos and tests):
//   resnetNN-wW        ResNet with stage widths W, 2W, 4W, 8W (torchvision: W = 64), e.g. "resnet18-w16";
//   densenetNNN-gG     DenseNet with growth rate G and 2G initial features (torchvision: G = 32), e.g.
//                      "densenet121-g8".
// Inception-v3 (FID) is not a classifier for training and is built by vision/inception.h directly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vision/heads.h"

namespace cxr::vision {

// Throws cxr::Error listing the accepted names when `arch` is not one of them.
std::shared_ptr<ImageClassifier> make_classifier(const std::string& arch, const HeadConfig& head,
                                                 tensor::Generator* gen = nullptr);
const std::vector<std::string>& classifier_names();  // the base names above

}  // namespace cxr::vision
