// The Stable Diffusion VAE: diffusers' AutoencoderKL (Rombach et al., "High-Resolution Image Synthesis with Latent
// Diffusion Models", CVPR 2022, §3 and App. G; the KL-regularised autoencoder of its "LDM-KL-8" models), with
// diffusers' config keys, module names and state-dict keys, so that a diffusers `vae/` folder loads strictly.
//
// Architecture (C_i = block_out_channels[i], n = number of blocks, G = norm_num_groups, every GroupNorm eps 1e-6,
// every ResnetBlock2D without time embedding, output_scale_factor 1 — diffusion/blocks.h for the blocks):
//   Encoder  x [N, in, H, W] ->
//     conv_in            3×3, in -> C_0
//     down_blocks.i      DownEncoderBlock2D: resnets.0..L−1 (C_{i−1} -> C_i, then C_i -> C_i; L = layers_per_block),
//                        downsamplers.0 = Downsample2D(C_i, padding 0: zero pad right/bottom, 3×3 stride 2) except on
//                        the last block
//     mid_block          UNetMidBlock2D(C_{n−1}): resnets.0, attentions.0, resnets.1
//     conv_norm_out      GroupNorm(G, C_{n−1}) -> SiLU -> conv_out 3×3 -> 2·latent channels (mean and logvar)
//   quant_conv          1×1, 2·latent -> 2·latent (when use_quant_conv)          moments [N, 2·latent, H/f, W/f]
//   posterior           DiagonalGaussian(moments), f = 2^(n−1) (8 for SD)
//   post_quant_conv     1×1, latent -> latent (when use_post_quant_conv)
//   Decoder  z [N, latent, h, w] ->
//     conv_in            3×3, latent -> C_{n−1}
//     mid_block          as the encoder's
//     up_blocks.i        UpDecoderBlock2D over the reversed channels R = (C_{n−1}, ..., C_0): resnets.0..L
//                        (L + 1 of them: R_{i−1} -> R_i, then R_i -> R_i; R_{−1} = R_0), upsamplers.0 =
//                        Upsample2D(R_i, nearest ×2 then 3×3 conv) except on the last block
//     conv_norm_out      GroupNorm(G, C_0) -> SiLU -> conv_out 3×3 -> out channels          [N, out, h·f, w·f]
// UNetMidBlock2D (the VAE's): h = resnets.0(x); h = attentions.0(h); h = resnets.1(h), where the attention is
//   diffusers' Attention with one head of dimension C (attention_head_dim = C), q/k/v biases, a GroupNorm(G, C,
//   eps 1e-6) "group_norm" in front, residual connection and rescale factor 1:
//     y = x + to_out.0(softmax(q kᵀ / √C) v),  q, k, v = to_q/k/v(group_norm(x)) over the H·W pixels as tokens.
//   With mid_block_add_attention = false the attention is skipped (no attentions.* keys).
//
// Posterior (diffusers' DiagonalGaussianDistribution): mean, logvar = chunk(moments, 2, dim 1),
//   logvar = clamp(logvar, −30, 20),  std = exp(logvar / 2),  var = exp(logvar);
//   sample = mean + std · ε (ε ~ N(0, 1), from a tensor::Generator or given);  mode() = mean;
//   kl() = ½ Σ_{c,h,w} (mean² + var − 1 − logvar)                                  [N]   (KL to N(0, I))
//   kl(o) = ½ Σ ((mean − o.mean)² / o.var + var / o.var − 1 − logvar + o.logvar)    [N]
//   nll(s) = ½ Σ (ln 2π + logvar + (s − mean)² / var)                               [N]
// AutoencoderKL::forward(x, sample_posterior) = decode(sample or mode of encode(x)), as diffusers.
//
// Latents as the Stable Diffusion pipelines and training scripts use them (s = scaling_factor, b = shift_factor
// or 0 when null):  latents = (z − b) · s  with z the posterior's sample (training) or mode;
//   images = decode(latents / s + b).  Images are in [−1, 1] (normalize_images maps [0, 1] there, as diffusers'
//   VaeImageProcessor: 2x − 1; denormalize_images back: clamp(x/2 + 1/2, 0, 1)).
//
// Memory: encode_batch_limit / decode_batch_limit > 0 run the encoder / decoder on at most that many images at a
// time and concatenate (diffusers' use_slicing with a limit of 1); the result is the same. Tiled decoding is not
// provided.
//
// Spatial sizes: H and W must be multiples of f (diffusers accepts other sizes but cannot give them back: an odd
// size loses a row on the way down), so encode -> decode keeps the image size.
//
// Old checkpoints name the mid-block attention projections query/key/value/proj_attn: load_weights() renames them
// (rename_legacy_attention_keys of diffusion/blocks.h) before the strict load.
//
// Initialisation: torch's defaults of every layer (diffusers adds none); normally weights are loaded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diffusion/blocks.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::diffusion {

