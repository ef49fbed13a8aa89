// Checkpoints (nn/checkpoint.h): round trip of weights, optimizer state and meta; strict loading errors that name
// the key; refusal of incomplete or mixed saves; the PyTorch-readable weights file.
#include "tests/support/testing.h"

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tensor/generator.h"
#include "tensor/io/safetensors.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;

namespace {

std::shared_ptr<nn::Sequential> small_net(uint64_t seed, int64_t out = 3) {
    tensor::Generator gen(seed);
    auto net = std::make_shared<nn::Sequential>();
    net->push_back(std::make_shared<nn::Linear>(4, 5, true, &gen));
    net->push_back(std::make_shared<nn::ReLU>());
    net->push_back(std::make_shared<nn::Linear>(5, out, true, &gen));
    return net;
}

// One AdamW step on a fixed batch so that the optimizer has state.
void train_step(nn::Module& net, nn::Optimizer& opt) {
    tensor::Generator gen(7);
    const tensor::Tensor x = tensor::randn({6, 4}, tensor::DType::f32, &gen);
    opt.zero_grad();
    tensor::sum(tensor::mul(net.forward(x), net.forward(x))).backward();
    opt.step();
}

bool same(const tensor::Tensor& a, const tensor::Tensor& b) {
    return a.sizes() == b.sizes() && a.to_vector<float>() == b.to_vector<float>();
}

}  // namespace

TEST_CASE("checkpoint: weights, optimizer state and meta round-trip exactly", "[cpu][nn][checkpoint]") {
    TempDir dir;
    auto net = small_net(1);
    nn::Adam opt(net->parameters(), nn::adamw_defaults(), true);
    train_step(*net, opt);
    const nlohmann::json meta = {{"epoch", 3}, {"note", "hello"}};
    nn::save_checkpoint(dir / "ck", *net, &opt, meta);
    CHECK(nn::checkpoint_exists(dir / "ck"));
    for (const auto& e : fs::directory_iterator(dir.path()))  // nothing temporary left behind
        CHECK(e.path().filename().string().find(".tmp") == std::string::npos);

    auto other = small_net(2);
    nn::Adam opt2(other->parameters(), nn::adamw_defaults(), true);
    train_step(*other, opt2);  // state of the same structure, other values
    const nlohmann::json got = nn::load_checkpoint(dir / "ck", *other, &opt2);
    CHECK(got == meta);
    const auto a = net->state_dict(), b = other->state_dict();
    REQUIRE(a.size() == b.size());
    for (const auto& [k, v] : a) {
        INFO(k);
        CHECK(same(v, b.at(k)));
    }
    const auto sa = opt.state_dict(), sb = opt2.state_dict();
    REQUIRE(sa.size() == sb.size());
    for (const auto& [k, v] : sa) {
        INFO(k);
        CHECK(v.to(tensor::DType::f64).to_vector<double>() == sb.at(k).to(tensor::DType::f64).to_vector<double>());
    }
    // the next step from the restored state is the same step
    train_step(*net, opt);
    train_step(*other, opt2);
    for (const auto& [k, v] : net->state_dict()) CHECK(same(v, other->state_dict().at(k)));
}

TEST_CASE("checkpoint: the weights file is a plain safetensors file PyTorch can read", "[cpu][nn][checkpoint]") {
    TempDir dir;
    auto net = small_net(1);
    nn::save_checkpoint(dir / "w", *net, nullptr, nlohmann::json::object());
    const tensor::SafetensorsFile f = tensor::read_safetensors(dir / "w.safetensors");
    CHECK(f.metadata.at("format") == "pt");  // what safetensors.torch.save_file writes
    CHECK(f.tensors.count("0.weight") == 1);
    CHECK(f.tensors.count("2.bias") == 1);
    CHECK_FALSE(fs::exists(dir / "w.optim.safetensors"));  // no optimizer given
    nn::Adam opt(net->parameters(), nn::AdamOptions{}, false);
    CHECK_THROWS_WITH(nn::load_checkpoint(dir / "w", *net, &opt), Catch::Contains("holds no optimizer state"));
}

