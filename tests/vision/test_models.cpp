// Tests of the vision models (vision/resnet.h, densenet.h, inception.h, bit.h, heads.h) against the libraries
// that define them, through tests/fixtures/tools/make_vision_fixtures.py (torchvision, pytorch-fid, timm):
//   - name/shape parity: each full-size model's state-dict keys and shapes equal the library's exactly
//     (tests/fixtures/vision_keys.json: full lists for resnet18/50, densenet121, Inception-v3 FID, BiT-R50x1 and
//     the pneumonia MLP head; count + element count + FNV-1a hash of the canonical listing for resnet34/101/152
//     and densenet169/201);
//   - numerical parity on the real architectures: every parameter and buffer is set by a documented formula
//     (formula_fill below, the same as the script's), which both sides compute, so no weights are stored; the
//     logits and penultimate features of eval mode are compared with the library's float64 outputs
//     (tests/fixtures/vision_models.*), and for resnet18/densenet121 also train mode (batch statistics) and two
//     projections of every parameter gradient; Inception-FID through pytorch-fid's own wrapper, without and with
//     its resize to 299 (the latter [slow]);
//   - weight standardisation (StdConv2d) by its defining identity and an f64 gradient check;
//   - heads: replacing a head keeps the backbone and gives torch's key names.
#include "tests/support/testing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"
#include "vision/bit.h"
#include "vision/densenet.h"
#include "vision/inception.h"
#include "vision/resnet.h"

using namespace cxr::vision;
using cxr::nn::StateDict;
using cxr::tensor::DType;
using cxr::tensor::Shape;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;
using nlohmann::json;

namespace {

const json& vision_keys() { return cxr::testing::fixture_record("vision_keys"); }

std::string shape_csv(const Shape& s) {
    std::string r;
    for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
    return r;
}

// The canonical listing of make_vision_fixtures.py: "key:d0,d1,...\n" for each key in sorted order.
std::string canonical(const StateDict& sd) {
    std::string r;
    for (const auto& [k, v] : sd) r += k + ":" + shape_csv(v.sizes()) + "\n";
    return r;
}

std::string fnv1a64(const std::string& text) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// Keys and shapes of `m` equal the library's list `name` of vision_keys.json exactly (restricted to keys that
// start with `prefix`).
void check_keys(const std::string& name, const cxr::nn::Module& m, const std::string& prefix = "") {
    const json& ref = vision_keys().at("full").at(name);
    std::map<std::string, Shape> mine;
    for (const auto& [k, v] : m.state_dict())
        if (k.rfind(prefix, 0) == 0) mine[k] = v.sizes();
    std::vector<std::string> missing, extra, wrong;
    for (auto it = ref.begin(); it != ref.end(); ++it) {
        auto f = mine.find(it.key());
        if (f == mine.end()) {
            missing.push_back(it.key());
            continue;
        }
        if (f->second != it.value().get<Shape>()) wrong.push_back(it.key());
    }
    for (const auto& [k, s] : mine)
        if (!ref.contains(k)) extra.push_back(k);
    INFO(name << ": " << ref.size() << " library keys, " << mine.size() << " cxr keys");
    for (const auto& k : missing) UNSCOPED_INFO("missing in cxr: " << k);
    for (const auto& k : extra) UNSCOPED_INFO("not in the library: " << k);
    for (const auto& k : wrong) UNSCOPED_INFO("shape differs: " << k << " cxr " << shape_csv(mine[k]));
    CHECK(missing.empty());
    CHECK(extra.empty());
    CHECK(wrong.empty());
}

void check_hashed(const std::string& name, const cxr::nn::Module& m) {
    const json& ref = vision_keys().at("hashed").at(name);
    const StateDict sd = m.state_dict();
    int64_t numel = 0;
    for (const auto& [k, v] : sd) numel += v.numel();
    INFO(name);
    CHECK(static_cast<int64_t>(sd.size()) == ref.at("count").get<int64_t>());
    CHECK(numel == ref.at("numel").get<int64_t>());
    CHECK(fnv1a64(canonical(sd)) == ref.at("fnv1a64").get<std::string>());
}

// The weight formula of make_vision_fixtures.py: over the floating state-dict entries in sorted key order
// (k = position), s = sin(0.37 i + k) with i the flat index;  running_var 1 + 0.5 s²,  running_mean 0.1 s,
// 1-D "weight" 1 + 0.1 s,  other 1-D 0.1 s,  ≥ 2-D s·sqrt(3 / fan_in) with fan_in = numel / shape[0].
void formula_fill(cxr::nn::Module& m) {
    T::NoGradGuard ng;
    int64_t k = 0;
    for (const auto& [key, t] : m.state_dict()) {
        if (!T::is_floating(t.dtype())) continue;
        const std::string leaf = key.substr(key.rfind('.') + 1);
        const int64_t n = t.numel();
        std::vector<double> v(static_cast<size_t>(n));
        const double scale = t.dim() >= 2 ? std::sqrt(3.0 / static_cast<double>(n / t.size(0))) : 0.0;
        for (int64_t i = 0; i < n; ++i) {
            const double s = std::sin(0.37 * static_cast<double>(i) + static_cast<double>(k));
            double x;
            if (leaf == "running_var") x = 1 + 0.5 * s * s;
            else if (leaf == "running_mean") x = 0.1 * s;
            else if (t.dim() == 1 && leaf == "weight") x = 1 + 0.1 * s;
            else if (t.dim() <= 1) x = 0.1 * s;
            else x = s * scale;
            v[static_cast<size_t>(i)] = x;
        }
        T::copy_into(t, T::from_vector(v, t.sizes()).to(t.dtype()));
        ++k;
    }
}

// x[n] = sin(12.9898 n + 78.233), or 0.5 + 0.5 x[n] (the script's formula_input).
T::Tensor formula_input(const Shape& shape, bool unit_range = false, DType dtype = DType::f32) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const double x = std::sin(12.9898 * static_cast<double>(i) + 78.233);
        v[static_cast<size_t>(i)] = unit_range ? 0.5 + 0.5 * x : x;
    }
    return T::from_vector(v, shape).to(dtype);
}

