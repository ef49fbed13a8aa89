// Tests of the Module tree (nn/module.h):
//   - dotted keys equal torch's: the state_dict keys of the cnn model equal the keys of the PyTorch fixture's
//     state dict (tests/fixtures/nn.*, written by torch's state_dict()), and named_parameters() follows
//     registration order as torch's named_parameters();
//   - strict load_state_dict: missing keys, unexpected keys, shape mismatches and forbidden dtype conversions
//     are listed by name in the thrown message, and a failed load leaves the module untouched; known harmless
//     extras (position_ids) are ignored by name and optional keys (num_batches_tracked) may be absent;
//     non-strict loading loads what matches and reports the rest;
//   - state_dict round trip through a safetensors file (own writer and reader) reproduces every tensor exactly;
//   - train()/eval() recursion, freezing a subtree (no gradient reaches it), to(dtype), apply/visit,
//     named_modules/submodule, registration errors, replace_module.
#include "tests/support/testing.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <unistd.h>

#include "nn/layers.h"
#include "tensor/generator.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tests/nn/nn_test_models.h"

using namespace cxr::nn;
using cxr::tensor::DType;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;

using cxr::testing::error_of;

namespace {

std::set<std::string> keys_of(const StateDict& sd) {
    std::set<std::string> k;
    for (const auto& kv : sd) k.insert(kv.first);
    return k;
}

}  // namespace

TEST_CASE("module: state_dict keys equal PyTorch's state_dict keys", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    CHECK(keys_of(cnn->state_dict()) == keys_of(testmodels::fixture_state(fx, "cnn")));
    testmodels::Misc misc;
    CHECK(keys_of(misc.state_dict()) == keys_of(testmodels::fixture_state(fx, "misc")));

    // named_parameters: registration order, depth first (torch's order, which optimizers rely on).
    std::vector<std::string> names;
    for (const auto& kv : cnn->named_parameters()) names.push_back(kv.first);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.conv.weight",
                                            "4.norm.weight", "4.norm.bias", "8.weight", "8.bias"});
    std::vector<std::string> bufs;
    for (const auto& kv : cnn->named_buffers()) bufs.push_back(kv.first);
    CHECK(bufs == std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked",
                                           "4.norm.running_mean", "4.norm.running_var",
                                           "4.norm.num_batches_tracked"});
    CHECK(cnn->num_parameters() == 4 * 27 + 4 + 4 + 4 + 6 * 36 + 6 + 6 + 30 + 5);
    CHECK(cnn->named_parameters(false).empty());  // Sequential holds no parameters of its own
}

TEST_CASE("module: strict load lists missing keys by name and leaves the module untouched", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    const Tensor before = cnn->state_dict().at("0.weight").clone();
    StateDict sd = testmodels::fixture_state(fx, "cnn");
    sd.erase("8.bias");
    sd.erase("4.norm.running_var");
    const std::string msg = error_of([&] { cnn->load_state_dict(sd); });
    INFO(msg);
    CHECK(msg.find("missing keys (2)") != std::string::npos);
    CHECK(msg.find("8.bias") != std::string::npos);
    CHECK(msg.find("4.norm.running_var") != std::string::npos);
    CXR_EXPECT_CLOSE(cnn->state_dict().at("0.weight"), before, 0.0, 0.0);  // nothing was written
}

TEST_CASE("module: strict load lists unexpected keys and shape mismatches by name", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    StateDict sd = testmodels::fixture_state(fx, "cnn");
    sd["8.extra"] = T::zeros({2});
    sd["9.weight"] = T::zeros({2});
    sd["8.weight"] = T::zeros({5, 7}, DType::f64);
    const std::string msg = error_of([&] { cnn->load_state_dict(sd); });
    INFO(msg);
    CHECK(msg.find("unexpected keys (2)") != std::string::npos);
    CHECK(msg.find("8.extra") != std::string::npos);
    CHECK(msg.find("9.weight") != std::string::npos);
    CHECK(msg.find("8.weight: module has [5, 6], state dict has [5, 7]") != std::string::npos);
    CHECK(msg.find("Sequential") != std::string::npos);
}

