// The VAE/UNet building blocks (formulas and keys in diffusion/blocks.h; diffusers' ResnetBlock2D, Attention with
// AttnProcessor2_0, Downsample2D, Upsample2D, Timesteps and TimestepEmbedding).
#include "diffusion/blocks.h"

#include <cmath>
#include <vector>

#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace ts = cxr::tensor;

// ---------------------------------------------------------------------------------------------------------------
ResnetBlock2D::ResnetBlock2D(int64_t in, int64_t out, const Options& o, tensor::Generator* gen)
    : Module("ResnetBlock2D"), in_channels(in), out_channels(out), options(o) {
    const int64_t groups_out = o.groups_out > 0 ? o.groups_out : o.groups;
    CXR_CHECK(in > 0 && out > 0, "ResnetBlock2D: channel counts must be positive (got ", in, " -> ", out, ")");
    CXR_CHECK(in % o.groups == 0, "ResnetBlock2D: ", in, " input channels are not divisible into ", o.groups,
              " groups");
    CXR_CHECK(out % groups_out == 0, "ResnetBlock2D: ", out, " output channels are not divisible into ", groups_out,
              " groups");
    norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(o.groups, in, o.eps, true));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, 1, 1, 1, 1, true, gen));
    if (o.temb_channels > 0)
        time_emb_proj = register_module("time_emb_proj", std::make_shared<nn::Linear>(o.temb_channels, out, true, gen));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups_out, out, o.eps, true));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, 1, 1, 1, 1, true, gen));
    if (in != out)
        conv_shortcut = register_module("conv_shortcut", std::make_shared<nn::Conv2d>(in, out, 1, 1, 0, 1, 1, true, gen));
}

Tensor ResnetBlock2D::forward(const Tensor& x, const Tensor& temb) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ResnetBlock2D: expected [N, ", in_channels,
              ", H, W], got ", ts::shape_str(x.shape()));
    Tensor h = conv1->forward(ts::silu(norm1->forward(x)));  // [N, out, H, W]
    if (temb.defined()) {
        CXR_CHECK(time_emb_proj != nullptr, "ResnetBlock2D: a time embedding was given to a block built without one");
        CXR_CHECK(temb.dim() == 2 && temb.size(0) == x.size(0), "ResnetBlock2D: time embedding must be [",
                  x.size(0), ", ", options.temb_channels, "], got ", ts::shape_str(temb.shape()));
        Tensor t = time_emb_proj->forward(ts::silu(temb));  // [N, out]
        h = ts::add(h, ts::reshape(t, {t.size(0), t.size(1), 1, 1}));
    }
    h = conv2->forward(dropout->forward(ts::silu(norm2->forward(h))));
    Tensor shortcut = conv_shortcut ? conv_shortcut->forward(x) : x;
    Tensor y = ts::add(shortcut, h);
    if (options.output_scale_factor != 1.0) y = ts::div(y, options.output_scale_factor);
    return y;
}

// ---------------------------------------------------------------------------------------------------------------
Attention::Attention(int64_t qdim, const Options& o, tensor::Generator* gen)
    : Module("Attention"), query_dim(qdim), options(o) {
    CXR_CHECK(qdim > 0 && o.heads > 0 && o.dim_head > 0, "Attention: query_dim, heads and dim_head must be positive");
    const int64_t inner = o.heads * o.dim_head;
    const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : qdim;
    if (o.norm_num_groups > 0)
        group_norm = register_module("group_norm", std::make_shared<nn::GroupNorm>(o.norm_num_groups, qdim, o.eps, true));
    to_q = register_module("to_q", std::make_shared<nn::Linear>(qdim, inner, o.bias, gen));
    to_k = register_module("to_k", std::make_shared<nn::Linear>(kv_dim, inner, o.bias, gen));
    to_v = register_module("to_v", std::make_shared<nn::Linear>(kv_dim, inner, o.bias, gen));
    to_out = register_module("to_out", std::make_shared<nn::ModuleList>());
    to_out->push_back(std::make_shared<nn::Linear>(inner, qdim, o.out_bias, gen));
    to_out->push_back(std::make_shared<nn::Dropout>(o.dropout));
}

