// The diffusion training loss and its draws (diffusion/train.h has the formulas).
#include "diffusion/train.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace cxr::diffusion {

namespace ts = cxr::tensor;

Tensor min_snr_weights(const Scheduler& scheduler, const Tensor& timesteps, double gamma) {
    CXR_CHECK(gamma > 0 && std::isfinite(gamma), "min_snr_weights: gamma must be > 0, got ", gamma);
    const PredictionType kind = scheduler.config().prediction_type;
    CXR_CHECK(kind != PredictionType::sample,
              "min_snr_weights: prediction_type \"sample\" is not supported for training (epsilon or v_prediction)");
    const Tensor snr = scheduler.snr(timesteps);                       // [B] f32, SNR_t = ᾱ/(1−ᾱ)
    const Tensor clipped = ts::clamp(snr, -INFINITY, gamma);           // min(SNR_t, γ)
    return kind == PredictionType::epsilon ? ts::div(clipped, snr)     // min(SNR, γ)/SNR
                                           : ts::div(clipped, ts::add(snr, 1.0));  // min(SNR, γ)/(SNR+1)
}

DiffusionLossResult diffusion_loss(UNet2DConditionModel& unet, const Scheduler& scheduler, const Tensor& latents,
                                   const Tensor& text_embeddings, const Tensor& timesteps, const Tensor& noise,
                                   const DiffusionLossOptions& options) {
    CXR_CHECK(latents.defined() && latents.dim() == 4, "diffusion_loss: latents must be [B, C, h, w], got ",
              latents.defined() ? ts::shape_str(latents.shape()) : std::string("undefined"));
    const int64_t B = latents.size(0);
    CXR_CHECK(latents.size(1) == unet.config.in_channels, "diffusion_loss: latents have ", latents.size(1),
              " channels but the UNet takes ", unet.config.in_channels);
    CXR_CHECK(noise.defined() && noise.shape() == latents.shape(),
              "diffusion_loss: noise must have the latents' shape ", ts::shape_str(latents.shape()), ", got ",
              noise.defined() ? ts::shape_str(noise.shape()) : "undefined");
    CXR_CHECK(text_embeddings.defined() && text_embeddings.dim() == 3 && text_embeddings.size(0) == B,
              "diffusion_loss: text embeddings must be [B = ", B, ", S, D], got ",
              text_embeddings.defined() ? ts::shape_str(text_embeddings.shape()) : std::string("undefined"));
    CXR_CHECK(timesteps.defined() && ts::is_integral(timesteps.dtype()) && timesteps.dim() == 1 &&
                  timesteps.size(0) == B,
              "diffusion_loss: timesteps must be an integer tensor [B = ", B, "], got ",
              timesteps.defined() ? ts::shape_str(timesteps.shape()) + " " + ts::dtype_name(timesteps.dtype())
                                  : std::string("undefined"));
    CXR_CHECK(options.min_snr_gamma >= 0 && std::isfinite(options.min_snr_gamma),
              "diffusion_loss: min_snr_gamma must be >= 0 (0 = off), got ", options.min_snr_gamma);
    const PredictionType kind = scheduler.config().prediction_type;
    CXR_CHECK(kind != PredictionType::sample,
              "diffusion_loss: prediction_type \"sample\" is not supported for training (epsilon or v_prediction)");

    DiffusionLossResult r;
    Tensor x0 = latents.detach(), eps = noise.detach();  // the frozen VAE's latents and the drawn noise
    r.noisy = scheduler.add_noise(x0, eps, timesteps);    // [B, C, h, w] √ᾱ x0 + √(1−ᾱ) ε
    r.target = kind == PredictionType::epsilon ? eps : scheduler.get_velocity(x0, eps, timesteps);  // ε or v
    const Tensor pred = unet.forward(r.noisy, timesteps, text_embeddings);  // [B, C, h, w]
    const Tensor err = ts::square(ts::sub(pred, r.target));                 // [B, C, h, w]
    const Tensor per_sample = ts::mean(err, {1, 2, 3});                    // [B] e_b
    if (options.min_snr_gamma > 0) {
        r.weights = min_snr_weights(scheduler, timesteps, options.min_snr_gamma).to(latents.dtype());  // [B]
        if (r.weights.device() != latents.device()) r.weights = r.weights.to(latents.device());
        r.loss = ts::mean(ts::mul(per_sample, r.weights));  // (1/B) Σ w_b e_b
    } else {
        r.weights = ts::ones({B}, ts::Options(latents.dtype(), latents.device()));
        r.loss = ts::mean(per_sample);  // = the mean over every element (equal-sized samples)
    }
    r.per_sample = per_sample.detach();
    return r;
}