TEST_CASE("module: known extras are ignored by name, optional keys may be absent", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    StateDict sd = testmodels::fixture_state(fx, "cnn");
    sd["text_model.embeddings.position_ids"] = T::arange(4);
    sd.erase("1.num_batches_tracked");  // pre-0.4 torchvision checkpoints have no counter
    LoadReport r = cnn->load_state_dict(sd);
    CHECK(r.ok());
    CHECK(r.ignored == std::vector<std::string>{"text_model.embeddings.position_ids"});
    CHECK(r.absent_optional == std::vector<std::string>{"1.num_batches_tracked"});
    CHECK(r.loaded.size() == sd.size() - 1);
    // The same key is unexpected when the caller empties the list: ignoring is by name, never by accident.
    LoadOptions opt;
    opt.ignored_extras.clear();
    CHECK_THROWS_WITH(cnn->load_state_dict(sd, opt), Catch::Contains("text_model.embeddings.position_ids"));
    CHECK(key_matches("a.b.position_ids", "position_ids"));
    CHECK_FALSE(key_matches("a.b.my_position_ids", "position_ids"));
}

TEST_CASE("module: dtype conversion on load is reported, and refused when disallowed", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();  // f32 module, f64 fixture
    StateDict sd = testmodels::fixture_state(fx, "cnn");
    LoadReport r = cnn->load_state_dict(sd);
    CHECK(r.converted.size() == sd.size() - 2);
    CHECK(std::find(r.converted.begin(), r.converted.end(), "8.weight (f64 -> f32)") != r.converted.end());
    CHECK(cnn->state_dict().at("8.weight").dtype() == DType::f32);
    CXR_EXPECT_CLOSE(cnn->state_dict().at("8.weight"), sd.at("8.weight"), 1e-7, 1e-6);

    LoadOptions no_conv;
    no_conv.allow_dtype_conversion = false;
    CHECK_THROWS_WITH(cnn->load_state_dict(sd, no_conv), Catch::Contains("0.weight (f64 -> f32)"));
    // A floating value for an integer buffer is never converted silently.
    sd["1.num_batches_tracked"] = T::scalar_tensor(3.0);
    CHECK_THROWS_WITH(cnn->load_state_dict(sd), Catch::Contains("1.num_batches_tracked (f32 -> i64)"));
}

TEST_CASE("module: non-strict load loads what matches and reports the rest", "[cpu][nn]") {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    StateDict sd = testmodels::fixture_state(fx, "cnn");
    sd.erase("0.bias");
    sd["8.weight"] = T::zeros({3, 6}, DType::f64);  // a head of another size
    LoadOptions opt;
    opt.strict = false;
    LoadReport r = cnn->load_state_dict(sd, opt);
    CHECK_FALSE(r.ok());
    CHECK(r.missing == std::vector<std::string>{"0.bias"});
    REQUIRE(r.mismatched.size() == 1);
    CHECK(r.mismatched[0].key == "8.weight");
    CHECK(r.loaded.size() == sd.size() - 1);
    CXR_EXPECT_CLOSE(cnn->state_dict().at("0.weight"), sd.at("0.weight"), 1e-7, 1e-6);
    CHECK(cnn->state_dict().at("8.weight").sizes() == Shape{5, 6});
}

TEST_CASE("module: state_dict round trip through a safetensors file", "[cpu][nn]") {
    T::manual_seed(1);
    auto a = testmodels::make_cnn();
    T::manual_seed(2);
    auto b = testmodels::make_cnn();
    // Make the buffers non-trivial: one training step of each BatchNorm.
    Tensor x = cxr::testing::random_input({2, 3, 8, 8}, 3, -1.0, 1.0, DType::f32);
    a->forward(x);
    CHECK_FALSE(cxr::testing::check_close(a->state_dict().at("0.weight"), b->state_dict().at("0.weight"), 0, 0).ok);

    char tmpl[] = "/tmp/cxr_nn_module_test_XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    const std::string path = tmpl;
    T::save_tensor_file(path, a->state_dict());
    T::TensorFile file = T::load_tensor_file(path);
    std::remove(path.c_str());

    LoadReport r = b->load_state_dict(file.tensors);
    CHECK(r.converted.empty());
    const StateDict sa = a->state_dict(), sb = b->state_dict();
    REQUIRE(keys_of(sa) == keys_of(sb));
    for (const auto& [k, t] : sa) {
        INFO(k);
        CHECK(sb.at(k).dtype() == t.dtype());
        CXR_EXPECT_CLOSE(sb.at(k), t, 0.0, 0.0);
    }
    a->eval();
    b->eval();
    CXR_EXPECT_CLOSE(b->forward(x), a->forward(x), 0.0, 0.0);
}

