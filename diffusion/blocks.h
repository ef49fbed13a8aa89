// The building blocks shared by the VAE (diffusion/vae.h) and the UNet (diffusion/unet.h), with diffusers' class
// names, constructor arguments and state-dict keys, so that a diffusers checkpoint loads strictly (DESIGN.md §4).
//
// ResnetBlock2D(in, out, temb_channels, groups, groups_out, eps, output_scale_factor)   keys: norm1, conv1,
//   time_emb_proj (when temb_channels > 0), norm2, conv2, conv_shortcut (1×1, when in != out):
//     h = conv1(silu(norm1(x)))                               [N, out, H, W]
//     h = h + time_emb_proj(silu(temb))[:, :, None, None]     (when a time embedding is given)
//     h = conv2(dropout(silu(norm2(h))))
//     y = (shortcut(x) + h) / output_scale_factor,  shortcut = conv_shortcut or the identity.
//   (diffusers' time_embedding_norm="default", non-linearity "swish" = SiLU; the up/down and scale-shift variants
//   are not used by Stable Diffusion or its VAE and are not built.)
//
// Attention(query_dim, cross_attention_dim, heads, dim_head, bias, out_bias, norm_num_groups, eps,
//   residual_connection, rescale_output_factor)   keys: group_norm (when norm_num_groups > 0), to_q, to_k, to_v,
//   to_out.0 (to_out.1 is a Dropout without parameters):
//     x: [B, L, query_dim] or [B, C, H, W] (then L = H·W, tokens in row-major pixel order)
//     h = group_norm(x) (over channels) when present;  q = to_q(h),  k = to_k(c),  v = to_v(c),  c = context or h
//     per head (inner = heads · dim_head):  o = softmax(q kᵀ / √dim_head) v     (tensor/ops/attention.h)
//     y = to_out.0(o) (+ x when residual_connection) / rescale_output_factor, back in x's layout.
//   This is diffusers' AttnProcessor2_0 path. Old VAE checkpoints name the projections query/key/value/proj_attn;
//   `rename_legacy_attention_keys` maps them as diffusers does when it loads them.
//
// Downsample2D(channels, use_conv, out_channels, padding): a 3×3 stride-2 convolution "conv" (or 2×2 average
//   pooling when use_conv is false). With padding 0 (the VAE) the input is first padded by one zero row at the
//   bottom and one zero column at the right (F.pad(x, (0, 1, 0, 1))), so the output is ⌈H/2⌉ for even H.
// Upsample2D(channels, use_conv, out_channels): nearest-neighbour ×2 (or to an explicit size, as the UNet's
//   up-blocks ask when a skip connection has an odd size), then a 3×3 convolution "conv" (padding 1) when use_conv.
//
// Timesteps(num_channels, flip_sin_to_cos, downscale_freq_shift) — diffusers' get_timestep_embedding:
//     half = C/2,  f_i = exp(−ln(10000) · i / (half − downscale_freq_shift)),  e = [sin(t f), cos(t f)]
//     (swapped to [cos, sin] when flip_sin_to_cos; a zero column appended when C is odd)   [N, C], f32
// TimestepEmbedding(in_channels, time_embed_dim): linear_1 → SiLU → linear_2.
//
// Initialisation: torch's defaults of every layer (the blocks are normally loaded from checkpoints).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "nn/layers.h"

namespace cxr::diffusion {

using nn::Module;
using tensor::Tensor;

class ResnetBlock2D : public Module {
public:
    struct Options {
        int64_t temb_channels = 512;      // 0: no time embedding (the VAE)
        int64_t groups = 32;
        int64_t groups_out = 0;           // 0: same as groups
        double eps = 1e-6;
        double output_scale_factor = 1.0;
        double dropout = 0.0;
    };
    ResnetBlock2D(int64_t in_channels, int64_t out_channels, const Options& options, tensor::Generator* gen = nullptr);
    // x [N, in, H, W], temb [N, temb_channels] (undefined when there is none) -> [N, out, H, W]
    Tensor forward(const Tensor& x, const Tensor& temb);
    Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

