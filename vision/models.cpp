// The classifier registry (vision/models.h).
#include "vision/models.h"

#include <cctype>

#include "tensor/error.h"
#include "vision/bit.h"
#include "vision/densenet.h"
#include "vision/resnet.h"

namespace cxr::vision {

namespace {

// Splits "resnet18-w16" into ("resnet18", 'w', 16); no suffix gives ('\0', 0).
struct ArchName {
    std::string base;
    char suffix = '\0';
    int64_t value = 0;
};

ArchName parse_arch(const std::string& arch) {
    ArchName a;
    const size_t dash = arch.rfind('-');
    if (dash == std::string::npos) {
        a.base = arch;
        return a;
    }
    a.base = arch.substr(0, dash);
    const std::string tail = arch.substr(dash + 1);
    CXR_CHECK(tail.size() >= 2 && std::isalpha(static_cast<unsigned char>(tail[0])),
              "model '", arch, "': the suffix after '-' must be a letter and a number (e.g. resnet18-w16)");
    for (size_t i = 1; i < tail.size(); ++i)
        CXR_CHECK(std::isdigit(static_cast<unsigned char>(tail[i])), "model '", arch, "': '", tail.substr(1),
                  "' is not a whole number");
    a.suffix = tail[0];
    a.value = std::stoll(tail.substr(1));
    CXR_CHECK(a.value > 0 && a.value <= 4096, "model '", arch, "': ", a.value, " is out of range (1..4096)");
    return a;
}

std::string accepted() {
    std::string r;
    for (const auto& n : classifier_names()) r += (r.empty() ? "" : ", ") + n;
    return r + " (ResNets take -wW, DenseNets -gG)";
}

}  // namespace

const std::vector<std::string>& classifier_names() {
    static const std::vector<std::string> names = {
        "resnet18",    "resnet34",    "resnet50",          "resnet101",          "resnet152",        "densenet121",
        "densenet169", "densenet201", "bit_resnetv2_50x1", "bit_resnetv2_101x1", "bit_resnetv2_50x3"};
    return names;
}

std::shared_ptr<ImageClassifier> make_classifier(const std::string& arch, const HeadConfig& head,
                                                 tensor::Generator* gen) {
    const ArchName a = parse_arch(arch);
    if (a.base.rfind("resnet", 0) == 0) {
        ResNetConfig c;
        if (a.base == "resnet18") c.layers = {2, 2, 2, 2};
        else if (a.base == "resnet34") c.layers = {3, 4, 6, 3};
        else if (a.base == "resnet50") c.bottleneck = true, c.layers = {3, 4, 6, 3};
        else if (a.base == "resnet101") c.bottleneck = true, c.layers = {3, 4, 23, 3};
        else if (a.base == "resnet152") c.bottleneck = true, c.layers = {3, 8, 36, 3};
        else CXR_FAIL("unknown model '", arch, "'; known: ", accepted());
        CXR_CHECK(a.suffix == '\0' || a.suffix == 'w', "model '", arch, "': ResNets take only -wW (stage width)");
        if (a.suffix == 'w') c.width = a.value;
        c.head = head;
        return std::make_shared<ResNet>(c, gen);
    }
    if (a.base.rfind("densenet", 0) == 0) {
        DenseNetConfig c;
        if (a.base == "densenet121") c.block_config = {6, 12, 24, 16};
        else if (a.base == "densenet169") c.block_config = {6, 12, 32, 32};
        else if (a.base == "densenet201") c.block_config = {6, 12, 48, 32};
        else CXR_FAIL("unknown model '", arch, "'; known: ", accepted());
        CXR_CHECK(a.suffix == '\0' || a.suffix == 'g', "model '", arch, "': DenseNets take only -gG (growth rate)");
        if (a.suffix == 'g') {
            c.growth_rate = a.value;
            c.num_init_features = 2 * a.value;
        }
        c.head = head;
        return std::make_shared<DenseNet>(c, gen);
    }
    CXR_CHECK(a.suffix == '\0', "model '", arch, "': BiT models take no suffix");
    if (a.base == "bit_resnetv2_50x1") return bit_resnetv2_50x1(head, gen);
    if (a.base == "bit_resnetv2_101x1") return bit_resnetv2_101x1(head, gen);
    if (a.base == "bit_resnetv2_50x3") return bit_resnetv2_50x3(head, gen);
    CXR_FAIL("unknown model '", arch, "'; known: ", accepted());
}

}  // namespace cxr::vision