// Tolerances for f32 forward passes of deep nets against a float64 reference: the outputs are O(1) (the JSON
// records their maxima, ≤ 4); float32 accumulation over tens of layers leaves errors of ~1e-5 relative.
constexpr double kAtol = 2e-4, kRtol = 2e-3;

// `dev`: the device the model runs on (the fixtures and comparisons stay on the CPU).
void check_eval(const std::string& name, ImageClassifier& model, T::Device dev = T::Device::cpu()) {
    Fixtures fx("vision_models");
    formula_fill(model);
    model.eval();
    T::NoGradGuard ng;
    const T::Tensor x = formula_input({2, 3, 64, 64});
    CXR_EXPECT_CLOSE(x.flatten().narrow(0, 0, 8), fx.get("check.input_head"), 1e-6, 0);
    {
        // the formula agrees on the first key (a quick diagnosis when it does not)
        const auto sd = model.state_dict();
        INFO("formula values of " << sd.begin()->first);
        const T::Tensor first = sd.begin()->second.flatten();
        CXR_EXPECT_CLOSE(first.narrow(0, 0, std::min<int64_t>(8, first.numel())),
                         fx.get("check." + name + ".first_key_head"), 1e-7, 1e-6);
    }
    model.to(dev);
    const T::Tensor feats_dev = model.forward_features(x.to(dev));
    const T::Tensor logits = model.forward_head(feats_dev).to(T::Device::cpu());
    const T::Tensor feats = feats_dev.to(T::Device::cpu());
    {
        INFO(name << ".features on " << dev.str());
        CXR_EXPECT_CLOSE(feats, fx.get(name + ".features"), kAtol, kRtol);
    }
    {
        INFO(name << ".logits on " << dev.str());
        CXR_EXPECT_CLOSE(logits, fx.get(name + ".logits"), kAtol, kRtol);
    }
}

