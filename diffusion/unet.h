// The conditional UNet of Stable Diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
// Diffusion Models"; the UNet of Ronneberger et al. 2015 with the ADM blocks of Dhariwal & Nichol 2021), written
// after diffusers' UNet2DConditionModel: the same config.json keys, the same module tree and state-dict keys, so a
// diffusers "unet/" checkpoint loads strictly (DESIGN.md §4), and the same forward semantics.
//
// Module tree (keys):                                              shapes for SD 1.5 at 512×512 (latents 64×64)
//   conv_in            Conv2d(in_channels, C0, k, padding (k−1)/2)      [B, 4, 64, 64] -> [B, 320, 64, 64]
//   time_proj          Timesteps(C0, flip_sin_to_cos, freq_shift) — sinusoidal, no parameters   t [B] -> [B, 320]
//   time_embedding     TimestepEmbedding: linear_1 (C0 -> T), SiLU, linear_2 (T -> T), T = 4·C0 (or
//                      time_embedding_dim)                                                        [B, 1280]
//   down_blocks.<i>    CrossAttnDownBlock2D | DownBlock2D, channels C_{i-1} -> C_i (C_{-1} = C0):
//                        resnets.<j> (ResnetBlock2D), attentions.<j> (Transformer2DModel, cross-attention blocks
//                        only), downsamplers.0 (Downsample2D: 3×3 conv, stride 2; every block but the last)
//   mid_block          UNetMidBlock2DCrossAttn: resnets.0, then (attentions.<j>, resnets.<j+1>) per layer
//   up_blocks.<i>      UpBlock2D | CrossAttnUpBlock2D on the reversed channel list, layers_per_block + 1 resnets
//                        each, upsamplers.0 (Upsample2D: nearest ×2 then a 3×3 conv; every block but the last)
//   conv_norm_out      GroupNorm(norm_num_groups, C0, norm_eps), then SiLU ("conv_act", no parameters)
//   conv_out           Conv2d(C0, out_channels, k, padding (k−1)/2)     [B, 320, 64, 64] -> [B, 4, 64, 64]
//
// Forward (diffusers' UNet2DConditionModel.forward without the optional extras):
//   sample [B, in, H, W], timestep (scalar, [1] or [B]; broadcast to [B]), encoder_hidden_states c [B, S, D]
//   x = 2·sample − 1 when center_input_sample
//   emb = time_embedding(time_proj(t))                  (the sinusoid in f32, then cast to the sample's dtype)
//   h = conv_in(x);  skips = [h]
//   down block:  for each layer: h = resnet(h, emb); h = attention(h, c) (cross-attention blocks); skips += [h]
//                then h = downsampler(h); skips += [h]
//   mid block:   h = resnets.0(h, emb); per layer: h = resnets.<j+1>(attentions.<j>(h, c), emb)
//   up block:    for each layer: h = cat([h, skips.pop()], channels); h = resnet(h, emb); h = attention(h, c)
//                then h = upsampler(h, size)
//   y = conv_out(silu(conv_norm_out(h)))                 [B, out, H, W]
// Skip channel counts, as diffusers builds them: in up block i (reversed channels R = reverse(C)), resnet j takes
//   (j == 0 ? the previous up block's output channels : R_i) + (j == last ? R_{min(i+1, n−1)} : R_i) channels.
// Upsample sizes: when H or W is not a multiple of 2^(number of upsamplers), each upsampler resizes to the spatial
//   size of the skip connection that will be concatenated next (diffusers' forward_upsample_size), so odd sizes
//   work (a 3×3 stride-2 conv with padding 1 maps H to ⌈H/2⌉); otherwise it doubles.
//
// Config (UNet2DConditionConfig, from a diffusers unet/config.json or a preset): the naming quirk of diffusers is
// kept: config.json's "attention_head_dim" is, for these blocks, the NUMBER OF HEADS per block (SD 1.x: 8 heads of
// 40/80/160 channels; SD 2.x: [5, 10, 20, 20] heads of 64 channels), and "num_attention_heads" must be absent or
// null (diffusers raises on it too). Each block's head size is its channel count / heads. Per-block settings
// (layers_per_block, attention heads, cross_attention_dim, transformer_layers_per_block, only_cross_attention) are
// a scalar for every block or a list with one entry per down block; up blocks use the reversed lists and the mid
// block the last entry. Unsupported features (class or addition embeddings, scale-shift time conditioning, Fourier
// time embeddings, other block types, dual cross-attention, GLIGEN, encoder hidden-state projections, ...) are
// rejected naming the key and value; keys that do not affect the blocks built here are ignored.
//
// Presets (parameter counts verified with diffusers 0.42.1, tests/fixtures/unet.json):
//   sd15()        runwayml/stable-diffusion-v1-5 (also SD 1.4, RoentGen): 859,520,964 parameters
//   sd21_base()   stabilityai/stable-diffusion-2-1-base (512×512): 865,910,724 parameters
//   sd21()        stabilityai/stable-diffusion-2-1 (768×768, v-prediction): 865,910,724 parameters
//   tiny()        a 2-level test/demo model (block_out_channels {32, 64}, 1 layer, 8 groups, 4 heads, context 32):
//                 792,964 parameters
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/blocks.h"
#include "diffusion/transformer_2d.h"