    int64_t in_channels, out_channels;
    Options options;
    std::shared_ptr<nn::GroupNorm> norm1, norm2;
    std::shared_ptr<nn::Conv2d> conv1, conv2, conv_shortcut;  // conv_shortcut null when in == out
    std::shared_ptr<nn::Linear> time_emb_proj;                // null when temb_channels == 0
    std::shared_ptr<nn::Dropout> dropout;
};

class Attention : public Module {
public:
    struct Options {
        int64_t cross_attention_dim = 0;  // 0: self-attention (keys and values from query_dim)
        int64_t heads = 8;
        int64_t dim_head = 64;
        bool bias = false;                // to_q / to_k / to_v
        bool out_bias = true;             // to_out.0
        int64_t norm_num_groups = 0;      // > 0: a GroupNorm "group_norm" over the input channels (the VAE)
        double eps = 1e-5;                // of that GroupNorm
        bool residual_connection = false;
        double rescale_output_factor = 1.0;
        double dropout = 0.0;
    };
    Attention(int64_t query_dim, const Options& options, tensor::Generator* gen = nullptr);
    // x [B, L, query_dim] or [B, query_dim, H, W]; context [B, S, cross_attention_dim] (undefined: self-attention)
    Tensor forward(const Tensor& x, const Tensor& context);
    Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

    int64_t query_dim;
    Options options;
    std::shared_ptr<nn::GroupNorm> group_norm;  // null unless norm_num_groups > 0
    std::shared_ptr<nn::Linear> to_q, to_k, to_v;
    std::shared_ptr<nn::ModuleList> to_out;     // "0": Linear(inner, query_dim), "1": Dropout
};

class Downsample2D : public Module {
public:
    Downsample2D(int64_t channels, bool use_conv, int64_t out_channels = 0, int64_t padding = 1,
                 tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, out, ⌈H/2⌉, ⌈W/2⌉] (even sizes)

    int64_t channels, out_channels, padding;
    bool use_conv;
    std::shared_ptr<nn::Conv2d> conv;  // null when use_conv is false
};

class Upsample2D : public Module {
public:
    Upsample2D(int64_t channels, bool use_conv, int64_t out_channels = 0, tensor::Generator* gen = nullptr);
    // [N, C, H, W] -> [N, out, 2H, 2W], or to output_size {H', W'} when given
    Tensor forward(const Tensor& x, std::optional<tensor::Size2> output_size);
    Tensor forward(const Tensor& x) override { return forward(x, std::nullopt); }

    int64_t channels, out_channels;
    bool use_conv;
    std::shared_ptr<nn::Conv2d> conv;  // null when use_conv is false
};

// The sinusoidal embedding of (possibly fractional) timesteps t [N] (any floating or integer dtype) -> [N, C] f32.
Tensor timestep_embedding(const Tensor& t, int64_t channels, bool flip_sin_to_cos, double downscale_freq_shift,
                          double max_period = 10000.0);

class Timesteps : public Module {
public:
    Timesteps(int64_t num_channels, bool flip_sin_to_cos, double downscale_freq_shift);
    Tensor forward(const Tensor& t) override;  // [N] -> [N, num_channels]
    std::string extra_repr() const override;

    int64_t num_channels;
    bool flip_sin_to_cos;
    double downscale_freq_shift;
};

class TimestepEmbedding : public Module {
public:
    TimestepEmbedding(int64_t in_channels, int64_t time_embed_dim, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [N, in] -> [N, time_embed_dim]

    std::shared_ptr<nn::Linear> linear_1, linear_2;
};

// Renames the legacy attention keys of old VAE checkpoints in place, as diffusers does on load:
//   <prefix>.query / key / value / proj_attn  ->  <prefix>.to_q / to_k / to_v / to_out.0
// for every key whose module path ends in "attentions.<i>". Returns how many keys were renamed.
int rename_legacy_attention_keys(nn::StateDict& state);

}  // namespace cxr::diffusion
