// diffusion/pipeline.h end to end against diffusers' StableDiffusionPipeline on the tiny pipeline folder
// tests/fixtures/sd_tiny/ (written by diffusers; tests/fixtures/tools/make_sd_tiny_fixtures.py): the same prompt and
// starting latents must give diffusers' text embeddings, final latents and decoded image, with the folder's PNDM
// scheduler and with DDIM swapped in as diffusers' DDIMScheduler.from_config does. Also: the fp16 variant, saving
// and reloading, per-image seeds, and the errors of bad folders and options.
#include "tests/support/testing.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "diffusion/pipeline.h"
#include "diffusion/pretrained.h"
#include "tensor/device.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::diffusion;
using cxr::testing::Fixtures;
using cxr::testing::TempDir;
namespace T = cxr::tensor;
namespace fs = std::filesystem;

namespace {

const std::string kPipe = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny";
const std::string kPrompt = "66 year old white female. no acute cardiopulmonary process";

// The UNet and text encoder weights were widened ×3 so that the text visibly steers the tiny model; after 4 guided
// steps (g = 7.5 amplifies the cond − uncond difference) two f32 runs differ by up to 1.6e-4 on latents of size ~5
// (measured: text embeddings 2e-6, PNDM latents 1.6e-4, DDIM latents 1.6e-4, images 5e-5). The f64 test below
// shows the arithmetic itself agrees far more closely.
constexpr double kAtol = 3e-4, kRtol = 1e-4;

}  // namespace

TEST_CASE("StableDiffusionPipeline reproduces diffusers' generation (PNDM and DDIM)", "[cpu][diffusion][pipeline]") {
    Fixtures fx("sd_tiny");
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kPipe);
    CHECK(pipe.vae_scale_factor() == 2);
    CHECK(pipe.scheduler_config.kind == SchedulerKind::pndm);
    {
        INFO("text embeddings [uncond; cond]");
        CXR_EXPECT_CLOSE(pipe.encode_prompts({"", kPrompt}), fx.get("text_embeddings"), 1e-5, 1e-5);
    }
    GenerateOptions o;
    o.prompts = {kPrompt};
    o.height = o.width = 16;
    o.num_inference_steps = 4;
    o.guidance_scale = 7.5;
    o.latents = fx.get("latents0");
    int64_t calls = 0;
    o.on_step = [&](int64_t, int64_t) { ++calls; };
    const GenerateResult pndm = pipe.generate(o);
    CHECK(calls == 5);  // PNDM with skip_prk_steps runs n + 1 model calls
    CXR_EXPECT_CLOSE(pndm.latents, fx.get("pndm.latents"), kAtol, kRtol);
    CXR_EXPECT_CLOSE(pndm.images, fx.get("pndm.image"), kAtol, kRtol);

    PipelineLoadOptions lo;
    lo.scheduler = SchedulerKind::ddim;
    StableDiffusionPipeline ddim_pipe = StableDiffusionPipeline::load(kPipe, lo);
    o.on_step = nullptr;
    const GenerateResult ddim = ddim_pipe.generate(o);
    CXR_EXPECT_CLOSE(ddim.latents, fx.get("ddim.latents"), kAtol, kRtol);
    CXR_EXPECT_CLOSE(ddim.images, fx.get("ddim.image"), kAtol, kRtol);
}

TEST_CASE("In float64 the pipeline agrees with diffusers' float64 run to the schedulers' rounding",
          "[cpu][diffusion][pipeline]") {
    Fixtures fx("sd_tiny");
    for (const char* name : {"pndm", "ddim"}) {
        INFO(name);
        PipelineLoadOptions lo;
        lo.dtype = cxr::tensor::DType::f64;
        if (std::string(name) == "ddim") lo.scheduler = SchedulerKind::ddim;
        StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kPipe, lo);
        CXR_EXPECT_CLOSE(pipe.encode_prompts({"", kPrompt}), fx.get("text_embeddings64"), 1e-12, 1e-12);
        GenerateOptions o;
        o.prompts = {kPrompt};
        o.num_inference_steps = 4;
        o.latents = fx.get("latents0");
        const GenerateResult r = pipe.generate(o);
        CHECK(r.latents.dtype() == cxr::tensor::DType::f64);
        // Both sides run in f64 (the text embeddings agree to 4e-15), but diffusers' schedulers take their
        // coefficients from float32 tables as 0-d f32 tensors, while ours form some of them in f64 from the same
        // tables. Measured: latents ≤ 1.5e-6 (PNDM) and 7e-7 (DDIM) on values up to ~5, images ≤ 1.1e-7.
        CXR_EXPECT_CLOSE(r.latents, fx.get(std::string(name) + "64.latents"), 3e-6, 1e-6);
        CXR_EXPECT_CLOSE(r.images, fx.get(std::string(name) + "64.image"), 1e-6, 1e-6);
    }
}

