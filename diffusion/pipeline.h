// Text-to-image with a Stable Diffusion pipeline folder: diffusers' StableDiffusionPipeline (Rombach et al. 2022,
// "High-Resolution Image Synthesis with Latent Diffusion Models") over the components of diffusion/.
//
//   load(root):  model_index.json → tokenizer/ (ClipTokenizer), text_encoder/ (ClipTextModel), unet/
//                (UNet2DConditionModel), vae/ (AutoencoderKL), scheduler/ (SchedulerConfig); each from its
//                config and its weights (diffusion/pretrained.h; a variant such as fp16 is read and converted to
//                the pipeline's dtype), strictly.
//   generate:    ids = tokenizer(prompt) padded to 77;  c = text_encoder(ids) [B, 77, D], u = text_encoder(negative
//                prompt or "") [B, 77, D];
//                z_T = ε · init_noise_sigma,  ε ~ N(0, I) [B, C_lat, H/f, W/f] from Philox seeded per image (or the
//                caller's latents), f = 2^(len(vae.block_out_channels) − 1);
//                z_0 = sample(unet, z_T, scheduler, guidance g, c, u)   (diffusion/sampling.h, classifier-free);
//                images = clamp(vae.decode(z_0 / scaling_factor + shift) / 2 + 1/2, 0, 1)   [B, 3, H, W].
// Each image's starting noise depends only on its own seed, so a batch reproduces the images generated one by one,
// and the same seed gives the same image on any batch size.
//   save(root):  writes the folder back in diffusers' layout (model_index.json, configs, one safetensors file per
//                component, the tokenizer's files copied; components cxr does not hold — safety checker, feature
//                extractor — listed as absent), so diffusers can load what cxr trained.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diffusion/clip_text_encoder.h"
#include "diffusion/clip_tokenizer.h"
#include "diffusion/pretrained.h"
#include "diffusion/schedulers.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"

namespace cxr::diffusion {

struct PipelineLoadOptions {
    // "" or e.g. "fp16": the weight files' variant. A component without files of that variant falls back to its
    // plain files (listed in StableDiffusionPipeline::weight_files), as a folder often has fp16 files for the UNet
    // only; the weights are converted to f32 either way.
    std::string variant;
    tensor::Device device = tensor::Device::cpu();  // where the models run
    // The compute dtype: f32, or f64 on the CPU to audit a run against a float64 reference. (Reduced precision
    // comes through autocast on CUDA, not through this.)
    tensor::DType dtype = tensor::DType::f32;
    // Scheduler to use instead of the folder's (its config is converted as diffusers' X.from_config does).
    std::optional<SchedulerKind> scheduler;
};

struct GenerateOptions {
    std::vector<std::string> prompts;           // B prompts
    std::vector<std::string> negative_prompts;  // empty: "" for every image; else one per prompt
    int64_t height = 0, width = 0;              // 0: the UNet's sample_size × f
    int64_t num_inference_steps = 50;
    double guidance_scale = 7.5;
    double guidance_rescale = 0.0;
    double eta = 0.0;                           // DDIM only
    std::vector<uint64_t> seeds;                // one per image; empty: seed_base + i
    uint64_t seed_base = 0;
    Tensor latents;                             // optional initial latents [B, C_lat, H/f, W/f]; the seeds then
                                                // seed only the noise of stochastic steps (DDPM, DDIM η > 0)
    int64_t clip_skip = 0;
    bool decode = true;                         // false: return the latents only
    // Called after each denoising step (progress bars).
    std::function<void(int64_t step, int64_t total)> on_step;
};

struct GenerateResult {
    Tensor latents;  // [B, C_lat, h, w] the final latents (scaled, as the UNet sees them)
    Tensor images;   // [B, 3, H, W] in [0, 1], the pipeline's dtype, on the CPU (undefined when decode is false);
                     // the VAE decodes at most vae->decode_batch_limit (4) images at a time
};

class StableDiffusionPipeline {
public:
    static StableDiffusionPipeline load(const std::string& root, const PipelineLoadOptions& options = {});

    // Text embeddings [B, 77, D] of the prompts (the text encoder's last hidden state, or clip-skipped).
    Tensor encode_prompts(const std::vector<std::string>& prompts, int64_t clip_skip = 0);
    GenerateResult generate(const GenerateOptions& options);
    // The Philox starting noise of one image [1, C_lat, h, w] for a seed (drawn in f32, then in the pipeline's dtype
    // on its device: the same seed starts from the same noise in f32 and f64).
    Tensor initial_noise(uint64_t seed, int64_t h, int64_t w) const;
    // A fresh scheduler from the pipeline's scheduler config.
    std::unique_ptr<Scheduler> make_scheduler() const;
    int64_t vae_scale_factor() const;
    void save(const std::string& root) const;

    std::string root;
    PipelineIndex index;
    std::shared_ptr<ClipTokenizer> tokenizer;
    std::string tokenizer_dir;
    std::shared_ptr<ClipTextModel> text_encoder;
    std::shared_ptr<UNet2DConditionModel> unet;
    std::shared_ptr<AutoencoderKL> vae;
    SchedulerConfig scheduler_config;
    nlohmann::json text_encoder_config, unet_config, vae_config;  // as read (written back by save)
    tensor::Device device = tensor::Device::cpu();
    tensor::DType dtype = tensor::DType::f32;
    std::vector<std::string> weight_files;  // every weight file read, for the run record

private:
    StableDiffusionPipeline() = default;
};

}  // namespace cxr::diffusion