// diffusers' AutoencoderKL config (vae/config.json). The defaults are diffusers' constructor defaults.
struct AutoencoderKLConfig {
    int64_t in_channels = 3;
    int64_t out_channels = 3;
    std::vector<std::string> down_block_types{"DownEncoderBlock2D"};  // only "DownEncoderBlock2D"
    std::vector<std::string> up_block_types{"UpDecoderBlock2D"};      // only "UpDecoderBlock2D"
    std::vector<int64_t> block_out_channels{64};
    int64_t layers_per_block = 1;
    std::string act_fn = "silu";  // "silu" (or its other name "swish")
    int64_t latent_channels = 4;
    int64_t norm_num_groups = 32;
    int64_t sample_size = 32;  // metadata (diffusers' tiling size); a [h, w] list in the JSON keeps h
    double scaling_factor = 0.18215;
    std::optional<double> shift_factor;  // null in SD 1.x/2.x
    bool force_upcast = true;            // metadata: run the VAE in f32 under autocast
    bool use_quant_conv = true;
    bool use_post_quant_conv = true;
    bool mid_block_add_attention = true;

    // The VAE of Stable Diffusion 1.x and 2.x: (128, 256, 512, 512), 2 layers per block, 4 latent channels, 32
    // groups, scaling 0.18215, sample_size 512 (83,653,863 parameters).
    static AutoencoderKLConfig sd();
    // A tiny test model: (8, 16), 1 layer per block, 4 groups, 4 latent channels, sample_size 16 (43,711 parameters).
    static AutoencoderKLConfig tiny();

    // From a diffusers config.json dictionary: unknown keys are ignored; a missing or null key keeps the default;
    // a wrong type or an unsupported value throws cxr::Error naming the key. "_class_name", when present, must be
    // "AutoencoderKL"; "latents_mean"/"latents_std" must be null (per-channel latent statistics are not supported).
    static AutoencoderKLConfig from_json(const nlohmann::json& j);
    // The config as diffusers writes config.json ("_class_name": "AutoencoderKL" and every key above).
    nlohmann::json to_json() const;

    // Checks every field (throws cxr::Error naming the key).
    void validate() const;
    // f = 2^(n−1): the image-to-latent size ratio.
    int64_t downscale_factor() const;
};

class DiagonalGaussian {
public:
    // moments [N, 2·C, h, w]: the first C channels are the mean, the others the log-variance.
    explicit DiagonalGaussian(const Tensor& moments);

    Tensor sample(tensor::Generator* gen = nullptr) const;  // mean + std · ε, ε drawn from gen (default generator)
    Tensor sample(const Tensor& noise) const;                // mean + std · noise; noise [N, C, h, w]
    Tensor mode() const { return mean; }
    Tensor kl() const;                                 // [N]
    Tensor kl(const DiagonalGaussian& other) const;    // [N]
    Tensor nll(const Tensor& sample) const;            // [N]

    Tensor moments;                 // [N, 2C, h, w]
    Tensor mean, logvar, std, var;  // [N, C, h, w] each (logvar clamped to [−30, 20])
};

// DownEncoderBlock2D(in, out, num_layers, groups, add_downsample): resnets.j, downsamplers.0.
class DownEncoderBlock2D : public Module {
public:
    DownEncoderBlock2D(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups,
                       bool add_downsample, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, H/2, W/2] (H, W without downsampling)

    std::shared_ptr<nn::ModuleList> resnets;       // ResnetBlock2D
    std::shared_ptr<nn::ModuleList> downsamplers;  // one Downsample2D, or null
};

// UpDecoderBlock2D(in, out, num_layers, groups, add_upsample): resnets.j, upsamplers.0.
class UpDecoderBlock2D : public Module {
public:
    UpDecoderBlock2D(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups,
                     bool add_upsample, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, 2H, 2W] (H, W without upsampling)