TEST_CASE("module: train()/eval() reach every descendant and switch BatchNorm and Dropout", "[cpu][nn]") {
    auto cnn = testmodels::make_cnn();
    cnn->eval();
    for (auto& [path, m] : cnn->named_modules()) {
        INFO(path);
        CHECK_FALSE(m->is_training());
    }
    Tensor x = cxr::testing::random_input({2, 3, 8, 8}, 5, -1.0, 1.0, DType::f32);
    const Tensor rm = cnn->state_dict().at("1.running_mean").clone();
    Tensor y1 = cnn->forward(x), y2 = cnn->forward(x);
    CXR_EXPECT_CLOSE(y1, y2, 0.0, 0.0);  // eval: deterministic, dropout off
    CXR_EXPECT_CLOSE(cnn->state_dict().at("1.running_mean"), rm, 0.0, 0.0);
    cnn->train();
    for (auto& [path, m] : cnn->named_modules()) CHECK(m->is_training());
    cnn->forward(x);
    CHECK(cnn->state_dict().at("1.num_batches_tracked").item() == 1.0);
    CHECK_FALSE(cxr::testing::check_close(cnn->state_dict().at("1.running_mean"), rm, 0.0, 0.0).ok);
    cnn->submodule("4").eval();  // a subtree only
    CHECK(cnn->is_training());
    CHECK_FALSE(cnn->submodule("4.norm").is_training());
    CHECK(cnn->submodule("1").is_training());
}

TEST_CASE("module: a frozen subtree gets no gradient; unfreeze restores it", "[cpu][nn]") {
    auto cnn = testmodels::make_cnn();
    cnn->submodule("4").freeze();
    cnn->submodule("0").freeze();
    for (const auto& [k, p] : cnn->named_parameters()) {
        INFO(k);
        const bool frozen = k.rfind("4.", 0) == 0 || k.rfind("0.", 0) == 0;
        CHECK(p.requires_grad() == !frozen);
    }
    Tensor x = cxr::testing::random_input({2, 3, 8, 8}, 6, -1.0, 1.0, DType::f32);
    T::sum(cnn->forward(x)).backward();
    for (const auto& [k, p] : cnn->named_parameters()) {
        INFO(k);
        const bool frozen = k.rfind("4.", 0) == 0 || k.rfind("0.", 0) == 0;
        CHECK(p.grad().defined() == !frozen);
    }
    cnn->zero_grad();
    cnn->unfreeze();
    T::sum(cnn->forward(x)).backward();
    for (const auto& [k, p] : cnn->named_parameters()) {
        INFO(k);
        CHECK(p.grad().defined());
    }
}

TEST_CASE("module: to(dtype) converts floating tensors and keeps members, leaves and counters", "[cpu][nn]") {
    auto lin = std::make_shared<Linear>(3, 2);
    auto bn = std::make_shared<BatchNorm2d>(2);
    Sequential seq;
    seq.push_back(lin);
    seq.push_back(bn);
    const Tensor w32 = lin->weight;
    seq.to(DType::f64);
    CHECK(lin->weight.dtype() == DType::f64);  // the member itself was replaced
    CHECK(lin->weight.is_leaf());
    CHECK(lin->weight.requires_grad());
    CHECK(seq.named_parameters()[0].second.same(lin->weight));
    CXR_EXPECT_CLOSE(lin->weight, w32, 0.0, 0.0);
    CHECK(bn->running_var.dtype() == DType::f64);
    CHECK(bn->num_batches_tracked.dtype() == DType::i64);
    CHECK_THROWS_AS(seq.to(DType::i32), cxr::Error);
    seq.to(T::Device::cpu());  // same device: a no-op
    CHECK(lin->weight.dtype() == DType::f64);
}

