// StableDiffusionPipeline: loading a diffusers folder, prompt encoding, guided sampling and decoding, saving (the
// formulas are in diffusion/pipeline.h).
#include "diffusion/pipeline.h"

#include <filesystem>
#include <fstream>

#include "diffusion/pretrained.h"
#include "diffusion/sampling.h"
#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace fs = std::filesystem;
namespace ts = cxr::tensor;

namespace {

void require_component(const PipelineIndex& index, const std::string& root, const std::string& name,
                       const std::vector<std::string>& classes) {
    auto it = index.components.find(name);
    CXR_CHECK(it != index.components.end() && it->second.present(), "StableDiffusionPipeline: ", root,
              "/model_index.json has no \"", name, "\" component");
    bool known = false;
    for (const auto& c : classes) known = known || it->second.class_name == c;
    std::string list;
    for (const auto& c : classes) list += (list.empty() ? "" : ", ") + c;
    CXR_CHECK(known, "StableDiffusionPipeline: component \"", name, "\" is a ", it->second.class_name,
              "; cxr builds ", list);
    CXR_CHECK(fs::is_directory(fs::path(root) / name), "StableDiffusionPipeline: ", root, " has no ", name, "/ folder");
}


// The component's weights of the variant, or its plain ones when it has none of that variant.
nn::StateDict component_weights(const fs::path& dir, const std::string& variant, std::vector<std::string>& files) {
    const std::string v = has_component_weights(dir.string(), variant) ? variant : "";
    ComponentWeights w = read_component_weights(dir.string(), v);
    files.insert(files.end(), w.files.begin(), w.files.end());
    return std::move(w.tensors);
}

}  // namespace

StableDiffusionPipeline StableDiffusionPipeline::load(const std::string& root, const PipelineLoadOptions& o) {
    StableDiffusionPipeline p;
    p.root = root;
    p.device = o.device;
    p.dtype = o.dtype;
    CXR_CHECK(o.dtype == ts::DType::f32 || (o.dtype == ts::DType::f64 && o.device == ts::Device::cpu()),
              "StableDiffusionPipeline: compute dtype must be f32, or f64 on the CPU (got ", ts::dtype_name(o.dtype), ")");
    p.index = read_pipeline_index(root);
    CXR_CHECK(p.index.class_name == "StableDiffusionPipeline", "StableDiffusionPipeline: ", root, " holds a ",
              p.index.class_name, "; cxr loads StableDiffusionPipeline folders (text-to-image, SD 1.x / 2.x)");
    require_component(p.index, root, "tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"});
    require_component(p.index, root, "text_encoder", {"CLIPTextModel"});
    require_component(p.index, root, "unet", {"UNet2DConditionModel"});
    require_component(p.index, root, "vae", {"AutoencoderKL"});
    require_component(p.index, root, "scheduler",
                      {"DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler"});
    const fs::path r(root);
    // Every parameter is overwritten by the strict loads below: skip drawing the random initialisation (tens of
    // seconds for SD's ~1.1e9 parameters).
    nn::init::SkipRandomInit skip_init;

    p.tokenizer_dir = (r / "tokenizer").string();
    p.tokenizer = std::make_shared<ClipTokenizer>(ClipTokenizer::from_hf_folder(p.tokenizer_dir));

    p.text_encoder_config = read_component_config((r / "text_encoder").string());
    p.text_encoder = std::make_shared<ClipTextModel>(
            ClipTextConfig::from_json(p.text_encoder_config.dump(), (r / "text_encoder/config.json").string()));
    p.text_encoder->load_state_dict(normalize_clip_text_keys(component_weights(r / "text_encoder", o.variant,
                                                                               p.weight_files)));  // strict

    p.unet_config = read_component_config((r / "unet").string());
    p.unet = std::make_shared<UNet2DConditionModel>(
            UNet2DConditionConfig::from_json(p.unet_config.dump(), (r / "unet/config.json").string()));
    p.unet->load_state_dict(component_weights(r / "unet", o.variant, p.weight_files));

    p.vae_config = read_component_config((r / "vae").string());
    p.vae = std::make_shared<AutoencoderKL>(AutoencoderKLConfig::from_json(p.vae_config));
    p.vae->load_weights(component_weights(r / "vae", o.variant, p.weight_files));
    p.vae->decode_batch_limit = 4;  // a large batch at 512 px would need ~1 GiB of activations per image at once

    p.scheduler_config = SchedulerConfig::from_json(read_component_config((r / "scheduler").string()), o.scheduler);

    for (nn::Module* m : {(nn::Module*)p.text_encoder.get(), (nn::Module*)p.unet.get(), (nn::Module*)p.vae.get()}) {
        m->to(o.dtype);  // an fp16 variant is converted at load
        m->eval();
        m->freeze();
        if (o.device != ts::Device::cpu()) m->to(o.device);
    }
    CXR_CHECK(p.unet->config.cross_attention_dim.size() == 1 &&
                      p.unet->config.cross_attention_dim[0] == p.text_encoder->config().hidden_size,
              "StableDiffusionPipeline: the UNet's cross_attention_dim does not equal the text encoder's hidden size ",
              p.text_encoder->config().hidden_size);
    CXR_CHECK(p.unet->config.in_channels == p.vae->config.latent_channels,
              "StableDiffusionPipeline: the UNet takes ", p.unet->config.in_channels, " channels but the VAE's latents have ",
              p.vae->config.latent_channels);
    return p;
}

