// diffusion/pretrained.h against a pipeline folder written by diffusers itself (tests/fixtures/sd_tiny/, made by
// tests/fixtures/tools/make_sd_tiny_fixtures.py): model_index.json, component configs, one-file weights, the
// UNet's fp16 variant in three shards, and the tokenizer files — plus saving, and the errors for broken folders.
#include "tests/support/testing.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "diffusion/blocks.h"
#include "diffusion/clip_tokenizer.h"
#include "diffusion/pretrained.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

using namespace cxr::diffusion;
using cxr::testing::Fixtures;
using cxr::testing::TempDir;
using cxr::tensor::DType;
namespace T = cxr::tensor;
namespace fs = std::filesystem;

namespace {

const std::string kPipe = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny";

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
}

}  // namespace

TEST_CASE("A diffusers pipeline folder: model_index.json and component configs", "[cpu][diffusion][pretrained]") {
    const PipelineIndex index = read_pipeline_index(kPipe);
    CHECK(index.class_name == "StableDiffusionPipeline");
    CHECK(!index.diffusers_version.empty());
    REQUIRE(index.components.count("unet") == 1);
    CHECK(index.components.at("unet").library == "diffusers");
    CHECK(index.components.at("unet").class_name == "UNet2DConditionModel");
    CHECK(index.components.at("text_encoder").library == "transformers");
    CHECK(index.components.at("text_encoder").class_name == "CLIPTextModel");
    CHECK(index.components.at("scheduler").class_name == "PNDMScheduler");
    REQUIRE(index.components.count("safety_checker") == 1);
    CHECK_FALSE(index.components.at("safety_checker").present());
    CHECK(index.components.count("requires_safety_checker") == 0);  // a pipeline argument, not a component

    CHECK(read_component_config(kPipe + "/unet")["block_out_channels"] == nlohmann::json::array({8, 16}));
    CHECK(read_component_config(kPipe + "/scheduler")["_class_name"] == "PNDMScheduler");  // scheduler_config.json
    CHECK_THROWS_WITH(read_component_config(kPipe + "/tokenizer"), Catch::Contains("neither config.json"));
    CHECK_THROWS_WITH(read_pipeline_index(kPipe + "/unet"), Catch::Contains("no model_index.json"));
}

TEST_CASE("Component weights: one file, and diffusers' sharded fp16 variant", "[cpu][diffusion][pretrained]") {
    const ComponentWeights single = read_component_weights(kPipe + "/unet");
    CHECK_FALSE(single.sharded);
    CHECK(single.base == "diffusion_pytorch_model");
    CHECK(single.files.size() == 1);
    REQUIRE(single.tensors.count("conv_in.weight") == 1);
    CHECK(single.tensors.at("conv_in.weight").dtype() == DType::f32);

    const ComponentWeights fp16 = read_component_weights(kPipe + "/unet", "fp16");
    CHECK(fp16.sharded);
    CHECK(fp16.files.size() == 3);
    REQUIRE(fp16.tensors.size() == single.tensors.size());
    for (const auto& [key, t32] : single.tensors) {
        INFO(key);
        REQUIRE(fp16.tensors.count(key) == 1);
        const T::Tensor t16 = fp16.tensors.at(key);
        CHECK(t16.dtype() == DType::f16);
        // diffusers' .half() is round-to-nearest-even, as our cast: the values agree exactly
        CXR_EXPECT_CLOSE(t16, T::cast(t32, DType::f16), 0, 0);
    }

    const ComponentWeights text = read_component_weights(kPipe + "/text_encoder");
    CHECK(text.base == "model");  // transformers' name
    // transformers 5 saves CLIPTextModel without the "text_model." prefix that older files (and the hub's) have
    CHECK(text.tensors.count("text_model.final_layer_norm.weight") + text.tensors.count("final_layer_norm.weight") == 1);

    CHECK_THROWS_WITH(read_component_weights(kPipe + "/vae", "bf16"),
                      Catch::Contains("diffusion_pytorch_model.bf16.safetensors"));
    CHECK_THROWS_WITH(read_component_weights(kPipe + "/no_such"), Catch::Contains("is not a folder"));
}