namespace cxr::diffusion {

// A default-constructed config holds diffusers' UNet2DConditionModel() defaults (SD 1.x blocks with
// cross_attention_dim 1280); from_json starts from it and overrides the keys present.
struct UNet2DConditionConfig {
    std::array<int64_t, 2> sample_size{64, 64};  // the training latent size {H, W} (informational)
    int64_t in_channels = 4;
    int64_t out_channels = 4;
    bool center_input_sample = false;
    bool flip_sin_to_cos = true;
    double freq_shift = 0.0;
    // "CrossAttnDownBlock2D" | "DownBlock2D" per level
    std::vector<std::string> down_block_types{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                              "DownBlock2D"};
    std::string mid_block_type = "UNetMidBlock2DCrossAttn";  // or "" (no mid block)
    // "CrossAttnUpBlock2D" | "UpBlock2D" per level, deepest first
    std::vector<std::string> up_block_types{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                            "CrossAttnUpBlock2D"};
    std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
    // Per-block lists: one entry for every block, or one entry per down block.
    std::vector<int64_t> layers_per_block{2};
    std::vector<int64_t> num_attention_heads{8};  // heads (config.json's "attention_head_dim", see above)
    std::vector<int64_t> cross_attention_dim{1280};
    std::vector<int64_t> transformer_layers_per_block{1};
    std::vector<bool> only_cross_attention{false};
    int64_t downsample_padding = 1;
    double mid_block_scale_factor = 1.0;
    double dropout = 0.0;
    int64_t norm_num_groups = 32;
    double norm_eps = 1e-5;
    bool use_linear_projection = false;
    bool upcast_attention = false;   // accepted; no effect on our f32-accumulating attention
    int64_t time_embedding_dim = 0;  // 0: 4 · block_out_channels[0]
    int64_t conv_in_kernel = 3;
    int64_t conv_out_kernel = 3;

    static UNet2DConditionConfig sd15();
    static UNet2DConditionConfig sd21_base();
    static UNet2DConditionConfig sd21();
    static UNet2DConditionConfig tiny();
    // A diffusers unet/config.json as text; `source` names it in errors (e.g. the file path).
    static UNet2DConditionConfig from_json(const std::string& json_text, const std::string& source = "config");
    static UNet2DConditionConfig from_json_file(const std::string& path);

    // Throws cxr::Error naming the first problem (list lengths, block types, divisibility, ...).
    void validate() const;

    size_t num_blocks() const { return block_out_channels.size(); }
    int64_t time_embed_dim() const { return time_embedding_dim > 0 ? time_embedding_dim : 4 * block_out_channels.at(0); }
    // The per-block value of down block i (lists of one entry apply to every block).
    int64_t layers(size_t i) const;
    int64_t heads(size_t i) const;
    int64_t cross_dim(size_t i) const;
    int64_t transformer_layers(size_t i) const;
    bool only_cross(size_t i) const;
};

// The settings one UNet block needs (filled by UNet2DConditionModel from the config).
struct UNetBlockOptions {
    int64_t num_layers = 1;          // resnets (down / mid attention layers) or resnets of an up block
    int64_t temb_channels = 1280;
    int64_t groups = 32;
    double eps = 1e-5;
    double dropout = 0.0;
    double output_scale_factor = 1.0;
    // cross-attention blocks
    int64_t heads = 8;
    int64_t cross_attention_dim = 768;
    int64_t transformer_layers = 1;
    bool use_linear_projection = false;
    bool only_cross_attention = false;
    bool upcast_attention = false;
    // sampling
    bool add_sample = true;          // a downsampler / upsampler at the end
    int64_t downsample_padding = 1;
};

// A down block: runs its layers on h and appends each layer's output (and the downsampled output) to `skips`.
class UNetDownBlock : public Module {
public:
    using Module::Module;
    // h [B, in, H, W] -> [B, out, H', W'] (H' = ⌈H/2⌉ with a downsampler)
    virtual Tensor forward(const Tensor& h, const Tensor& temb, const Tensor& context, std::vector<Tensor>& skips) = 0;
    Tensor forward(const Tensor& x) override;  // throws: a down block needs the time embedding and the context

