// The sampling loop of a latent diffusion model as a plain function of (model callback, latents, scheduler)
// (DESIGN.md §4), with classifier-free guidance as huggingface diffusers' StableDiffusionPipeline applies it.
//
// LOOP (diffusers' StableDiffusionPipeline.__call__, steps 5-7):
//   latents ← latents · init_noise_sigma;  scheduler.set_timesteps(n)
//   for each timestep t:
//     x   = [latents; latents]            (batch 2B; with guidance, unconditional half first)   or latents
//     x   = scheduler.scale_model_input(x, t)
//     out = model(x, t, [uncond; cond])    ONE batched call
//     ε   = ε_u + g (ε_c − ε_u)            (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance")
//     ε   = rescale(ε, ε_c, φ)             when guidance_rescale φ > 0 (below)
//     latents = scheduler.step(ε, t, latents[, noise]).prev_sample
// Guidance is on when guidance_scale > 1 (diffusers' do_classifier_free_guidance); otherwise one call per step with
// the conditioning alone.
//
// GUIDANCE RESCALE (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4; diffusers'
// rescale_noise_cfg): with std over all dims but the batch (unbiased, as torch.std):
//   ε_r = ε · std(ε_c) / std(ε);   ε ← φ ε_r + (1 − φ) ε
//
// NOISE of stochastic steps (DDPM; DDIM with η > 0) is drawn from the Philox generators of SampleOptions: one
// generator for the whole batch, or one per image (then image b's noise depends only on its own generator, so a
// batch reproduces the images generated one by one). The loop runs under no_grad.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "diffusion/schedulers.h"
#include "tensor/tensor.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::diffusion {

// The denoiser: x [B', C, H, W], timestep t, conditioning cond [B', ...] (undefined when there is none) ->
// model output of x's shape (ε, v or x0 as the scheduler's prediction_type says).
using Denoiser = std::function<Tensor(const Tensor& x, int64_t t, const Tensor& cond)>;

// Called after each step: step = 1..total, the timestep just done and the latents after it.
using StepCallback = std::function<void(int64_t step, int64_t total, int64_t t, const Tensor& latents)>;

struct SampleOptions {
    int64_t num_inference_steps = 50;
    double guidance_scale = 7.5;   // > 1: classifier-free guidance
    double guidance_rescale = 0.0;  // φ in [0, 1]
    Tensor cond;                   // [B, ...] conditioning (e.g. text embeddings [B, 77, 768]); may be undefined
    Tensor uncond;                 // [B, ...] or [1, ...] (broadcast): the unconditional / negative conditioning
    double eta = 0.0;              // DDIM's η (must be 0 for the other schedulers)
    // Noise of stochastic steps: empty = the default generator; one = for the whole batch; B = one per image.
    std::vector<tensor::Generator*> generators;
    StepCallback callback;         // progress bar / previews; may be empty
};

// Runs the whole reverse process from `latents` ([B, C, H, W], unit-variance noise) and returns the final latents.
// Throws cxr::Error naming the problem for bad options (missing uncond with guidance, batch mismatches, a model
// output of the wrong shape, eta for a scheduler without it, a wrong number of generators).
Tensor sample(const Denoiser& model, Tensor latents, Scheduler& scheduler, const SampleOptions& options);

// ε_u + g (ε_c − ε_u), then the rescale when φ > 0. eps_uncond and eps_cond have the same shape [B, ...].
Tensor classifier_free_guidance(const Tensor& eps_uncond, const Tensor& eps_cond, double guidance_scale,
                                double guidance_rescale = 0.0);
// diffusers' rescale_noise_cfg (formula above).
Tensor rescale_noise_cfg(const Tensor& noise_cfg, const Tensor& noise_pred_text, double guidance_rescale);

}  // namespace cxr::diffusion