TEST_CASE("Broken folders fail naming the file and the key", "[cpu][diffusion][pretrained]") {
    TempDir dir("pretrained");
    // a folder with only a PyTorch pickle
    fs::create_directories(dir / "pickle");
    write_text(dir / "pickle/diffusion_pytorch_model.bin", "not read");
    CHECK_THROWS_WITH(read_component_weights(dir / "pickle"), Catch::Contains("pickle") && Catch::Contains("save_pretrained"));
    // a folder with only the variant: the plain read says a variant may be meant
    fs::create_directories(dir / "variant_only");
    fs::copy_file(kPipe + "/vae/diffusion_pytorch_model.safetensors", dir / "variant_only/diffusion_pytorch_model.fp16.safetensors");
    CHECK_THROWS_WITH(read_component_weights(dir / "variant_only"), Catch::Contains("a variant such as fp16"));
    CHECK(read_component_weights(dir / "variant_only", "fp16").tensors.size() > 0);

    // a sharded set whose index puts a key in the wrong shard, or misses a shard
    const std::string index_name = "diffusion_pytorch_model.safetensors.index.fp16.json";
    auto make_shards = [&](const std::string& name) {
        fs::create_directories(dir / name);
        for (const auto& e : fs::directory_iterator(kPipe + "/unet"))
            if (e.path().filename().string().find("fp16") != std::string::npos)
                fs::copy_file(e.path(), fs::path(dir / name) / e.path().filename());
        std::ifstream in(dir / (name + "/" + index_name));
        return nlohmann::json::parse(in);
    };
    nlohmann::json idx = make_shards("wrong_shard");
    const std::string shard1 = "diffusion_pytorch_model.fp16-00001-of-00003.safetensors";
    const std::string shard2 = "diffusion_pytorch_model.fp16-00002-of-00003.safetensors";
    std::string moved;
    for (auto& [key, file] : idx["weight_map"].items())
        if (file == shard1 && moved.empty()) {
            moved = key;
            file = shard2;
        }
    write_text(dir / ("wrong_shard/" + index_name), idx.dump());
    CHECK_THROWS_WITH(read_component_weights(dir / "wrong_shard", "fp16"),
                      Catch::Contains(moved));  // whichever of the two shards is read first names it

    make_shards("missing_shard");
    fs::remove(dir / ("missing_shard/" + shard2));
    CHECK_THROWS_WITH(read_component_weights(dir / "missing_shard", "fp16"),
                      Catch::Contains(shard2) && Catch::Contains("is missing"));

    fs::create_directories(dir / "bad_index");
    write_text(dir / "bad_index/diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\": 3}");
    CHECK_THROWS_WITH(read_component_weights(dir / "bad_index"), Catch::Contains("no \"weight_map\" object"));

    fs::create_directories(dir / "bad_model_index");
    write_text(dir / "bad_model_index/model_index.json", "{\"_class_name\": \"X\", \"unet\": [\"diffusers\", 3]}");
    CHECK_THROWS_WITH(read_pipeline_index(dir / "bad_model_index"), Catch::Contains("\"unet\""));
}

TEST_CASE("save_component writes a folder that reads back, in diffusers' layout", "[cpu][diffusion][pretrained]") {
    TempDir dir("pretrained_save");
    ResnetBlock2D::Options o;
    o.temb_channels = 6;
    o.groups = 2;
    ResnetBlock2D block(4, 6, o);
    const nlohmann::json config = {{"in_channels", 4}, {"out_channels", 6}};
    save_component(dir / "block", config, block);
    CHECK(fs::exists(dir / "block/config.json"));
    CHECK(fs::exists(dir / "block/diffusion_pytorch_model.safetensors"));
    CHECK(read_component_config(dir / "block") == config);
    const ComponentWeights back = read_component_weights(dir / "block");
    const auto sd = block.state_dict();
    REQUIRE(back.tensors.size() == sd.size());
    for (const auto& [key, t] : sd) CXR_EXPECT_CLOSE(back.tensors.at(key), t, 0, 0);
    // no temporary files left behind
    for (const auto& e : fs::directory_iterator(dir / "block"))
        CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);

    ResnetBlock2D copy(4, 6, o);
    CHECK(load_component(copy, dir / "block").ok());
    ResnetBlock2D other(4, 8, o);
    CHECK_THROWS_WITH(load_component(other, dir / "block"), Catch::Contains(dir / "block") && Catch::Contains("conv2.weight"));

    save_component(dir / "block", config, block, "diffusion_pytorch_model", "fp16");
    CHECK(fs::exists(dir / "block/diffusion_pytorch_model.fp16.safetensors"));
}

TEST_CASE("The pipeline's tokenizer folder gives transformers' ids", "[cpu][diffusion][pretrained][tokenizer]") {
    Fixtures fx("sd_tiny");
    const ClipTokenizer tok = ClipTokenizer::from_hf_folder(kPipe + "/tokenizer");
    const std::string prompt = "66 year old white female. no acute cardiopulmonary process";
    const std::vector<int> ids = tok.encode_for_model(prompt);
    const std::vector<int> uncond = tok.encode_for_model("");
    auto as_tensor = [](const std::vector<int>& v) {
        return T::reshape(T::from_vector(std::vector<int64_t>(v.begin(), v.end()), {(int64_t)v.size()}), {1, -1});
    };
    CXR_EXPECT_CLOSE(as_tensor(ids), fx.get("ids"), 0, 0);
    CXR_EXPECT_CLOSE(as_tensor(uncond), fx.get("uncond_ids"), 0, 0);
}

TEST_CASE("A tokenizer folder with only tokenizer.json (as transformers 5 saves it) gives the same ids",
          "[cpu][diffusion][pretrained][tokenizer]") {
    Fixtures fx("sd_tiny");
    TempDir dir("tokenizer_json");
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(kPipe + "/tokenizer/" + name, dir / name);
    const ClipTokenizer tok = ClipTokenizer::from_hf_folder(dir.path());
    const std::vector<int> ids = tok.encode_for_model("66 year old white female. no acute cardiopulmonary process");
    CXR_EXPECT_CLOSE(T::reshape(T::from_vector(std::vector<int64_t>(ids.begin(), ids.end()), {77}), {1, -1}),
                     fx.get("ids"), 0, 0);
    write_text(dir / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir.path()), Catch::Contains("must be \"BPE\""));
}