TEST_CASE("clip_skip applies to the prompt's embeddings only, as in diffusers", "[cpu][diffusion][pipeline]") {
    Fixtures fx("sd_tiny");
    PipelineLoadOptions lo;
    lo.dtype = cxr::tensor::DType::f64;
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kPipe, lo);
    GenerateOptions o;
    o.prompts = {kPrompt};
    o.num_inference_steps = 4;
    o.clip_skip = 1;
    o.latents = fx.get("latents0");
    CXR_EXPECT_CLOSE(pipe.generate(o).latents, fx.get("pndm64_skip1.latents"), 3e-6, 1e-6);
}

TEST_CASE("save() lists the components it does not write as absent, so diffusers does not look for them",
          "[cpu][diffusion][pipeline]") {
    TempDir dir("pipeline_index");
    fs::copy(kPipe, dir / "src", fs::copy_options::recursive);
    nlohmann::json index;
    {
        std::ifstream in(dir / "src/model_index.json");
        index = nlohmann::json::parse(in);
    }
    // as runwayml's SD 1.5 folder lists them
    index["safety_checker"] = {"stable_diffusion", "StableDiffusionSafetyChecker"};
    index["feature_extractor"] = {"transformers", "CLIPImageProcessor"};
    index["requires_safety_checker"] = true;
    std::ofstream(dir / "src/model_index.json") << index.dump(2);
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(dir / "src");
    pipe.save(dir / "out");
    const PipelineIndex saved = read_pipeline_index(dir / "out");
    CHECK_FALSE(saved.components.at("safety_checker").present());
    CHECK_FALSE(saved.components.at("feature_extractor").present());
    CHECK(saved.components.at("unet").class_name == "UNet2DConditionModel");
    CHECK(saved.raw["requires_safety_checker"] == false);
    pipe.save(dir / "src");  // saving over its own folder (the tokenizer is not copied onto itself)
    CHECK(StableDiffusionPipeline::load(dir / "src").tokenizer->encode_for_model(kPrompt) ==
          pipe.tokenizer->encode_for_model(kPrompt));
}

TEST_CASE("The fp16 variant, saving and reloading, and per-image seeds", "[cpu][diffusion][pipeline]") {
    Fixtures fx("sd_tiny");
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kPipe);
    GenerateOptions o;
    o.prompts = {kPrompt, "72 year old male. cardiomegaly"};
    o.num_inference_steps = 3;
    o.seeds = {11, 12};
    const GenerateResult both = pipe.generate(o);
    REQUIRE(both.images.shape() == T::Shape{2, 3, 16, 16});  // the UNet's sample_size 8 × 2
    // image b depends only on its own seed and prompt
    GenerateOptions one = o;
    one.prompts = {o.prompts[1]};
    one.seeds = {12};
    CXR_EXPECT_CLOSE(pipe.generate(one).images, T::narrow(both.images, 0, 1, 1), 1e-6, 1e-6);

    // fp16 weights: diffusers' sharded variant of the UNet; the other components have no fp16 files and fall back
    // to their plain ones. The UNet's weights are rounded to f16 (relative 5e-4), which moves the images a little.
    PipelineLoadOptions lo;
    lo.variant = "fp16";
    StableDiffusionPipeline half = StableDiffusionPipeline::load(kPipe, lo);
    int shards = 0;
    for (const auto& f : half.weight_files) shards += f.find("fp16-0000") != std::string::npos;
    CHECK(shards == 3);
    CHECK(half.weight_files.size() == 5);
    const T::Tensor half_images = half.generate(o).images;
    CXR_EXPECT_CLOSE(half_images, both.images, 2e-2, 0);
    CHECK_FALSE(cxr::testing::check_close(half_images, both.images, 1e-7, 0).ok);  // really the rounded weights

    // save → reload → the same images
    TempDir dir("pipeline_save");
    pipe.save(dir / "copy");
    CHECK(read_pipeline_index(dir / "copy").class_name == "StableDiffusionPipeline");
    StableDiffusionPipeline back = StableDiffusionPipeline::load(dir / "copy");
    CXR_EXPECT_CLOSE(back.generate(o).images, both.images, 0, 0);
}

