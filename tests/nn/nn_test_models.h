// The two small models of the PyTorch fixture tests/fixtures/nn.* (tests/fixtures/tools/make_nn_fixtures.py),
// rebuilt as cxr module trees with the same child names, so that the fixture's state dict loads strictly.
#pragma once

#include <memory>
#include <string>

#include "nn/layers.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tests/support/testing.h"

namespace cxr::nn::testmodels {

using tensor::Tensor;

// torch: Sequential(Conv2d(3,4,3,padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
//                   Sequential(OrderedDict(conv=Conv2d(4,6,3,stride=2,padding=1,bias=False),
//                                          norm=BatchNorm2d(6, momentum=None), act=LeakyReLU(0.1))),
//                   AdaptiveAvgPool2d(1), Flatten(), Dropout(0.5), Linear(6, 5))
inline std::shared_ptr<Sequential> make_cnn() {
    using M = std::shared_ptr<Module>;
    auto inner = std::make_shared<Sequential>(std::vector<std::pair<std::string, M>>{
        {"conv", std::make_shared<Conv2d>(4, 6, 3, 2, 1, 1, 1, false)},
        {"norm", std::make_shared<BatchNorm2d>(6, 1e-5, std::nullopt)},
        {"act", std::make_shared<LeakyReLU>(0.1)}});
    return std::make_shared<Sequential>(std::vector<M>{
        std::make_shared<Conv2d>(3, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
        std::make_shared<MaxPool2d>(2), inner, std::make_shared<AdaptiveAvgPool2d>(1), std::make_shared<Flatten>(),
        std::make_shared<Dropout>(0.5), std::make_shared<Linear>(6, 5)});
}

// torch: class Misc in make_nn_fixtures.py.
class Misc : public Module {
public:
    Misc() : Module("Misc") {
        embed = register_module("embed", std::make_shared<Embedding>(10, 4, 0));
        up = register_module("up", std::make_shared<ConvTranspose2d>(4, 6, 3, 2, 1, 1));
        gn = register_module("gn", std::make_shared<GroupNorm>(3, 6));
        act = register_module("act", std::make_shared<SiLU>());
        pool = register_module("pool", std::make_shared<AvgPool2d>(2));
        ln = register_module("ln", std::make_shared<LayerNorm>(Shape{6}));
        gelu = register_module("gelu", std::make_shared<GELU>(tensor::GeluApprox::tanh));
        head = register_module("head", std::make_shared<ModuleList>());
        head->push_back(std::make_shared<Linear>(6, 3));
        head->push_back(std::make_shared<Linear>(3, 2));
    }
    // x [N, 4, 3, 3], index [N, L] -> [N, 2]
    Tensor forward2(const Tensor& x, const Tensor& index) {
        Tensor e = embed->forward(index);                                         // [N, L, 4]
        Tensor h = tensor::add(x, tensor::mean(e, {1}).reshape({x.size(0), 4, 1, 1}));  // [N, 4, 3, 3]
        h = act->forward(gn->forward(up->forward(h)));                            // [N, 6, 6, 6]
        h = tensor::mean(pool->forward(h), {2, 3});                               // [N, 6]
        h = gelu->forward(ln->forward(h));
        h = tensor::sigmoid((*head)[0]->forward(h));                              // [N, 3]
        return tensor::tanh((*head)[1]->forward(h));                              // [N, 2]
    }

    std::shared_ptr<Embedding> embed;
    std::shared_ptr<ConvTranspose2d> up;
    std::shared_ptr<GroupNorm> gn;
    std::shared_ptr<SiLU> act;
    std::shared_ptr<AvgPool2d> pool;
    std::shared_ptr<LayerNorm> ln;
    std::shared_ptr<GELU> gelu;
    std::shared_ptr<ModuleList> head;
};

// The state dict "<model>.state.*" of the fixture, keyed as torch's state_dict().
inline StateDict fixture_state(const testing::Fixtures& fx, const std::string& model) {
    StateDict sd;
    const std::string prefix = model + ".state.";
    for (const auto& name : fx.names_with_prefix(prefix)) sd[name.substr(prefix.size())] = fx.get(name);
    return sd;
}

}  // namespace cxr::nn::testmodels