Tensor Attention::forward(const Tensor& x, const Tensor& context) {
    const bool spatial = x.dim() == 4;
    CXR_CHECK((x.dim() == 3 && x.size(2) == query_dim) || (spatial && x.size(1) == query_dim),
              "Attention: expected [B, L, ", query_dim, "] or [B, ", query_dim, ", H, W], got ", ts::shape_str(x.shape()));
    const int64_t B = x.size(0);
    Tensor h = x;
    if (group_norm) {
        // GroupNorm normalises over channels: [B, C, L] (or [B, C, H, W]) is its layout.
        Tensor channels_first = spatial ? x : ts::transpose(x, 1, 2);
        h = group_norm->forward(channels_first);
        if (!spatial) h = ts::transpose(h, 1, 2);
    }
    if (spatial) h = ts::transpose(ts::reshape(h, {B, query_dim, -1}), 1, 2);  // [B, L, C]
    const int64_t L = h.size(1);
    Tensor c = h;
    if (context.defined()) {
        const int64_t kv_dim = options.cross_attention_dim > 0 ? options.cross_attention_dim : query_dim;
        CXR_CHECK(context.dim() == 3 && context.size(0) == B && context.size(2) == kv_dim,
                  "Attention: context must be [", B, ", S, ", kv_dim, "], got ", ts::shape_str(context.shape()));
        c = context;
    }
    const int64_t S = c.size(1), H = options.heads, D = options.dim_head;
    auto heads = [&](const Tensor& t, int64_t len) {  // [B, len, H·D] -> [B, H, len, D]
        return ts::transpose(ts::reshape(t, {B, len, H, D}), 1, 2);
    };
    Tensor q = heads(to_q->forward(h), L);
    Tensor k = heads(to_k->forward(c), S);
    Tensor v = heads(to_v->forward(c), S);
    Tensor o = ts::scaled_dot_product_attention(q, k, v);      // [B, H, L, D]
    o = ts::reshape(ts::transpose(o, 1, 2), {B, L, H * D});     // [B, L, inner]
    o = to_out->operator[](0)->forward(o);
    o = to_out->operator[](1)->forward(o);                      // [B, L, query_dim]
    if (spatial) o = ts::reshape(ts::transpose(o, 1, 2), x.shape());
    if (options.residual_connection) o = ts::add(o, x);
    if (options.rescale_output_factor != 1.0) o = ts::div(o, options.rescale_output_factor);
    return o;
}

// ---------------------------------------------------------------------------------------------------------------
Downsample2D::Downsample2D(int64_t ch, bool conv_on, int64_t out, int64_t pad, tensor::Generator* gen)
    : Module("Downsample2D"), channels(ch), out_channels(out > 0 ? out : ch), padding(pad), use_conv(conv_on) {
    CXR_CHECK(use_conv || out_channels == channels, "Downsample2D: average pooling cannot change the channel count");
    if (use_conv)
        conv = register_module("conv", std::make_shared<nn::Conv2d>(ch, out_channels, 3, 2, pad, 1, 1, true, gen));
}

Tensor Downsample2D::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == channels, "Downsample2D: expected [N, ", channels, ", H, W], got ",
              ts::shape_str(x.shape()));
    if (!use_conv) return ts::avg_pool2d(x, {2, 2}, {2, 2});
    Tensor h = padding == 0 ? ts::pad(x, {0, 1, 0, 1}) : x;  // one zero column right, one zero row below
    return conv->forward(h);
}

Upsample2D::Upsample2D(int64_t ch, bool conv_on, int64_t out, tensor::Generator* gen)
    : Module("Upsample2D"), channels(ch), out_channels(out > 0 ? out : ch), use_conv(conv_on) {
    CXR_CHECK(use_conv || out_channels == channels, "Upsample2D: without a convolution the channel count cannot change");
    if (use_conv)
        conv = register_module("conv", std::make_shared<nn::Conv2d>(ch, out_channels, 3, 1, 1, 1, 1, true, gen));
}

Tensor Upsample2D::forward(const Tensor& x, std::optional<tensor::Size2> output_size) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == channels, "Upsample2D: expected [N, ", channels, ", H, W], got ",
              ts::shape_str(x.shape()));
    Tensor h = output_size ? ts::upsample_nearest2d(x, *output_size) : ts::upsample_nearest2d(x, 2.0);
    return use_conv ? conv->forward(h) : h;
}

