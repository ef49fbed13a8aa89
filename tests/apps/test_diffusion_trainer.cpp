// The diffusion trainer (apps/train/diffusion_trainer.h) on the tiny diffusers pipeline tests/fixtures/sd_tiny (16 px
// images, 8×8 latents) and a dozen phantom images: a killed run resumes with bit-identical losses and weights on
// the CPU, a changed config refuses to resume, the saved pipeline folder loads back and generates, the EMA weights
// are the ones exported, samples are written, RoentGen prompts, the command, and config/data errors.
#include "tests/support/testing.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/commands.h"
#include "apps/train/diffusion_trainer.h"
#include "data/adapters/adapters.h"
#include "data/phantom.h"
#include "diffusion/pipeline.h"
#include "nn/checkpoint.h"
#include "tensor/io/tensor_file.h"


using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using nlohmann::json;

namespace {

const std::string kPipe = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny";

// 12 phantom images at 32 px (written once per test binary run, removed at exit), read back through the manifest.
struct PhantomData {
    fs::path dir;
    PhantomData() : dir(fs::temp_directory_path() / ("cxr_test_difftrain_data_" + std::to_string(::getpid()))) {
        data::PhantomOptions o;
        o.n = 12;
        o.size = 32;
        o.seed = 5;
        data::write_phantom_dataset(dir.string(), o);
    }
    ~PhantomData() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

const fs::path& phantom_dir() {
    static const PhantomData data;
    return data.dir;
}

const std::vector<data::Record>& phantom_records() {
    static const std::vector<data::Record> r = data::load_manifest((phantom_dir() / "manifest.csv").string());
    return r;
}

apps::DiffusionTrainConfig tiny_config() {
    apps::DiffusionTrainConfig c;
    c.model = kPipe;
    c.batch_size = 4;
    c.accumulation = 1;
    c.lr = 1e-3;
    c.warmup_steps = 2;
    c.max_steps = 6;
    c.checkpoint_every = 2;
    c.ema = true;
    c.ema_decay = 0.9;
    c.p_uncond = 0.25;
    c.min_snr_gamma = 5.0;
    c.noise_offset = 0.05;
    c.sample_every = 0;
    c.sample_steps = 2;
    c.sample_prompts = {"60 year old White female. No acute findings."};
    c.workers = 0;
    c.seed = 3;
    return c;
}

std::map<std::string, std::vector<float>> tensors_of(const std::string& path) {
    std::map<std::string, std::vector<float>> out;
    const auto file = tensor::load_tensor_file(path);
    for (const auto& [k, v] : file.tensors)
        if (v.dtype() == tensor::DType::f32) out[k] = v.to_vector<float>();
    return out;
}

std::vector<double> logged_losses(const fs::path& log) {
    std::vector<double> out;
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(json::parse(line).at("loss").get<double>());
    return out;
}

apps::DiffusionTrainHooks quiet() {
    apps::DiffusionTrainHooks h;
    h.quiet = true;
    return h;
}

}  // namespace

TEST_CASE("diffusion trainer: a killed run resumes bit-identically on the CPU", "[cpu][apps][diffusion-trainer]") {
    const auto& records = phantom_records();
    const apps::DiffusionTrainConfig c = tiny_config();
    TempDir full("difftrain_full"), killed("difftrain_killed");

    const apps::DiffusionTrainResult a = apps::train_diffusion(c, records, full.path(), quiet());
    REQUIRE(a.steps_run == 6);
    REQUIRE(a.step_losses.size() == 6);
    for (double l : a.step_losses) CHECK(std::isfinite(l));

    // Kill after step index 4 (5 steps done); the last checkpoint is after 4 steps.
    apps::DiffusionTrainHooks kill = quiet();
    kill.after_step = [](int64_t k) { return k < 4; };
    const apps::DiffusionTrainResult b1 = apps::train_diffusion(c, records, killed.path(), kill);
    REQUIRE(b1.step_losses.size() == 5);
    CHECK(b1.pipeline_dir.empty());
    CHECK_FALSE(fs::exists(killed / "pipeline"));
    const apps::DiffusionTrainResult b2 = apps::train_diffusion(c, records, killed.path(), quiet());
    CHECK(b2.resumed);
    REQUIRE(b2.step_losses.size() == 2);  // steps 4 and 5 again from the checkpoint after 4 steps
    for (size_t i = 0; i < 5; ++i) CHECK(b1.step_losses[i] == a.step_losses[i]);
    CHECK(b2.step_losses[0] == a.step_losses[4]);
    CHECK(b2.step_losses[1] == a.step_losses[5]);
    // log.jsonl was cut back to the checkpoint and continued: the same six losses.
    CHECK(logged_losses(killed / "log.jsonl") == logged_losses(full / "log.jsonl"));
    CHECK(logged_losses(full / "log.jsonl") == a.step_losses);
    // The checkpoints and the exported pipelines agree bit for bit.
    CHECK(tensors_of(full / "last.safetensors") == tensors_of(killed / "last.safetensors"));
    CHECK(tensors_of(full / "pipeline/unet/diffusion_pytorch_model.safetensors") ==
          tensors_of(killed / "pipeline/unet/diffusion_pytorch_model.safetensors"));

    // A changed config refuses to resume, naming the key.
    apps::DiffusionTrainConfig other = c;
    other.lr = 2e-3;
    CHECK_THROWS_WITH(apps::train_diffusion(other, records, full.path(), quiet()),
                      Catch::Contains("cannot resume") && Catch::Contains("lr"));
    // Other images (one record fewer, or one report changed) refuse to resume too; loader settings do not matter.
    std::vector<data::Record> fewer(records.begin(), records.end() - 1);
    CHECK_THROWS_WITH(apps::train_diffusion(c, fewer, full.path(), quiet()), Catch::Contains("other images"));
    std::vector<data::Record> edited = records;
    edited[3].report += " Small effusion.";
    CHECK_THROWS_WITH(apps::train_diffusion(c, edited, full.path(), quiet()), Catch::Contains("other images"));
    apps::DiffusionTrainConfig more_workers = c;
    more_workers.workers = c.workers + 1;
    CHECK_NOTHROW(apps::train_diffusion(more_workers, records, full.path(), quiet()));  // finished: nothing to run
}

TEST_CASE("diffusion trainer: exported pipeline holds the EMA weights, loads back and generates; samples",
          "[cpu][apps][diffusion-trainer]") {
    const auto& records = phantom_records();
    apps::DiffusionTrainConfig c = tiny_config();
    c.max_steps = 3;
    c.sample_every = 2;
    c.checkpoint_every = 0;
    c.train_text_encoder = true;
    c.latents = "mode";
    c.accumulation = 2;
    TempDir out("difftrain_export");
    const apps::DiffusionTrainResult r = apps::train_diffusion(c, records, out.path(), quiet());
    REQUIRE(r.steps_run == 3);
    CHECK(fs::exists(out / "samples/step_2/0.png"));
    CHECK(fs::exists(out / "samples/step_3/0.png"));
    CHECK(fs::exists(out / "config.json"));
    CHECK(fs::exists(out / "run.json"));
    CHECK(fs::exists(out / "summary.json"));
    CHECK(logged_losses(out / "log.jsonl").size() == 3);

    // The checkpoint holds unet.*, text_encoder.* (trained) and ema.* (the UNet's keys); the exported UNet is the EMA.
    const nn::LoadedCheckpoint ck = nn::read_checkpoint(out / "last");
    CHECK(ck.meta.at("step") == 3);
    CHECK(ck.meta.at("ema_updates") == 3);
    const auto exported = tensors_of(out / "pipeline/unet/diffusion_pytorch_model.safetensors");
    REQUIRE_FALSE(exported.empty());
    bool any_differs = false;
    for (const auto& [k, v] : exported) {
        INFO(k);
        REQUIRE(ck.weights.count("ema." + k));
        REQUIRE(ck.weights.count("unet." + k));
        CHECK(ck.weights.at("ema." + k).to_vector<float>() == v);
        any_differs = any_differs || ck.weights.at("unet." + k).to_vector<float>() != v;
    }
    CHECK(any_differs);  // EMA weights are not the live ones
    CHECK(ck.weights.count("text_encoder.text_model.final_layer_norm.weight") == 1);
    // The trained text encoder is exported too (it moved from the starting weights).
    CHECK(tensors_of(out / "pipeline/text_encoder/model.safetensors") !=
          tensors_of(kPipe + "/text_encoder/model.safetensors"));

    auto pipe = diffusion::StableDiffusionPipeline::load(r.pipeline_dir);
    diffusion::GenerateOptions go;
    go.prompts = {"55 year old Asian male. Cardiomegaly."};
    go.num_inference_steps = 2;
    const auto g = pipe.generate(go);
    REQUIRE(g.images.shape() == tensor::Shape{1, 3, 16, 16});
    for (float v : g.images.to_vector<float>()) CHECK((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("diffusion trainer: RoentGen prompts from the record", "[cpu][apps][diffusion-trainer]") {
    data::Record r;
    r.report = "Small  left pleural effusion.";
    r.age = 58.6;
    r.sex = data::Sex::female;
    r.race = data::Race::black;
    CHECK(apps::training_prompt(r, "demographic") == "59 year old Black female. Small left pleural effusion.");
    CHECK(apps::training_prompt(r, "report") == "Small  left pleural effusion.");
    r.race = data::Race::other_unknown;  // demographics not all known: the report alone
    CHECK(apps::training_prompt(r, "demographic") == "Small  left pleural effusion.");
    // The phantom's records carry demographics and an impression.
    const auto& p = phantom_records().front();
    const std::string prompt = apps::training_prompt(p, "demographic");
    CHECK(prompt.find(" year old ") != std::string::npos);
    CHECK(prompt.find(p.report.substr(0, 10)) != std::string::npos);
}

TEST_CASE("diffusion trainer: the command runs a config; config and data errors", "[cpu][apps][diffusion-trainer]") {
    TempDir dir("difftrain_cmd");
    const json cfg = {{"model", kPipe},
                      {"data", {{"dataset", "manifest"}, {"root", (phantom_dir() / "manifest.csv").string()}}},
                      {"train", {{"max_steps", 2}, {"batch_size", 2}, {"workers", 0}, {"checkpoint_every", 0}}},
                      {"out", dir / "run"}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    std::string a1 = "--config", a2 = dir / "config.json", a3 = "--quiet";
    std::vector<char*> argv = {a1.data(), a2.data(), a3.data()};  // the arguments after the command name
    REQUIRE(apps::cmd_train_diffusion((int)argv.size(), argv.data()) == 0);
    CHECK(fs::exists(dir / "run/pipeline/model_index.json"));
    CHECK(fs::exists(dir / "run/train_config.json"));
    CHECK(logged_losses(dir / "run/log.jsonl").size() == 2);

    // config errors, named
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json({{"modle", "x"}}),
                      Catch::Contains("unknown key \"modle\""));
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json(json::object()), Catch::Contains("\"model\""));
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json({{"model", "x"}, {"p_uncond", 1.5}}),
                      Catch::Contains("p_uncond"));
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json({{"model", "x"}, {"lr", "fast"}}),
                      Catch::Contains("\"lr\" has the wrong type"));
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json({{"model", "x"}, {"latents", "mean"}}),
                      Catch::Contains("latents must be"));
    CHECK_THROWS_WITH(apps::DiffusionTrainConfig::from_json({{"model", "x"}, {"sample_every", 5},
                                                            {"sample_prompts", json::array()}}),
                      Catch::Contains("sample_prompts"));
    const auto& records = phantom_records();
    apps::DiffusionTrainConfig c = tiny_config();
    c.model = (dir / "no_such_model");
    CHECK_THROWS_WITH(apps::train_diffusion(c, records, dir / "x", quiet()),
                      Catch::Contains("model folder") && Catch::Contains("does not exist"));
    c = tiny_config();
    c.image_size = 17;
    CHECK_THROWS_WITH(apps::train_diffusion(c, records, dir / "x", quiet()),
                      Catch::Contains("image_size 17 is not a multiple of the VAE factor 2"));
    c = tiny_config();
    c.variant = "fp16";  // the fixture's UNet has fp16 shards; the other components fall back to their plain files
    c.max_steps = 1;
    c.sample_every = 0;
    const apps::DiffusionTrainResult half = apps::train_diffusion(c, records, dir / "fp16", quiet());
    CHECK(half.steps_run == 1);
    c = tiny_config();
    CHECK_THROWS_WITH(apps::train_diffusion(c, {}, dir / "x", quiet()), Catch::Contains("no training images"));
    c.schedule = "cosine";
    c.warmup_steps = 6;
    CHECK_THROWS_WITH(apps::train_diffusion(c, records, dir / "x", quiet()), Catch::Contains("warmup_steps"));
    std::string b2 = "/nonexistent.json";
    std::vector<char*> bad = {a1.data(), b2.data()};
    CHECK_THROWS_WITH(apps::cmd_train_diffusion((int)bad.size(), bad.data()), Catch::Contains("cannot open config"));
}