    std::shared_ptr<nn::ModuleList> resnets;     // ResnetBlock2D
    std::shared_ptr<nn::ModuleList> upsamplers;  // one Upsample2D, or null
};

// The VAE's UNetMidBlock2D (one attention layer between two resnets; no time embedding).
class UNetMidBlock2D : public Module {
public:
    UNetMidBlock2D(int64_t channels, int64_t groups, bool add_attention, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> same

    int64_t channels;
    bool add_attention;
    std::shared_ptr<nn::ModuleList> attentions;  // one Attention, or empty
    std::shared_ptr<nn::ModuleList> resnets;     // two ResnetBlock2D
};

class Encoder : public Module {
public:
    Encoder(const AutoencoderKLConfig& config, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 2·latent, H/f, W/f]

    std::shared_ptr<nn::Conv2d> conv_in, conv_out;
    std::shared_ptr<nn::ModuleList> down_blocks;  // DownEncoderBlock2D
    std::shared_ptr<UNetMidBlock2D> mid_block;
    std::shared_ptr<nn::GroupNorm> conv_norm_out;
    std::shared_ptr<nn::SiLU> conv_act;
};

class Decoder : public Module {
public:
    Decoder(const AutoencoderKLConfig& config, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& z) override;  // [N, latent, h, w] -> [N, out, h·f, w·f]

    std::shared_ptr<nn::Conv2d> conv_in, conv_out;
    std::shared_ptr<nn::ModuleList> up_blocks;  // UpDecoderBlock2D
    std::shared_ptr<UNetMidBlock2D> mid_block;
    std::shared_ptr<nn::GroupNorm> conv_norm_out;
    std::shared_ptr<nn::SiLU> conv_act;
};

class AutoencoderKL : public Module {
public:
    explicit AutoencoderKL(const AutoencoderKLConfig& config, tensor::Generator* gen = nullptr);

    // x [N, in, H, W] (H, W multiples of f) -> the posterior over latents [N, latent, H/f, W/f]
    DiagonalGaussian encode(const Tensor& x);
    // z [N, latent, h, w] -> images [N, out, h·f, w·f]
    Tensor decode(const Tensor& z);
    // decode(encode(x).mode())
    Tensor forward(const Tensor& x) override;
    // decode(sample or mode of encode(x)); the sample draws its noise from gen (the default generator when null)
    Tensor forward(const Tensor& x, bool sample_posterior, tensor::Generator* gen = nullptr);
    // decode(encode(x).sample(noise)) — the sampled forward with the caller's noise [N, latent, H/f, W/f]
    Tensor forward_with_noise(const Tensor& x, const Tensor& noise);

    // ---- latents as the SD pipelines use them (s = scaling_factor, b = shift_factor or 0) ----
    Tensor scale_latents(const Tensor& z) const;    // (z − b) · s
    Tensor unscale_latents(const Tensor& latents) const;  // latents / s + b
    // images [N, in, H, W] in [−1, 1] -> latents (z = the posterior's mode, or a sample drawn from gen)
    Tensor images_to_latents(const Tensor& images, bool sample = false, tensor::Generator* gen = nullptr);
    // latents [N, latent, h, w] -> images in (about) [−1, 1]: decode(latents / s + b)
    Tensor latents_to_images(const Tensor& latents);

    // Loads a diffusers state dict: legacy attention names (query/key/value/proj_attn) are renamed first; strict
    // unless options say otherwise (the error lists every missing, unexpected and mis-shaped key).
    nn::LoadReport load_weights(nn::StateDict state, const nn::LoadOptions& options = {});

    AutoencoderKLConfig config;
    std::shared_ptr<Encoder> encoder;
    std::shared_ptr<Decoder> decoder;
    std::shared_ptr<nn::Conv2d> quant_conv;       // null unless use_quant_conv
    std::shared_ptr<nn::Conv2d> post_quant_conv;  // null unless use_post_quant_conv

    // > 0: encode / decode at most this many images at a time (bounds activation memory; same result).
    int64_t encode_batch_limit = 0;
    int64_t decode_batch_limit = 0;
};

// [0, 1] -> [−1, 1]: 2x − 1 (diffusers' VaeImageProcessor.normalize).
Tensor normalize_images(const Tensor& images01);
// [−1, 1] -> [0, 1]: clamp(x/2 + 1/2, 0, 1) (VaeImageProcessor.denormalize).
Tensor denormalize_images(const Tensor& images);

}  // namespace cxr::diffusion