int64_t StableDiffusionPipeline::vae_scale_factor() const {
    return int64_t(1) << (vae->config.block_out_channels.size() - 1);
}

std::unique_ptr<Scheduler> StableDiffusionPipeline::make_scheduler() const {
    return diffusion::make_scheduler(scheduler_config);
}

Tensor StableDiffusionPipeline::encode_prompts(const std::vector<std::string>& prompts, int64_t clip_skip) {
    CXR_CHECK(!prompts.empty(), "encode_prompts: no prompts");
    const int context = (int)text_encoder->config().max_position_embeddings;
    std::vector<int64_t> ids;
    for (const auto& prompt : prompts) {
        const std::vector<int> one = tokenizer->encode_for_model(prompt, context);
        ids.insert(ids.end(), one.begin(), one.end());
    }
    ts::NoGradGuard ng;
    Tensor t = ts::from_vector(ids, {(int64_t)prompts.size(), (int64_t)context});  // [B, 77] i64
    if (device != ts::Device::cpu()) t = ts::to_device(t, device);
    return text_encoder->encode(t, clip_skip);  // [B, 77, D]
}

Tensor StableDiffusionPipeline::initial_noise(uint64_t seed, int64_t h, int64_t w) const {
    ts::Generator gen(seed);
    ts::Options opts(ts::DType::f32);
    Tensor noise = ts::randn({1, vae->config.latent_channels, h, w}, opts, &gen);
    if (dtype != ts::DType::f32) noise = ts::cast(noise, dtype);
    return device == ts::Device::cpu() ? noise : ts::to_device(noise, device);
}