// Train mode (batch statistics): the logits on the eval input, computed in float64 like the reference. With the
// formula weights some channels are nearly constant over the batch, so batch normalisation amplifies input
// perturbations about 1e7-fold: in float32 the logits differ by O(1) (the float32 rounding of the input alone
// moves the float64 result by 3e-2), while float64 against float64 agrees to the stated tolerance. Then, in eval mode on [2, 3, 32, 32], loss =
// sum(logits · w), w[n] = cos(0.5 n), and per parameter (sorted keys, position k) [sum(g), sum(g · p)] with
// p[i] = cos(0.91 i + k), against torch's float64 gradients. (Batch-statistics gradients are not compared: with
// the formula weights some channels are nearly constant over the batch and those gradients reach 1e8 — too
// ill-conditioned for f32 against f64; BatchNorm's training backward is checked in tests/nn and tests/tensor.)
void check_train_and_grads(const std::string& name, ImageClassifier& model, T::Device dev = T::Device::cpu()) {
    Fixtures fx("vision_models");
    formula_fill(model);
    model.to(dev);
    {
        model.train();
        model.to(DType::f64);
        T::NoGradGuard ng;
        const T::Tensor logits =
                model.forward(formula_input({2, 3, 64, 64}, false, DType::f64).to(dev)).to(T::Device::cpu());
        model.to(DType::f32);
        INFO(name << ".train_logits on " << dev.str());
        CXR_EXPECT_CLOSE(logits, fx.get(name + ".train_logits"), kAtol, kRtol);
    }
    model.eval();
    model.to(T::Device::cpu());
    formula_fill(model);  // the train pass moved the running statistics
    model.to(dev);
    model.zero_grad();
    const T::Tensor logits = model.forward(formula_input({2, 3, 32, 32}).to(dev));
    std::vector<double> wv(static_cast<size_t>(logits.numel()));
    for (size_t i = 0; i < wv.size(); ++i) wv[i] = std::cos(0.5 * static_cast<double>(i));
    T::sum(T::mul(logits, T::from_vector(wv, logits.sizes()).to(DType::f32).to(dev))).backward();
    std::map<std::string, T::Tensor> params;
    for (const auto& [k, p] : model.named_parameters()) params[k] = p;
    CHECK(params.size() == fx.names_with_prefix(name + ".grad.").size());
    int64_t k = 0;
    for (const auto& [key, p] : params) {
        INFO(name << ".grad." << key << " on " << dev.str());
        REQUIRE(p.grad().defined());
        const T::Tensor g = p.grad().to(T::Device::cpu()).to(DType::f64).contiguous();
        std::vector<double> pv(static_cast<size_t>(g.numel()));
        for (size_t i = 0; i < pv.size(); ++i) pv[i] = std::cos(0.91 * static_cast<double>(i) + static_cast<double>(k));
        const T::Tensor summary = T::stack({T::sum(g), T::sum(T::mul(g, T::from_vector(pv, g.sizes())))}, 0);
        // f32 backward against f64: the summaries range over 1e-4 .. 1e3, hence atol 1e-5 and rtol 5e-3.
        CXR_EXPECT_CLOSE(summary, fx.get(name + ".grad." + key), 1e-5, 5e-3);
        ++k;
    }
}

}  // namespace

TEST_CASE("resnet18/50 state-dict keys and shapes equal torchvision's", "[cpu][vision]") {
    check_keys("resnet18", *resnet18());
    check_keys("resnet50", *resnet50());
}

TEST_CASE("resnet34 state-dict keys and shapes equal torchvision's", "[cpu][vision]") {
    check_hashed("resnet34", *resnet34());
}

// resnet101/152 hold 45M/60M parameters: building them (with their random initialisation) takes over 2 s here.
TEST_CASE("resnet101/152 state-dict keys and shapes equal torchvision's", "[cpu][vision][slow]") {
    check_hashed("resnet101", *resnet101());
    check_hashed("resnet152", *resnet152());
}

TEST_CASE("densenet121 state-dict keys and shapes equal torchvision's", "[cpu][vision]") {
    check_keys("densenet121", *densenet121());
    // the pneumonia-study head, as torch's nn.Sequential(Linear, ReLU, Dropout, Linear)
    check_keys("densenet121_mlp_head", *densenet121(HeadConfig::mlp(2)), "classifier");
}

TEST_CASE("densenet169/201 state-dict keys and shapes equal torchvision's", "[cpu][vision]") {
    check_hashed("densenet169", *densenet169());
    check_hashed("densenet201", *densenet201());
}

TEST_CASE("Inception-v3 (FID) state-dict keys and shapes equal pytorch-fid's", "[cpu][vision]") {
    check_keys("inception_fid", *inception_v3_fid());
}

TEST_CASE("BiT ResNet-v2 state-dict keys and shapes equal timm's resnetv2_50x1_bit", "[cpu][vision]") {
    check_keys("bit_resnetv2_50x1", *bit_resnetv2_50x1());
}

TEST_CASE("resnet18 matches torchvision (eval: logits and features)", "[cpu][vision]") {
    check_eval("resnet18", *resnet18(HeadConfig::linear(10)));
}