    int64_t in_channels = 0, out_channels = 0;
    std::shared_ptr<nn::ModuleList> resnets;
    std::shared_ptr<nn::ModuleList> downsamplers;  // null in the last block
};

// An up block: pops one skip connection per resnet from the back of `skips`.
class UNetUpBlock : public Module {
public:
    using Module::Module;
    // h [B, prev, H, W] -> [B, out, 2H, 2W] (or upsample_size; no resize in the last block)
    virtual Tensor forward(const Tensor& h, std::vector<Tensor>& skips, const Tensor& temb, const Tensor& context,
                           std::optional<tensor::Size2> upsample_size) = 0;
    Tensor forward(const Tensor& x) override;  // throws: an up block needs skips, time embedding and context
    size_t num_resnets() const { return resnets->size(); }

    int64_t out_channels = 0;
    std::shared_ptr<nn::ModuleList> resnets;
    std::shared_ptr<nn::ModuleList> upsamplers;  // null in the last block
};

class CrossAttnDownBlock2D : public UNetDownBlock {
public:
    CrossAttnDownBlock2D(int64_t in_channels, int64_t out_channels, const UNetBlockOptions& options,
                         tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& h, const Tensor& temb, const Tensor& context, std::vector<Tensor>& skips) override;
    using UNetDownBlock::forward;

    std::shared_ptr<nn::ModuleList> attentions;  // Transformer2DModel per resnet
};

class DownBlock2D : public UNetDownBlock {
public:
    DownBlock2D(int64_t in_channels, int64_t out_channels, const UNetBlockOptions& options,
                tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& h, const Tensor& temb, const Tensor& context, std::vector<Tensor>& skips) override;
    using UNetDownBlock::forward;
};

class UNetMidBlock2DCrossAttn : public Module {
public:
    // options.num_layers counts the attention layers (diffusers' num_layers = 1: resnet, attention, resnet)
    UNetMidBlock2DCrossAttn(int64_t channels, const UNetBlockOptions& options, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& h, const Tensor& temb, const Tensor& context);  // [B, C, H, W] -> same
    Tensor forward(const Tensor& x) override;  // throws: needs the time embedding and the context

    int64_t channels;
    std::shared_ptr<nn::ModuleList> resnets;     // num_layers + 1
    std::shared_ptr<nn::ModuleList> attentions;  // num_layers
};

class CrossAttnUpBlock2D : public UNetUpBlock {
public:
    // in_channels: the skip channels of the block's last resnet; prev_output_channels: the channels of h.
    CrossAttnUpBlock2D(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
                       const UNetBlockOptions& options, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& h, std::vector<Tensor>& skips, const Tensor& temb, const Tensor& context,
                   std::optional<tensor::Size2> upsample_size) override;
    using UNetUpBlock::forward;

    std::shared_ptr<nn::ModuleList> attentions;
};

class UpBlock2D : public UNetUpBlock {
public:
    UpBlock2D(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
              const UNetBlockOptions& options, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& h, std::vector<Tensor>& skips, const Tensor& temb, const Tensor& context,
                   std::optional<tensor::Size2> upsample_size) override;
    using UNetUpBlock::forward;
};

class UNet2DConditionModel : public Module {
public:
    explicit UNet2DConditionModel(const UNet2DConditionConfig& config, tensor::Generator* gen = nullptr);

    // sample [B, in_channels, H, W] (any H, W >= 1); timestep: a 0-d, [1] or [B] tensor of any numeric dtype;
    // encoder_hidden_states [B, S, cross_attention_dim] -> [B, out_channels, H, W]
    Tensor forward(const Tensor& sample, const Tensor& timestep, const Tensor& encoder_hidden_states);
    // A scalar timestep for the whole batch (diffusers: a Python number; fractional values are kept).
    Tensor forward(const Tensor& sample, double timestep, const Tensor& encoder_hidden_states);
    Tensor forward(const Tensor& x) override;  // throws: the UNet needs a timestep and a context

    // 2^(number of upsamplers): H and W that are multiples of it need no upsample-size forwarding.
    int64_t default_overall_up_factor() const;

    UNet2DConditionConfig config;
    std::shared_ptr<nn::Conv2d> conv_in, conv_out;
    std::shared_ptr<Timesteps> time_proj;
    std::shared_ptr<TimestepEmbedding> time_embedding;
    std::shared_ptr<nn::ModuleList> down_blocks, up_blocks;
    std::shared_ptr<UNetMidBlock2DCrossAttn> mid_block;  // null when mid_block_type is ""
    std::shared_ptr<nn::GroupNorm> conv_norm_out;
    std::shared_ptr<nn::SiLU> conv_act;

private:
    bool needs_context_ = false;
};

}  // namespace cxr::diffusion
