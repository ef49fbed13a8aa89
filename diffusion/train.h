// Training the latent diffusion model: the noise-prediction loss of a conditional UNet and the reproducible draws it
// needs (the library half of fine-tuning; the loop, data and checkpoints are apps/train/diffusion_trainer.h).
//
// LOSS (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", L_simple; Rombach et al. 2022 for latents; the
// semantics of diffusers' examples/text_to_image/train_text_to_image.py). For latents x0 [B, C, h, w], text
// embeddings c [B, S, D], integer timesteps t [B] and Gaussian noise ε [B, C, h, w]:
//   x_t    = √ᾱ_t x0 + √(1 − ᾱ_t) ε                       (Scheduler::add_noise, ᾱ in float32 as diffusers)
//   target = ε                                            prediction_type "epsilon"
//          = v = √ᾱ_t ε − √(1 − ᾱ_t) x0                   prediction_type "v_prediction" (Salimans & Ho 2022)
//   e_b    = mean over (C, h, w) of (unet(x_t, t, c) − target)²     per-sample squared error [B]
//   loss   = (1/B) Σ_b w_b e_b
// with w_b = 1 (plain L_simple: then the loss is the mean over every element, as F.mse_loss) or, with min-SNR-γ
// weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"), with
// SNR_t = ᾱ_t / (1 − ᾱ_t) (Scheduler::snr, float32 as diffusers' compute_snr):
//   w_b = min(SNR_t, γ) / SNR_t        for epsilon
//   w_b = min(SNR_t, γ) / (SNR_t + 1)  for v_prediction
// prediction_type "sample" is refused (diffusers' training script refuses it too).
//
// DRAWS (draw_training_noise), in diffusers' order, from one Philox generator so a run is reproducible:
//   ε = randn([B, C, h, w]);  with noise offset o > 0 (diffusers' --noise_offset, Guttenberg 2023):
//   ε ← ε + o · randn([B, C, 1, 1]);   t = randint(0, N, [B]) (N = num_train_timesteps).
// Noise is drawn in float32 (then cast to the latents' dtype), so f32 and f64 runs see the same numbers.
//
// PROMPT DROPOUT (prompt_dropout): each prompt is replaced by "" with probability p (one uniform u_b per prompt,
// dropped when u_b < p), so the model also learns the unconditional prediction that classifier-free guidance
// needs (Ho & Salimans 2022).
//
// LATENTS (images_to_training_latents): images in [0, 1] [B, C, H, W] (C = 1 is repeated to the VAE's channels)
// -> 2x − 1 -> the VAE posterior's mode, or a sample (diffusers' training script samples) -> (z − shift)·scaling;
// computed under no_grad (the VAE is frozen).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/schedulers.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace cxr::diffusion {

struct DiffusionLossOptions {
    double min_snr_gamma = 0.0;  // γ of min-SNR weighting; 0 = off (plain mean squared error)
};

struct DiffusionLossResult {
    Tensor loss;        // 0-d, differentiable w.r.t. the UNet's parameters (and the text embeddings)
    Tensor per_sample;  // [B] e_b, detached
    Tensor weights;     // [B] w_b (ones when min-SNR is off), detached
    Tensor target;      // [B, C, h, w] ε or v, detached
    Tensor noisy;       // [B, C, h, w] x_t, detached
};

// The loss above. latents x0 [B, C, h, w] and noise ε of the same shape (both treated as constants: no gradient
// flows into them), text_embeddings [B, S, D] (gradients flow into them when they require grad, e.g. a trained text
// encoder), timesteps [B] integer in [0, N). Errors name the input whose shape or type is wrong.
DiffusionLossResult diffusion_loss(UNet2DConditionModel& unet, const Scheduler& scheduler, const Tensor& latents,
                                   const Tensor& text_embeddings, const Tensor& timesteps, const Tensor& noise,
                                   const DiffusionLossOptions& options = {});

// The per-sample min-SNR weights w_b of the formula above for timesteps [B] (γ > 0), f32 [B] on the timesteps'
// device.
Tensor min_snr_weights(const Scheduler& scheduler, const Tensor& timesteps, double gamma);

struct TrainingNoise {
    Tensor noise;      // [B, C, h, w] ε (with the offset added), the latents' dtype and device
    Tensor timesteps;  // [B] i64 on the latents' device
};
// The draws above for latents of shape [B, C, h, w] (dtype and device taken from `like`).
TrainingNoise draw_training_noise(const Tensor& like, int64_t num_train_timesteps, tensor::Generator& gen,
                                  double noise_offset = 0.0);

// Prompts with each replaced by "" with probability p (0 <= p <= 1); `dropped` (optional) receives one flag per
// prompt. Draws one uniform per prompt from gen.
std::vector<std::string> prompt_dropout(const std::vector<std::string>& prompts, double p, tensor::Generator& gen,
                                        std::vector<bool>* dropped = nullptr);

// images [B, C, H, W] in [0, 1] (C = 1 or the VAE's in_channels; H, W multiples of the VAE factor) -> latents
// [B, latent, H/f, W/f] as described above; sample = false takes the posterior's mode, true draws from gen.
Tensor images_to_training_latents(AutoencoderKL& vae, const Tensor& images01, bool sample = false,
                                  tensor::Generator* gen = nullptr);

}  // namespace cxr::diffusion