TEST_CASE("resnet50 matches torchvision (eval: logits and features)", "[cpu][vision]") {
    check_eval("resnet50", *resnet50(HeadConfig::linear(10)));
}

TEST_CASE("densenet121 matches torchvision (eval: logits and features)", "[cpu][vision]") {
    check_eval("densenet121", *densenet121(HeadConfig::linear(14)));
}

TEST_CASE("BiT ResNet-v2 50x1 matches timm (eval: logits and features)", "[cpu][vision]") {
    check_eval("bit_resnetv2_50x1", *bit_resnetv2_50x1(HeadConfig::linear(5)));
}

TEST_CASE("resnet18 matches torchvision in train mode, and its parameter gradients", "[cpu][vision]") {
    check_train_and_grads("resnet18", *resnet18(HeadConfig::linear(10)));
}

TEST_CASE("densenet121 matches torchvision in train mode, and its parameter gradients", "[cpu][vision]") {
    check_train_and_grads("densenet121", *densenet121(HeadConfig::linear(14)));
}

// The same fixtures with the model on the GPU (issue 4: "and on the GPU in the gpu-check log"): the CUDA kernels
// against torchvision's float64 results with the CPU's tolerances (f32 cuDNN runs with FMA math, not TF32).
TEST_CASE("resnet18, resnet50 and densenet121 match torchvision on CUDA (eval)", "[gpu][cuda][vision]") {
    CXR_SKIP_WITHOUT_GPU();
    check_eval("resnet18", *resnet18(HeadConfig::linear(10)), T::Device::cuda(0));
    check_eval("resnet50", *resnet50(HeadConfig::linear(10)), T::Device::cuda(0));
    check_eval("densenet121", *densenet121(HeadConfig::linear(14)), T::Device::cuda(0));
}

TEST_CASE("resnet18 and densenet121 train mode and parameter gradients match torchvision on CUDA",
          "[gpu][cuda][vision]") {
    CXR_SKIP_WITHOUT_GPU();
    check_train_and_grads("resnet18", *resnet18(HeadConfig::linear(10)), T::Device::cuda(0));
    check_train_and_grads("densenet121", *densenet121(HeadConfig::linear(14)), T::Device::cuda(0));
}

TEST_CASE("Inception-v3 FID features match pytorch-fid's wrapper on CUDA (80x80 and resize to 299)",
          "[gpu][cuda][vision]") {
    CXR_SKIP_WITHOUT_GPU();
    Fixtures fx("vision_models");
    auto net = inception_v3_fid();
    formula_fill(*net);
    net->eval();
    net->to(T::Device::cuda(0));
    T::NoGradGuard ng;
    const T::Tensor x = formula_input({2, 3, 80, 80}, true).to(T::Device::cuda(0));
    CXR_EXPECT_CLOSE(net->fid_features(x, false).to(T::Device::cpu()), fx.get("inception_fid.features80"), kAtol,
                     kRtol);
    const T::Tensor small = formula_input({1, 3, 12, 12}, true).to(T::Device::cuda(0));  // resized to 299 inside
    CXR_EXPECT_CLOSE(net->fid_features(small, true).to(T::Device::cpu()), fx.get("inception_fid.features299"), kAtol,
                     kRtol);
}

TEST_CASE("Inception-v3 FID features match pytorch-fid's wrapper (80x80, no resize)", "[cpu][vision]") {
    Fixtures fx("vision_models");
    auto net = inception_v3_fid();
    formula_fill(*net);
    net->eval();
    T::NoGradGuard ng;
    const T::Tensor feats = net->fid_features(formula_input({2, 3, 80, 80}, true), /*resize_input=*/false);
    CXR_EXPECT_CLOSE(feats, fx.get("inception_fid.features80"), kAtol, kRtol);
}

// Full 299×299 network (≈ 5.7 GFLOP): several seconds on 2 cores, hence [slow].
TEST_CASE("Inception-v3 FID features match pytorch-fid's wrapper (resize to 299)", "[cpu][vision][slow]") {
    Fixtures fx("vision_models");
    auto net = inception_v3_fid();
    formula_fill(*net);
    net->eval();
    T::NoGradGuard ng;
    const T::Tensor feats = net->fid_features(formula_input({1, 3, 12, 12}, true));
    CXR_EXPECT_CLOSE(feats, fx.get("inception_fid.features299"), kAtol, kRtol);
}