TEST_CASE("module: tree traversal, apply/visit, registration errors, replace_module", "[cpu][nn]") {
    auto cnn = testmodels::make_cnn();
    std::vector<std::string> paths;
    cnn->visit([&](const std::string& path, Module&) { paths.push_back(path); });
    CHECK(paths == std::vector<std::string>{"", "0", "1", "2", "3", "4", "4.conv", "4.norm", "4.act", "5", "6", "7",
                                            "8"});
    std::vector<std::string> order;
    cnn->apply([&](Module& m) { order.push_back(m.type_name()); });
    CHECK(order.size() == 13);
    CHECK(order.back() == "Sequential");  // children before the parent, as torch's apply
    CHECK(order[4] == "Conv2d");
    CHECK(cnn->submodule("4.conv").type_name() == "Conv2d");
    CHECK(dynamic_cast<Conv2d&>(cnn->submodule("4.conv")).stride == T::Size2{2, 2});
    CHECK_THROWS_WITH(cnn->submodule("4.nope"), Catch::Contains("4.nope"));
    CHECK(cnn->child("9") == nullptr);

    Linear lin(2, 2);
    CHECK_THROWS_WITH(lin.register_module("weight", std::make_shared<ReLU>()), Catch::Contains("already registered"));
    CHECK_THROWS_WITH(lin.register_module("a.b", std::make_shared<ReLU>()), Catch::Contains("invalid name"));
    CHECK_THROWS_WITH(lin.forward(T::zeros({1, 3})), Catch::Contains("Linear"));
    CHECK_THROWS_WITH(Module("Custom").forward(T::zeros({1})), Catch::Contains("Custom"));

    // A new 3-way head: the state dict follows the replacement.
    cnn->replace_module("8", std::make_shared<Linear>(6, 3));
    CHECK(cnn->state_dict().at("8.weight").sizes() == Shape{3, 6});
    Tensor x = cxr::testing::random_input({2, 3, 8, 8}, 7, -1.0, 1.0, DType::f32);
    CHECK(cnn->forward(x).sizes() == Shape{2, 3});
    CHECK_THROWS_WITH(cnn->replace_module("10", std::make_shared<ReLU>()), Catch::Contains("no child '10'"));

    // Shared parameters are listed once (as torch's named_parameters).
    auto shared = std::make_shared<Linear>(2, 2);
    Sequential tied;
    tied.push_back(shared);
    tied.push_back(shared);
    CHECK(tied.named_parameters().size() == 2);
    CHECK(tied.state_dict().size() == 4);  // but both paths are in the state dict, as torch
}

TEST_CASE("module: ModuleList indexing and typed access", "[cpu][nn]") {
    ModuleList list({std::make_shared<Linear>(2, 3), std::make_shared<ReLU>()});
    CHECK(list.size() == 2);
    CHECK(list.at<Linear>(0)->out_features == 3);
    CHECK_THROWS_WITH(list.at<Linear>(1), Catch::Contains("ReLU"));
    CHECK_THROWS_WITH(list[2], Catch::Contains("out of range"));
    CHECK(keys_of(list.state_dict()) == std::set<std::string>{"0.weight", "0.bias"});
    CHECK_THROWS_WITH(list.forward(T::zeros({1, 2})), Catch::Contains("ModuleList"));
}

TEST_CASE("module: to(cuda) moves every tensor; a CPU state dict loads into a CUDA module", "[gpu][nn]") {
    CXR_SKIP_WITHOUT_GPU();
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    const T::Device cuda = T::Device::cuda(0);
    cnn->to(cuda);
    for (const auto& [k, t] : cnn->state_dict()) {
        INFO(k);
        CHECK(t.device() == cuda);
    }
    for (const auto& [k, p] : cnn->named_parameters()) CHECK((p.is_leaf() && p.requires_grad()));
    const StateDict sd = testmodels::fixture_state(fx, "cnn");  // CPU, f64
    cnn->load_state_dict(sd);
    cnn->to(T::Device::cpu());
    for (const auto& [k, t] : cnn->state_dict()) {
        INFO(k);
        CHECK(t.device() == T::Device::cpu());
        CXR_EXPECT_CLOSE(t, sd.at(k), 1e-7, 1e-6);
    }
}