TEST_CASE("StableDiffusionPipeline refuses bad folders and options, naming the problem", "[cpu][diffusion][pipeline]") {
    TempDir dir("pipeline_bad");
    fs::create_directories(dir / "p");
    std::ofstream(dir / "p/model_index.json") << R"({"_class_name": "StableDiffusionXLPipeline"})";
    CHECK_THROWS_WITH(StableDiffusionPipeline::load(dir / "p"), Catch::Contains("StableDiffusionXLPipeline"));
    std::ofstream(dir / "p/model_index.json") << R"({"_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"]})";
    CHECK_THROWS_WITH(StableDiffusionPipeline::load(dir / "p"), Catch::Contains("\"tokenizer\""));

    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kPipe);
    GenerateOptions o;
    CHECK_THROWS_WITH(pipe.generate(o), Catch::Contains("no prompts"));
    o.prompts = {"a"};
    o.seeds = {1, 2};
    CHECK_THROWS_WITH(pipe.generate(o), Catch::Contains("2 seeds for 1 prompts"));
    o.seeds = {};
    o.height = 15;
    CHECK_THROWS_WITH(pipe.generate(o), Catch::Contains("multiples of 2"));
    o.height = 16;
    o.latents = T::zeros({1, 4, 4, 4});
    CHECK_THROWS_WITH(pipe.generate(o), Catch::Contains("latents must be [1, 4, 8, 8]"));
}

TEST_CASE("StableDiffusionPipeline on CUDA matches diffusers' images and the CPU run", "[gpu][diffusion][pipeline]") {
    CXR_SKIP_WITHOUT_GPU();
    Fixtures fx("sd_tiny");
    PipelineLoadOptions lo;
    lo.device = T::Device::cuda(0);
    StableDiffusionPipeline gpu = StableDiffusionPipeline::load(kPipe, lo);
    StableDiffusionPipeline cpu = StableDiffusionPipeline::load(kPipe);
    GenerateOptions o;
    o.prompts = {kPrompt};
    o.num_inference_steps = 4;
    o.latents = fx.get("latents0");
    const GenerateResult r = gpu.generate(o);
    CXR_EXPECT_CLOSE(r.latents.to(T::Device::cpu()), fx.get("pndm.latents"), kAtol, kRtol);
    CXR_EXPECT_CLOSE(r.images, fx.get("pndm.image"), kAtol, kRtol);
    // seeds: the Philox noise is drawn on the CPU and moved, so the same seed starts from the same noise
    GenerateOptions s;
    s.prompts = {kPrompt, "40 year old black male. cardiomegaly"};
    s.num_inference_steps = 3;
    s.seeds = {5, 6};
    CXR_EXPECT_CLOSE(gpu.generate(s).images, cpu.generate(s).images, kAtol, kRtol);
}

// Real weights (DESIGN.md §5, the fourth scale): CXR_SD_MODEL names a Stable Diffusion 1.x/2.x folder in diffusers'
// layout (e.g. a local copy of stable-diffusion-v1-5, or a RoentGen checkpoint converted to safetensors). Skipped
// visibly without it. On the CPU this takes about a minute (one 2-step generation at 256 px: bench/results/diffusion_cpu.md).
TEST_CASE("A real Stable Diffusion folder loads strictly and generates", "[real-data][diffusion][pipeline][slow]") {
    const char* dir = std::getenv("CXR_SD_MODEL");
    if (!dir || !*dir) CXR_SKIP("CXR_SD_MODEL is not set (a diffusers Stable Diffusion folder)");
    PipelineLoadOptions lo;
    if (const char* dev = std::getenv("CXR_SD_DEVICE")) lo.device = T::parse_device(dev);
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(dir, lo);
    CHECK(pipe.vae_scale_factor() == 8);
    CHECK(pipe.text_encoder->config().max_position_embeddings == 77);
    GenerateOptions o;
    o.prompts = {"66 year old White female. No acute cardiopulmonary process."};
    o.height = o.width = 256;
    o.num_inference_steps = 2;
    o.seeds = {0};
    const GenerateResult r = pipe.generate(o);
    REQUIRE(r.images.shape() == T::Shape{1, 3, 256, 256});
    const T::Tensor flat = T::reshape(r.images, {-1});
    CHECK(T::amin(flat).item() >= 0.0);
    CHECK(T::amax(flat).item() <= 1.0);
    CHECK(T::std(flat).item() > 0.01);  // not a constant image: the weights did something
}