TrainingNoise draw_training_noise(const Tensor& like, int64_t num_train_timesteps, ts::Generator& gen,
                                  double noise_offset) {
    CXR_CHECK(like.defined() && like.dim() == 4, "draw_training_noise: latents must be [B, C, h, w], got ",
              like.defined() ? ts::shape_str(like.shape()) : std::string("undefined"));
    CXR_CHECK(num_train_timesteps >= 1, "draw_training_noise: num_train_timesteps must be >= 1");
    CXR_CHECK(noise_offset >= 0 && std::isfinite(noise_offset), "draw_training_noise: noise_offset must be >= 0, got ",
              noise_offset);
    const int64_t B = like.size(0), C = like.size(1);
    const ts::Options f32(ts::DType::f32, like.device());
    TrainingNoise out;
    Tensor eps = ts::randn(like.shape(), f32, &gen);  // [B, C, h, w] ε ~ N(0, I)
    if (noise_offset > 0)
        eps = ts::add(eps, ts::mul(ts::randn({B, C, 1, 1}, f32, &gen), noise_offset));  // + o · N(0, I) per channel
    out.noise = like.dtype() == ts::DType::f32 ? eps : ts::cast(eps, like.dtype());
    out.timesteps = ts::randint(0, num_train_timesteps, {B}, ts::Options(ts::DType::i64, like.device()), &gen);  // [B]
    return out;
}

std::vector<std::string> prompt_dropout(const std::vector<std::string>& prompts, double p, ts::Generator& gen,
                                        std::vector<bool>* dropped) {
    CXR_CHECK(p >= 0 && p <= 1, "prompt_dropout: p must be in [0, 1], got ", p);
    std::vector<std::string> out = prompts;
    if (dropped) dropped->assign(prompts.size(), false);
    if (prompts.empty()) return out;
    const std::vector<float> u =
        ts::rand({(int64_t)prompts.size()}, ts::Options(ts::DType::f32), &gen).to_vector<float>();  // one per prompt
    for (size_t i = 0; i < prompts.size(); ++i) {
        if ((double)u[i] < p) {
            out[i].clear();
            if (dropped) (*dropped)[i] = true;
        }
    }
    return out;
}

Tensor images_to_training_latents(AutoencoderKL& vae, const Tensor& images01, bool sample, ts::Generator* gen) {
    CXR_CHECK(images01.defined() && images01.dim() == 4,
              "images_to_training_latents: images must be [B, C, H, W], got ",
              images01.defined() ? ts::shape_str(images01.shape()) : std::string("undefined"));
    const int64_t B = images01.size(0), C = images01.size(1), H = images01.size(2), W = images01.size(3);
    const int64_t want = vae.config.in_channels;
    CXR_CHECK(C == want || C == 1, "images_to_training_latents: images have ", C, " channels; the VAE takes ", want,
              " (or 1, repeated)");
    const int64_t f = int64_t(1) << (vae.config.block_out_channels.size() - 1);
    CXR_CHECK(H % f == 0 && W % f == 0, "images_to_training_latents: image size ", H, "×", W,
              " is not a multiple of the VAE factor ", f);
    ts::NoGradGuard no_grad;
    Tensor x = C == want ? images01 : images01.expand({B, want, H, W}).contiguous();  // [B, in, H, W] gray repeated
    x = normalize_images(x);                                                          // [0, 1] -> [−1, 1]
    return vae.images_to_latents(x, sample, gen);  // [B, latent, H/f, W/f]
}

}  // namespace cxr::diffusion