GenerateResult StableDiffusionPipeline::generate(const GenerateOptions& o) {
    const int64_t B = (int64_t)o.prompts.size();
    CXR_CHECK(B > 0, "generate: no prompts");
    CXR_CHECK(o.negative_prompts.empty() || (int64_t)o.negative_prompts.size() == B, "generate: ",
              o.negative_prompts.size(), " negative prompts for ", B, " prompts (give none or one per prompt)");
    CXR_CHECK(o.seeds.empty() || (int64_t)o.seeds.size() == B, "generate: ", o.seeds.size(), " seeds for ", B,
              " prompts (give none or one per prompt)");
    CXR_CHECK(o.num_inference_steps > 0, "generate: num_inference_steps must be positive");
    const int64_t f = vae_scale_factor();
    const int64_t H = o.height > 0 ? o.height : unet->config.sample_size[0] * f;
    const int64_t W = o.width > 0 ? o.width : unet->config.sample_size[1] * f;
    CXR_CHECK(H % f == 0 && W % f == 0, "generate: height and width must be multiples of ", f, " (got ", H, "×", W, ")");
    const int64_t h = H / f, w = W / f;

    ts::NoGradGuard ng;
    const Tensor cond = encode_prompts(o.prompts, o.clip_skip);  // [B, 77, D]
    // The unconditional embeddings are needed only with guidance, and diffusers takes them from the last hidden
    // state whatever clip_skip is (clip skip applies to the prompt's embeddings only).
    Tensor uncond;
    if (o.guidance_scale > 1.0) {
        std::vector<std::string> negatives = o.negative_prompts;
        if (negatives.empty()) negatives.assign((size_t)B, "");
        uncond = encode_prompts(negatives, 0);  // [B, 77, D]
    }

    Tensor latents;
    if (o.latents.defined()) {
        const ts::Shape want{B, vae->config.latent_channels, h, w};
        CXR_CHECK(o.latents.shape() == want, "generate: latents must be ", ts::shape_str(want), ", got ",
                  ts::shape_str(o.latents.shape()));
        latents = ts::cast(o.latents, dtype);
    } else {
        std::vector<Tensor> per_image;
        for (int64_t b = 0; b < B; ++b)
            per_image.push_back(initial_noise(o.seeds.empty() ? o.seed_base + (uint64_t)b : o.seeds[(size_t)b], h, w));
        latents = ts::cat(per_image, 0);  // [B, C, h, w]
    }
    if (device != ts::Device::cpu()) latents = ts::to_device(latents, device);

    std::unique_ptr<Scheduler> scheduler = make_scheduler();
    // One generator per image for the stochastic steps (DDPM, DDIM with η > 0), seeded apart from the start noise.
    std::vector<ts::Generator> gens;
    for (int64_t b = 0; b < B; ++b)
        gens.emplace_back((o.seeds.empty() ? o.seed_base + (uint64_t)b : o.seeds[(size_t)b]) ^ 0x9e3779b97f4a7c15ULL);
    SampleOptions so;
    so.num_inference_steps = o.num_inference_steps;
    so.guidance_scale = o.guidance_scale;
    so.guidance_rescale = o.guidance_rescale;
    so.cond = cond;
    so.uncond = uncond;
    so.eta = o.eta;
    for (auto& g : gens) so.generators.push_back(&g);
    if (o.on_step) so.callback = [&](int64_t step, int64_t total, int64_t, const Tensor&) { o.on_step(step, total); };
    UNet2DConditionModel& net = *unet;
    const Denoiser denoiser = [&net](const Tensor& x, int64_t t, const Tensor& c) {
        return net.forward(x, (double)t, c);
    };
    GenerateResult result;
    result.latents = sample(denoiser, latents, *scheduler, so);
    if (o.decode) {
        Tensor images = denormalize_images(vae->latents_to_images(result.latents));  // [B, 3, H, W] in [0, 1]
        result.images = ts::to_device(images, ts::Device::cpu());
    }
    return result;
}

void StableDiffusionPipeline::save(const std::string& out_root) const {
    const fs::path r(out_root);
    fs::create_directories(r);
    save_component((r / "text_encoder").string(), text_encoder_config, *text_encoder, "model");
    save_component((r / "unet").string(), unet_config, *unet);
    save_component((r / "vae").string(), vae_config, *vae);
    fs::create_directories(r / "scheduler");
    write_file_atomically((r / "scheduler" / "scheduler_config.json").string(), scheduler_config.to_json().dump(2) + "\n");
    fs::create_directories(r / "tokenizer");
    const bool same_tokenizer = fs::exists(r / "tokenizer") && fs::equivalent(r / "tokenizer", tokenizer_dir);
    if (!same_tokenizer)
        for (const auto& e : fs::directory_iterator(tokenizer_dir))
            if (e.is_regular_file())
                fs::copy_file(e.path(), r / "tokenizer" / e.path().filename(), fs::copy_options::overwrite_existing);
    // The index lists what this folder holds: the five components written above, every other component the source
    // listed (safety checker, feature extractor, image encoder) as absent — diffusers would otherwise look for
    // folders that are not here — and no safety checker required.
    nlohmann::json index_json = index.raw;
    for (auto& [key, value] : index_json.items())
        if (!key.empty() && key[0] != '_' && value.is_array() && value.size() == 2 && key != "tokenizer" &&
            key != "text_encoder" && key != "unet" && key != "vae" && key != "scheduler")
            value = nlohmann::json::array({nullptr, nullptr});
    if (index_json.contains("requires_safety_checker")) index_json["requires_safety_checker"] = false;
    index_json["scheduler"] = {"diffusers", to_string(scheduler_config.kind)};  // the scheduler in use
    write_file_atomically((r / "model_index.json").string(), index_json.dump(2) + "\n");
}

}  // namespace cxr::diffusion
