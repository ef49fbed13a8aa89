// The sampling loop with classifier-free guidance (formulas and the reference pipeline in diffusion/sampling.h).
#include "diffusion/sampling.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace {

// All dims but the batch: {1, ..., ndim-1}.
tensor::Shape non_batch_dims(const Tensor& x) {
    tensor::Shape dims;
    for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
    return dims;
}

// Gaussian noise of `like`'s shape, dtype and device from the generators of the options.
Tensor draw_noise(const Tensor& like, const std::vector<tensor::Generator*>& gens) {
    const tensor::DType dt = like.dtype() == tensor::DType::f64 ? tensor::DType::f64 : tensor::DType::f32;
    const tensor::Options opt(dt, like.device());
    Tensor noise;
    if (gens.size() <= 1) {
        noise = tensor::randn(like.shape(), opt, gens.empty() ? nullptr : gens[0]);
    } else {
        tensor::Shape one = like.shape();
        one[0] = 1;
        std::vector<Tensor> parts;  // [1, C, H, W] each, from image b's own generator
        for (tensor::Generator* g : gens) parts.push_back(tensor::randn(one, opt, g));
        noise = tensor::cat(parts, 0);
    }
    return noise.dtype() == like.dtype() ? noise : noise.to(like.dtype());
}

}  // namespace

Tensor rescale_noise_cfg(const Tensor& noise_cfg, const Tensor& noise_pred_text, double guidance_rescale) {
    CXR_CHECK(noise_cfg.shape() == noise_pred_text.shape(), "rescale_noise_cfg: shapes ",
              tensor::shape_str(noise_cfg.shape()), " and ", tensor::shape_str(noise_pred_text.shape()), " differ");
    CXR_CHECK(noise_cfg.dim() >= 2, "rescale_noise_cfg needs [B, ...] tensors with at least 2 dims");
    const tensor::Shape dims = non_batch_dims(noise_cfg);
    Tensor std_text = tensor::std(noise_pred_text, dims, 1, true);  // [B, 1, ..., 1]
    Tensor std_cfg = tensor::std(noise_cfg, dims, 1, true);         // [B, 1, ..., 1]
    Tensor rescaled = noise_cfg * (std_text / std_cfg);
    return rescaled * guidance_rescale + noise_cfg * (1.0 - guidance_rescale);
}

Tensor classifier_free_guidance(const Tensor& eps_uncond, const Tensor& eps_cond, double guidance_scale,
                                double guidance_rescale) {
    CXR_CHECK(eps_uncond.shape() == eps_cond.shape(), "classifier_free_guidance: unconditional output ",
              tensor::shape_str(eps_uncond.shape()), " and conditional output ", tensor::shape_str(eps_cond.shape()),
              " differ in shape");
    Tensor eps = eps_uncond + (eps_cond - eps_uncond) * guidance_scale;  // ε_u + g (ε_c − ε_u)
    if (guidance_rescale > 0.0) eps = rescale_noise_cfg(eps, eps_cond, guidance_rescale);
    return eps;
}

Tensor sample(const Denoiser& model, Tensor latents, Scheduler& scheduler, const SampleOptions& o) {
    tensor::NoGradGuard no_grad;
    CXR_CHECK(model, "sample: no denoiser given");
    CXR_CHECK(latents.defined() && latents.dim() >= 2, "sample: latents must be [B, C, ...]");
    const int64_t B = latents.size(0);
    CXR_CHECK(std::isfinite(o.guidance_scale), "sample: guidance_scale must be finite, got ", o.guidance_scale);
    CXR_CHECK(o.guidance_rescale >= 0.0 && o.guidance_rescale <= 1.0, "sample: guidance_rescale must lie in [0, 1], got ",
              o.guidance_rescale);
    CXR_CHECK(o.generators.size() <= 1 || (int64_t)o.generators.size() == B, "sample: ", o.generators.size(),
              " generators for a batch of ", B, " (give none, one, or one per image)");
    const bool cfg = o.guidance_scale > 1.0;

    // The conditioning of each model call.
    Tensor context = o.cond;
    if (o.cond.defined())
        CXR_CHECK(o.cond.dim() >= 1 && o.cond.size(0) == B, "sample: cond has batch ",
                  o.cond.dim() ? o.cond.size(0) : 0, " but the latents have batch ", B);
    if (cfg) {
        CXR_CHECK(o.cond.defined() && o.uncond.defined(),
                  "sample: classifier-free guidance (guidance_scale > 1) needs both cond and uncond");
        tensor::Shape want = o.cond.shape();
        want[0] = o.uncond.size(0);
        CXR_CHECK(o.uncond.shape() == want && (o.uncond.size(0) == 1 || o.uncond.size(0) == B), "sample: uncond shape ",
                  tensor::shape_str(o.uncond.shape()), " does not match cond shape ", tensor::shape_str(o.cond.shape()),
                  " (batch 1 or ", B, ")");
        Tensor u = o.uncond.size(0) == B ? o.uncond : o.uncond.expand(o.cond.shape());
        context = tensor::cat({u, o.cond}, 0);  // [2B, ...]: unconditional half first, as diffusers
    }

    if (scheduler.kind() == SchedulerKind::ddim) scheduler.set_eta(o.eta);
    else CXR_CHECK(o.eta == 0.0, "sample: eta = ", o.eta, " is only meaningful for DDIMScheduler, not ", scheduler.name());
    scheduler.set_timesteps(o.num_inference_steps);
    if (scheduler.init_noise_sigma() != 1.0) latents = latents * scheduler.init_noise_sigma();

    const std::vector<int64_t> ts = scheduler.timesteps();
    const int64_t total = (int64_t)ts.size();
    for (int64_t i = 0; i < total; ++i) {
        const int64_t t = ts[(size_t)i];
        Tensor x = cfg ? tensor::cat({latents, latents}, 0) : latents;  // [2B or B, C, H, W]
        x = scheduler.scale_model_input(x, t);
        Tensor out = model(x, t, context);
        CXR_CHECK(out.defined() && out.shape() == x.shape(), "sample: the model returned shape ",
                  out.defined() ? tensor::shape_str(out.shape()) : std::string("(none)"), " for input ",
                  tensor::shape_str(x.shape()), " at t = ", t);
        Tensor eps = out;
        if (cfg) {
            auto halves = tensor::chunk(out, 2, 0);  // [B, ...] each: unconditional, conditional
            eps = classifier_free_guidance(halves[0], halves[1], o.guidance_scale, o.guidance_rescale);
        }
        Tensor noise;
        if (scheduler.needs_noise(t)) noise = draw_noise(latents, o.generators);
        latents = scheduler.step(eps, t, latents, noise).prev_sample;
        if (o.callback) o.callback(i + 1, total, t, latents);
    }
    return latents;
}

}  // namespace cxr::diffusion
