// The spatial transformer of Stable Diffusion's UNet (Rombach et al. 2022, "High-Resolution Image Synthesis with
// Latent Diffusion Models", §3.3), with diffusers' class names, arguments and state-dict keys so that a diffusers
// checkpoint loads strictly (DESIGN.md §4). Only the parts the Stable Diffusion UNets use are built: the
// continuous-input Transformer2DModel, norm_type "layer_norm", the "geglu" feed-forward, attention_type "default".
//
// GEGLU(dim_in, dim_out)   (Shazeer 2020, "GLU Variants Improve Transformer")   key: proj
//     [h, g] = proj(x) split in two halves along the last dim   (proj: Linear(dim_in, 2·dim_out))
//     y = h · gelu(g)          (gelu with the exact erf form, as torch's F.gelu default)
//
// FeedForward(dim, mult = 4)   keys: net.0.proj (the GEGLU), net.2 (net.1 is a Dropout without parameters)
//     inner = mult · dim;   y = net.2(dropout(GEGLU(dim, inner)(x)))        net.2: Linear(inner, dim)
//
// BasicTransformerBlock(dim, heads, dim_head, cross_attention_dim)   keys: norm1, attn1, norm2, attn2, norm3, ff
//   (LayerNorms with eps 1e-5 and elementwise affine; Attention of diffusion/blocks.h without biases on
//   to_q/to_k/to_v, with a bias on to_out.0)
//     x: [B, L, dim],  c: the text context [B, S, cross_attention_dim]
//     x = x + attn1(norm1(x))          self-attention (attention over c instead when only_cross_attention)
//     x = x + attn2(norm2(x), c)       cross-attention (present when cross_attention_dim > 0)
//     x = x + ff(norm3(x))
//   diffusers' double_self_attention (attn2 as a second self-attention) is not built: no UNet config reaches it.
//
// Transformer2DModel(heads, dim_head, in_channels, ...)   keys: norm, proj_in, transformer_blocks.<i>, proj_out
//     x: [B, C, H, W],  inner = heads · dim_head,  L = H·W tokens in row-major pixel order
//     h = norm(x)                        GroupNorm(norm_num_groups, C, eps = 1e-6, affine)
//     conv projection (SD 1.x):    h = proj_in(h) (1×1 Conv2d C -> inner), then [B, inner, H, W] -> [B, L, inner]
//     linear projection (SD 2.x):  [B, C, H, W] -> [B, L, C], then h = proj_in(h) (Linear C -> inner)
//     h = transformer_blocks.<i>(h, c) for each block
//     conv projection:    [B, L, inner] -> [B, inner, H, W], then proj_out (1×1 Conv2d inner -> C)
//     linear projection:  proj_out (Linear inner -> C), then [B, L, C] -> [B, C, H, W]
//     y = h + x                          (the residual around the whole transformer)
//   upcast_attention (SD 2.1-768) is a mixed-precision setting in diffusers (softmax in f32 when running in f16);
//   our attention accumulates in f32 or better in every dtype, so it changes nothing here.
//
// Initialisation: torch's defaults of every layer (the UNet is normally loaded from a checkpoint).
#pragma once

#include <memory>

#include "diffusion/blocks.h"

namespace cxr::diffusion {

class GEGLU : public Module {
public:
    GEGLU(int64_t dim_in, int64_t dim_out, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [..., dim_in] -> [..., dim_out]

    int64_t dim_in, dim_out;
    std::shared_ptr<nn::Linear> proj;  // Linear(dim_in, 2·dim_out)
};

class FeedForward : public Module {
public:
    FeedForward(int64_t dim, int64_t mult = 4, double dropout = 0.0, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // [..., dim] -> [..., dim]

    int64_t dim, inner_dim;
    std::shared_ptr<nn::ModuleList> net;  // "0": GEGLU, "1": Dropout, "2": Linear(inner, dim)
};

class BasicTransformerBlock : public Module {
public:
    struct Options {
        int64_t cross_attention_dim = 0;    // 0: no attn2 / norm2 (a self-attention-only block)
        bool only_cross_attention = false;  // attn1 attends over the context too
        double dropout = 0.0;
        double norm_eps = 1e-5;
    };
    BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head, const Options& options,
                          tensor::Generator* gen = nullptr);
    // x [B, L, dim], context [B, S, cross_attention_dim] (may be undefined only when no attention needs it)
    Tensor forward(const Tensor& x, const Tensor& context);
    Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

    int64_t dim;
    Options options;
    std::shared_ptr<nn::LayerNorm> norm1, norm2, norm3;  // norm2 null without attn2
    std::shared_ptr<Attention> attn1, attn2;              // attn2 null without cross attention
    std::shared_ptr<FeedForward> ff;
};

class Transformer2DModel : public Module {
public:
    struct Options {
        int64_t num_layers = 1;             // BasicTransformerBlocks
        int64_t norm_num_groups = 32;
        int64_t cross_attention_dim = 0;    // 0: self-attention only
        bool use_linear_projection = false;
        bool only_cross_attention = false;
        bool upcast_attention = false;      // accepted, no effect (see above)
        double dropout = 0.0;
    };
    Transformer2DModel(int64_t heads, int64_t dim_head, int64_t in_channels, const Options& options,
                       tensor::Generator* gen = nullptr);
    // x [B, C, H, W], context [B, S, cross_attention_dim] -> [B, C, H, W]
    Tensor forward(const Tensor& x, const Tensor& context);
    Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

    int64_t heads, dim_head, in_channels, inner_dim;
    Options options;
    std::shared_ptr<nn::GroupNorm> norm;
    std::shared_ptr<Module> proj_in, proj_out;  // nn::Conv2d (1×1) or nn::Linear (use_linear_projection)
    std::shared_ptr<nn::ModuleList> transformer_blocks;
};

}  // namespace cxr::diffusion