// ---------------------------------------------------------------------------------------------------------------
Tensor timestep_embedding(const Tensor& t, int64_t channels, bool flip_sin_to_cos, double downscale_freq_shift,
                          double max_period) {
    CXR_CHECK(t.dim() == 1, "timestep_embedding: timesteps must be one-dimensional [N], got ", ts::shape_str(t.shape()));
    CXR_CHECK(channels >= 2, "timestep_embedding: need at least 2 channels, got ", channels);
    const int64_t half = channels / 2;
    CXR_CHECK(half - downscale_freq_shift != 0.0, "timestep_embedding: half the channels minus the frequency shift is 0");
    // f_i = exp(−ln(max_period) · i / (half − shift)), computed in f32 as diffusers does.
    Tensor i = ts::arange(0.0, (double)half, 1.0, ts::DType::f32);
    // (the product first, then the quotient, each rounded to f32, in diffusers' order so the frequencies agree
    // bit for bit: the embedding of t ≈ 1000 is sensitive to the last bit of f)
    Tensor freqs = ts::exp(ts::div(ts::mul(i, -std::log(max_period)), (double)half - downscale_freq_shift));  // [half]
    Tensor tf = ts::cast(t, ts::DType::f32);
    if (tf.device() != freqs.device()) freqs = ts::to_device(freqs, tf.device());
    Tensor args = ts::mul(ts::unsqueeze(tf, 1), ts::unsqueeze(freqs, 0));  // [N, half]
    Tensor s = ts::sin(args), c = ts::cos(args);
    Tensor emb = flip_sin_to_cos ? ts::cat({c, s}, 1) : ts::cat({s, c}, 1);  // [N, 2·half]
    if (channels % 2 == 1) emb = ts::pad(emb, {0, 1});
    return emb;
}

Timesteps::Timesteps(int64_t n, bool flip, double shift)
    : Module("Timesteps"), num_channels(n), flip_sin_to_cos(flip), downscale_freq_shift(shift) {}

Tensor Timesteps::forward(const Tensor& t) {
    return timestep_embedding(t, num_channels, flip_sin_to_cos, downscale_freq_shift);
}

std::string Timesteps::extra_repr() const {
    return "num_channels=" + std::to_string(num_channels) + ", flip_sin_to_cos=" + (flip_sin_to_cos ? "True" : "False") +
           ", downscale_freq_shift=" + std::to_string(downscale_freq_shift);
}

TimestepEmbedding::TimestepEmbedding(int64_t in, int64_t dim, tensor::Generator* gen) : Module("TimestepEmbedding") {
    linear_1 = register_module("linear_1", std::make_shared<nn::Linear>(in, dim, true, gen));
    linear_2 = register_module("linear_2", std::make_shared<nn::Linear>(dim, dim, true, gen));
}

Tensor TimestepEmbedding::forward(const Tensor& x) { return linear_2->forward(ts::silu(linear_1->forward(x))); }

// ---------------------------------------------------------------------------------------------------------------
int rename_legacy_attention_keys(nn::StateDict& state) {
    static const std::vector<std::pair<std::string, std::string>> renames = {
        {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
    // A key "<...>attentions.<i>.<old>.<weight|bias>" is renamed; everything else is left alone.
    auto in_attention = [](const std::string& path) {  // path = the module path before ".<old>"
        const size_t dot = path.rfind('.');
        if (dot == std::string::npos) return false;
        const std::string last = path.substr(dot + 1), before = path.substr(0, dot);
        if (last.empty() || last.find_first_not_of("0123456789") != std::string::npos) return false;
        const std::string tag = "attentions";
        return before.size() >= tag.size() && before.compare(before.size() - tag.size(), tag.size(), tag) == 0;
    };
    int renamed = 0;
    nn::StateDict out;
    for (auto& [key, value] : state) {
        std::string new_key = key;
        for (const auto& [old_name, new_name] : renames) {
            for (const char* leaf : {".weight", ".bias"}) {
                const std::string suffix = "." + old_name + leaf;
                if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                    in_attention(key.substr(0, key.size() - suffix.size()))) {
                    new_key = key.substr(0, key.size() - suffix.size()) + "." + new_name + leaf;
                }
            }
        }
        if (new_key != key) ++renamed;
        CXR_CHECK(out.count(new_key) == 0, "rename_legacy_attention_keys: the checkpoint has both the legacy and the ",
                  "new name of ", new_key);
        out[new_key] = value;
    }
    state = std::move(out);
    return renamed;
}

}  // namespace cxr::diffusion