TEST_CASE("checkpoint: loading errors name the problem", "[cpu][nn][checkpoint]") {
    TempDir dir;
    auto net = small_net(1);
    nn::SGD sgd(net->parameters(), nn::SGDOptions{});
    nn::save_checkpoint(dir / "ck", *net, &sgd, {{"k", 1}});

    SECTION("a shape mismatch names the key") {
        auto wrong = small_net(1, 2);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir / "ck", *wrong), Catch::Contains("2.weight"));
    }
    SECTION("a missing key is named") {
        auto bigger = small_net(1);
        bigger->push_back(std::make_shared<nn::Linear>(3, 2));
        CHECK_THROWS_WITH(nn::load_checkpoint(dir / "ck", *bigger), Catch::Contains("3.weight"));
    }
    SECTION("another optimizer type") {
        nn::Adam adam(net->parameters(), nn::AdamOptions{}, false);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir / "ck", *net, &adam), Catch::Contains("SGD"));
    }
    SECTION("no sidecar: not a checkpoint, or an unfinished save") {
        CHECK_FALSE(nn::checkpoint_exists(dir / "nothing"));
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "nothing"), Catch::Contains("no sidecar"));
        fs::remove(dir / "ck.json");
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("no sidecar"));
    }
    SECTION("a weights file from another save (an overwrite interrupted between renames) is refused") {
        nn::save_checkpoint(dir / "other", *net, &sgd, {{"k", 2}});
        fs::copy_file(dir / "other.safetensors", dir / "ck.safetensors", fs::copy_options::overwrite_existing);
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("belongs to another save"));
    }
    SECTION("a missing weights file is named") {
        fs::remove(dir / "ck.safetensors");
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("ck.safetensors"));
    }
    SECTION("a corrupt sidecar") {
        std::ofstream(dir / "ck.json") << "{not json";
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("not valid JSON"));
        std::ofstream(dir / "ck.json", std::ios::trunc) << "{\"format\": \"something else\"}";
        CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("not a cxr checkpoint"));
    }
}

// The two-phase save (nn/checkpoint.h): the states a crash can leave during an overwrite of checkpoint A by B,
// rebuilt by hand from the files of two complete saves, each read back as one whole checkpoint.
TEST_CASE("checkpoint: an overwrite interrupted at any point leaves one whole checkpoint", "[cpu][nn][checkpoint]") {
    TempDir dir;
    auto net_a = small_net(1), net_b = small_net(2);
    nn::SGD sgd_a(net_a->parameters(), nn::SGDOptions{}), sgd_b(net_b->parameters(), nn::SGDOptions{});
    nn::save_checkpoint(dir / "b", *net_b, &sgd_b, {{"which", "B"}});
    auto sidecar_of = [&](const std::string& stem) {
        std::ifstream in(dir / (stem + ".json"));
        return nlohmann::json::parse(in);
    };
    auto reset_a = [&] {
        for (const char* f : {"ck.safetensors", "ck.optim.safetensors", "ck.new.safetensors", "ck.new.optim.safetensors",
                              "ck.json"})
            fs::remove(dir / f);
        nn::save_checkpoint(dir / "ck", *net_a, &sgd_a, {{"which", "A"}});
    };
    auto which = [&] { return nn::read_checkpoint(dir / "ck").meta.at("which").get<std::string>(); };
    // B's files under ck's names, and B's sidecar naming them as phase 1 or phase 2 writes it
    auto b_sidecar = [&](bool phase1) {
        nlohmann::json s = sidecar_of("b");
        s["files"]["model"] = phase1 ? "ck.new.safetensors" : "ck.safetensors";
        s["files"]["optimizer"] = phase1 ? "ck.new.optim.safetensors" : "ck.optim.safetensors";
        std::ofstream(dir / "ck.json", std::ios::trunc) << s.dump();
    };

    // a save that completed leaves no ".new" files and names the final ones
    reset_a();
    CHECK(which() == "A");
    CHECK_FALSE(fs::exists(dir / "ck.new.safetensors"));
    CHECK(sidecar_of("ck")["files"]["model"] == "ck.safetensors");

    // crash in phase 1, after B's new files were written but before the sidecar: A is intact
    reset_a();
    fs::copy_file(dir / "b.safetensors", dir / "ck.new.safetensors");
    fs::copy_file(dir / "b.optim.safetensors", dir / "ck.new.optim.safetensors");
    CHECK(which() == "A");

    // crash right after the commit (sidecar names the .new files): B
    b_sidecar(true);
    CHECK(which() == "B");

    // crash in phase 2 after the weights were renamed but not the optimizer state: B, from both names
    fs::rename(dir / "ck.new.safetensors", dir / "ck.safetensors");
    CHECK(which() == "B");
    // ... and after both renames, before the sidecar was rewritten: B
    fs::rename(dir / "ck.new.optim.safetensors", dir / "ck.optim.safetensors");
    CHECK(which() == "B");
    b_sidecar(false);
    CHECK(which() == "B");

    // the fallback never accepts A's leftover file for B's sidecar: the token decides
    reset_a();
    b_sidecar(true);  // names ck.new.* which do not exist; ck.safetensors is A's
    CHECK_THROWS_WITH(nn::read_checkpoint(dir / "ck"), Catch::Contains("belongs to another save"));

    // loading from a checkpoint already read gives the same state as loading by stem
    auto c1 = small_net(9), c2 = small_net(9);
    nn::save_checkpoint(dir / "ck", *net_a, &sgd_a, {{"which", "A"}});
    const nn::LoadedCheckpoint ck = nn::read_checkpoint(dir / "ck");
    nn::load_checkpoint(ck, dir / "ck", *c1);
    nn::load_checkpoint(dir / "ck", *c2);
    for (const auto& [k, v] : c1->state_dict()) CHECK(same(v, c2->state_dict().at(k)));
}