TEST_CASE("StdConv2d standardises each output channel and its gradient matches finite differences",
          "[cpu][vision]") {
    T::Generator gen(7);
    StdConv2d conv(3, 4, 3, 1, 1, 1e-8, &gen);
    conv.to(DType::f64);
    // identity: per output channel, mean 0 and biased variance v / (v + eps), v the raw weight's variance
    const T::Tensor ws = conv.standardized_weight().reshape({4, -1});
    const T::Tensor v = T::var(conv.weight.reshape({4, -1}), {1}, 0);
    CXR_EXPECT_CLOSE(T::mean(ws, {1}), T::zeros({4}, DType::f64), 1e-12, 0);
    CXR_EXPECT_CLOSE(T::var(ws, {1}, 0), T::div(v, T::add(v, 1e-8)), 1e-12, 1e-12);
    // f64 gradient check through the standardisation and the convolution, input and weight
    T::Tensor x = cxr::testing::random_input({2, 3, 5, 5}, 11);
    T::Tensor w = cxr::testing::random_input({4, 3, 3, 3}, 12);
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    CXR_EXPECT_GRADCHECK(
        [&conv](const std::vector<T::Tensor>& in) {
            conv.weight = in[1];  // the registered slot is the member: the layer now uses this leaf
            return conv.forward(in[0]);
        },
        std::vector<T::Tensor>{x, w});
}

TEST_CASE("replace_head swaps the classifier for fine-tuning and keeps the backbone", "[cpu][vision]") {
    T::Generator gen(3);
    auto net = resnet18(HeadConfig::linear(1000), &gen);
    net->eval();
    const StateDict before = net->state_dict();
    const T::Tensor conv1_before = before.at("conv1.weight").clone();
    net->replace_head(HeadConfig::linear(14), &gen);
    const StateDict after = net->state_dict();
    CHECK(after.at("fc.weight").sizes() == Shape{14, 512});
    CHECK(after.at("fc.bias").sizes() == Shape{14});
    CXR_EXPECT_CLOSE(after.at("conv1.weight"), conv1_before, 0, 0);
    CHECK(after.size() == before.size());
    CHECK_FALSE(net->head().is_training());  // follows the model's eval mode

    net->replace_head(HeadConfig::mlp(2), &gen);
    CHECK(net->state_dict().at("fc.0.weight").sizes() == Shape{512, 512});
    CHECK(net->state_dict().at("fc.3.weight").sizes() == Shape{2, 512});
    T::NoGradGuard ng;
    const T::Tensor x = formula_input({1, 3, 32, 32});
    CHECK(net->forward(x).sizes() == Shape{1, 2});
    CHECK(net->forward_features(x).sizes() == Shape{1, 512});
    CHECK(net->num_features() == 512);

    // a BiT model keeps timm's 1×1-conv head for linear configs
    BitConfig small;
    small.layers = {1, 1, 1, 1};
    small.head = HeadConfig::linear(3);
    auto bit = std::make_shared<BitResNet>(small, &gen);
    CHECK(bit->state_dict().at("head.fc.weight").sizes() == Shape{3, 2048, 1, 1});
    bit->replace_head(HeadConfig::mlp(2), &gen);
    CHECK(bit->state_dict().at("head.3.weight").sizes() == Shape{2, 512});
    CHECK_THROWS_AS(resnet18(HeadConfig::linear(0)), cxr::Error);
}

TEST_CASE("a torchvision-named state dict round-trips strictly between models", "[cpu][vision]") {
    T::Generator g1(1), g2(2);
    auto a = densenet121(HeadConfig::linear(14), &g1);
    auto b = densenet121(HeadConfig::linear(14), &g2);
    const auto report = b->load_state_dict(a->state_dict());
    CHECK(report.ok());
    CXR_EXPECT_CLOSE(b->state_dict().at("features.denseblock1.denselayer1.conv1.weight"),
                     a->state_dict().at("features.denseblock1.denselayer1.conv1.weight"), 0, 0);
    // a head of another size is named in the error
    auto c = densenet121(HeadConfig::linear(2), &g2);
    try {
        c->load_state_dict(a->state_dict());
        FAIL("expected a shape mismatch");
    } catch (const cxr::Error& e) {
        CHECK(std::string(e.what()).find("classifier.weight") != std::string::npos);
    }
}
