// The Stable Diffusion VAE (diffusers' AutoencoderKL): config parsing, the encoder/decoder blocks, the diagonal
// Gaussian posterior and the latent helpers. Architecture, formulas and key names in diffusion/vae.h.
#include "diffusion/vae.h"

#include <cmath>
#include <functional>

#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace ts = cxr::tensor;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------------
// Config
namespace {

constexpr double kGroupNormEps = 1e-6;  // every GroupNorm of the VAE (resnets, mid attention, conv_norm_out)
constexpr double kPi = 3.14159265358979323846;

std::string type_name_of(const json& v) { return v.type_name(); }

// Each reader leaves `out` alone when the key is absent or null, and throws naming the key on a wrong type.
void read_int(const json& j, const char* key, int64_t& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_number_integer(), "AutoencoderKL config: \"", key, "\" must be an integer, got ",
              type_name_of(*it), " ", it->dump());
    out = it->get<int64_t>();
}

void read_double(const json& j, const char* key, double& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_number(), "AutoencoderKL config: \"", key, "\" must be a number, got ", type_name_of(*it), " ",
              it->dump());
    out = it->get<double>();
}

void read_bool(const json& j, const char* key, bool& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_boolean(), "AutoencoderKL config: \"", key, "\" must be true or false, got ", type_name_of(*it),
              " ", it->dump());
    out = it->get<bool>();
}

void read_string(const json& j, const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_string(), "AutoencoderKL config: \"", key, "\" must be a string, got ", type_name_of(*it), " ",
              it->dump());
    out = it->get<std::string>();
}

void read_strings(const json& j, const char* key, std::vector<std::string>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_array(), "AutoencoderKL config: \"", key, "\" must be a list of strings, got ", it->dump());
    std::vector<std::string> v;
    for (const auto& e : *it) {
        CXR_CHECK(e.is_string(), "AutoencoderKL config: \"", key, "\" must be a list of strings, got ", it->dump());
        v.push_back(e.get<std::string>());
    }
    out = std::move(v);
}

void read_ints(const json& j, const char* key, std::vector<int64_t>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    CXR_CHECK(it->is_array(), "AutoencoderKL config: \"", key, "\" must be a list of integers, got ", it->dump());
    std::vector<int64_t> v;
    for (const auto& e : *it) {
        CXR_CHECK(e.is_number_integer(), "AutoencoderKL config: \"", key, "\" must be a list of integers, got ",
                  it->dump());
        v.push_back(e.get<int64_t>());
    }
    out = std::move(v);
}

}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::sd() {
    AutoencoderKLConfig c;
    c.block_out_channels = {128, 256, 512, 512};
    c.down_block_types.assign(4, "DownEncoderBlock2D");
    c.up_block_types.assign(4, "UpDecoderBlock2D");
    c.layers_per_block = 2;
    c.latent_channels = 4;
    c.norm_num_groups = 32;
    c.sample_size = 512;
    c.scaling_factor = 0.18215;
    return c;
}

AutoencoderKLConfig AutoencoderKLConfig::tiny() {
    AutoencoderKLConfig c;
    c.block_out_channels = {8, 16};
    c.down_block_types.assign(2, "DownEncoderBlock2D");
    c.up_block_types.assign(2, "UpDecoderBlock2D");
    c.layers_per_block = 1;
    c.latent_channels = 4;
    c.norm_num_groups = 4;
    c.sample_size = 16;
    return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_json(const json& j) {
    CXR_CHECK(j.is_object(), "AutoencoderKL config: expected a JSON object, got ", j.type_name());
    if (auto it = j.find("_class_name"); it != j.end() && !it->is_null()) {
        CXR_CHECK(it->is_string() && it->get<std::string>() == "AutoencoderKL",
                  "AutoencoderKL config: \"_class_name\" is ", it->dump(), ", not \"AutoencoderKL\"");
    }
    AutoencoderKLConfig c;
    read_int(j, "in_channels", c.in_channels);
    read_int(j, "out_channels", c.out_channels);
    read_strings(j, "down_block_types", c.down_block_types);
    read_strings(j, "up_block_types", c.up_block_types);
    read_ints(j, "block_out_channels", c.block_out_channels);
    read_int(j, "layers_per_block", c.layers_per_block);
    read_string(j, "act_fn", c.act_fn);
    read_int(j, "latent_channels", c.latent_channels);
    read_int(j, "norm_num_groups", c.norm_num_groups);
    if (auto it = j.find("sample_size"); it != j.end() && it->is_array()) {
        std::vector<int64_t> hw;
        read_ints(j, "sample_size", hw);
        CXR_CHECK(!hw.empty(), "AutoencoderKL config: \"sample_size\" is an empty list");
        c.sample_size = hw[0];
    } else {
        read_int(j, "sample_size", c.sample_size);
    }
    read_double(j, "scaling_factor", c.scaling_factor);
    if (auto it = j.find("shift_factor"); it != j.end() && !it->is_null()) {
        double shift = 0.0;
        read_double(j, "shift_factor", shift);
        c.shift_factor = shift;
    }
    for (const char* key : {"latents_mean", "latents_std"}) {
        auto it = j.find(key);
        CXR_CHECK(it == j.end() || it->is_null(), "AutoencoderKL config: \"", key,
                  "\" is set; per-channel latent statistics (latents_mean / latents_std) are not supported");
    }
    read_bool(j, "force_upcast", c.force_upcast);
    read_bool(j, "use_quant_conv", c.use_quant_conv);
    read_bool(j, "use_post_quant_conv", c.use_post_quant_conv);
    read_bool(j, "mid_block_add_attention", c.mid_block_add_attention);
    c.validate();
    return c;
}

json AutoencoderKLConfig::to_json() const {
    json j;
    j["_class_name"] = "AutoencoderKL";
    j["in_channels"] = in_channels;
    j["out_channels"] = out_channels;
    j["down_block_types"] = down_block_types;
    j["up_block_types"] = up_block_types;
    j["block_out_channels"] = block_out_channels;
    j["layers_per_block"] = layers_per_block;
    j["act_fn"] = act_fn;
    j["latent_channels"] = latent_channels;
    j["norm_num_groups"] = norm_num_groups;
    j["sample_size"] = sample_size;
    j["scaling_factor"] = scaling_factor;
    j["shift_factor"] = shift_factor ? json(*shift_factor) : json(nullptr);
    j["latents_mean"] = nullptr;
    j["latents_std"] = nullptr;
    j["force_upcast"] = force_upcast;
    j["use_quant_conv"] = use_quant_conv;
    j["use_post_quant_conv"] = use_post_quant_conv;
    j["mid_block_add_attention"] = mid_block_add_attention;
    return j;
}

void AutoencoderKLConfig::validate() const {
    const char* where = "AutoencoderKL config: ";
    CXR_CHECK(in_channels > 0, where, "\"in_channels\" must be positive, got ", in_channels);
    CXR_CHECK(out_channels > 0, where, "\"out_channels\" must be positive, got ", out_channels);
    CXR_CHECK(latent_channels > 0, where, "\"latent_channels\" must be positive, got ", latent_channels);
    CXR_CHECK(!block_out_channels.empty(), where, "\"block_out_channels\" is empty");
    CXR_CHECK(block_out_channels.size() <= 16, where, "\"block_out_channels\" has ", block_out_channels.size(),
              " entries (at most 16 blocks)");
    CXR_CHECK(layers_per_block >= 1, where, "\"layers_per_block\" must be at least 1, got ", layers_per_block);
    CXR_CHECK(norm_num_groups > 0, where, "\"norm_num_groups\" must be positive, got ", norm_num_groups);
    for (size_t i = 0; i < block_out_channels.size(); ++i) {
        const int64_t ch = block_out_channels[i];
        CXR_CHECK(ch > 0, where, "\"block_out_channels\"[", i, "] must be positive, got ", ch);
        CXR_CHECK(ch % norm_num_groups == 0, where, "\"block_out_channels\"[", i, "] = ", ch,
                  " is not divisible by \"norm_num_groups\" = ", norm_num_groups);
    }
    CXR_CHECK(down_block_types.size() == block_out_channels.size(), where, "\"down_block_types\" has ",
              down_block_types.size(), " entries but \"block_out_channels\" has ", block_out_channels.size());
    CXR_CHECK(up_block_types.size() == block_out_channels.size(), where, "\"up_block_types\" has ",
              up_block_types.size(), " entries but \"block_out_channels\" has ", block_out_channels.size());
    for (size_t i = 0; i < down_block_types.size(); ++i)
        CXR_CHECK(down_block_types[i] == "DownEncoderBlock2D", where, "\"down_block_types\"[", i, "] = \"",
                  down_block_types[i], "\" is not supported (only \"DownEncoderBlock2D\")");
    for (size_t i = 0; i < up_block_types.size(); ++i)
        CXR_CHECK(up_block_types[i] == "UpDecoderBlock2D", where, "\"up_block_types\"[", i, "] = \"",
                  up_block_types[i], "\" is not supported (only \"UpDecoderBlock2D\")");
    CXR_CHECK(act_fn == "silu" || act_fn == "swish", where, "\"act_fn\" = \"", act_fn,
              "\" is not supported (only \"silu\", also called \"swish\")");
    CXR_CHECK(std::isfinite(scaling_factor) && scaling_factor != 0.0, where,
              "\"scaling_factor\" must be a finite non-zero number, got ", scaling_factor);
    CXR_CHECK(!shift_factor || std::isfinite(*shift_factor), where, "\"shift_factor\" must be finite or null");
    CXR_CHECK(sample_size > 0, where, "\"sample_size\" must be positive, got ", sample_size);
}

int64_t AutoencoderKLConfig::downscale_factor() const {
    return int64_t{1} << (static_cast<int64_t>(block_out_channels.size()) - 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Posterior
DiagonalGaussian::DiagonalGaussian(const Tensor& m) : moments(m) {
    CXR_CHECK(m.defined() && m.dim() == 4 && m.size(1) % 2 == 0 && m.size(1) > 0,
              "DiagonalGaussian: moments must be [N, 2·C, h, w] with an even channel count, got ",
              m.defined() ? ts::shape_str(m.shape()) : std::string("an undefined tensor"));
    auto halves = ts::chunk(m, 2, 1);
    mean = halves[0];                                // [N, C, h, w]
    logvar = ts::clamp(halves[1], -30.0, 20.0);      // [N, C, h, w]
    std = ts::exp(ts::mul(logvar, 0.5));             // σ = e^(logvar/2)
    var = ts::exp(logvar);                           // σ²
}

Tensor DiagonalGaussian::sample(tensor::Generator* gen) const {
    Tensor noise = ts::randn(mean.sizes(), ts::Options(mean.dtype(), mean.device()), gen);  // ε ~ N(0, I)
    return sample(noise);
}

Tensor DiagonalGaussian::sample(const Tensor& noise) const {
    CXR_CHECK(noise.defined() && noise.sizes() == mean.sizes(), "DiagonalGaussian::sample: noise must be ",
              ts::shape_str(mean.shape()), ", got ",
              noise.defined() ? ts::shape_str(noise.shape()) : std::string("an undefined tensor"));
    return ts::add(mean, ts::mul(std, noise));  // mean + σ ε
}

Tensor DiagonalGaussian::kl() const {
    // ½ Σ (μ² + σ² − 1 − log σ²) over channels and pixels      [N]
    Tensor t = ts::sub(ts::sub(ts::add(ts::square(mean), var), 1.0), logvar);
    return ts::mul(ts::sum(t, {1, 2, 3}), 0.5);
}

Tensor DiagonalGaussian::kl(const DiagonalGaussian& o) const {
    CXR_CHECK(o.mean.sizes() == mean.sizes(), "DiagonalGaussian::kl: the other distribution is ",
              ts::shape_str(o.mean.shape()), ", this one ", ts::shape_str(mean.shape()));
    // ½ Σ ((μ − μₒ)² / σₒ² + σ² / σₒ² − 1 − log σ² + log σₒ²)      [N]
    Tensor t = ts::add(ts::div(ts::square(ts::sub(mean, o.mean)), o.var), ts::div(var, o.var));
    t = ts::add(ts::sub(ts::sub(t, 1.0), logvar), o.logvar);
    return ts::mul(ts::sum(t, {1, 2, 3}), 0.5);
}

Tensor DiagonalGaussian::nll(const Tensor& s) const {
    CXR_CHECK(s.defined() && s.sizes() == mean.sizes(), "DiagonalGaussian::nll: sample must be ",
              ts::shape_str(mean.shape()), ", got ",
              s.defined() ? ts::shape_str(s.shape()) : std::string("an undefined tensor"));
    // ½ Σ (log 2π + log σ² + (s − μ)² / σ²)      [N]
    const double log_two_pi = std::log(2.0 * kPi);
    Tensor t = ts::add(ts::add(logvar, log_two_pi), ts::div(ts::square(ts::sub(s, mean)), var));
    return ts::mul(ts::sum(t, {1, 2, 3}), 0.5);
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks
namespace {

ResnetBlock2D::Options vae_resnet_options(int64_t groups) {
    ResnetBlock2D::Options o;
    o.temb_channels = 0;  // the VAE has no time embedding
    o.groups = groups;
    o.eps = kGroupNormEps;
    o.output_scale_factor = 1.0;
    o.dropout = 0.0;
    return o;
}

}  // namespace

DownEncoderBlock2D::DownEncoderBlock2D(int64_t in, int64_t out, int64_t num_layers, int64_t groups,
                                       bool add_downsample, tensor::Generator* gen)
    : Module("DownEncoderBlock2D") {
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < num_layers; ++j)
        resnets->push_back(std::make_shared<ResnetBlock2D>(j == 0 ? in : out, out, vae_resnet_options(groups), gen));
    if (add_downsample) {
        downsamplers = register_module("downsamplers", std::make_shared<nn::ModuleList>());
        // padding 0: F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 convolution
        downsamplers->push_back(std::make_shared<Downsample2D>(out, true, out, 0, gen));
    }
}

Tensor DownEncoderBlock2D::forward(const Tensor& x) {
    Tensor h = x;
    for (size_t j = 0; j < resnets->size(); ++j) h = (*resnets)[j]->forward(h);
    if (downsamplers) h = (*downsamplers)[0]->forward(h);
    return h;
}

UpDecoderBlock2D::UpDecoderBlock2D(int64_t in, int64_t out, int64_t num_layers, int64_t groups, bool add_upsample,
                                   tensor::Generator* gen)
    : Module("UpDecoderBlock2D") {
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < num_layers; ++j)
        resnets->push_back(std::make_shared<ResnetBlock2D>(j == 0 ? in : out, out, vae_resnet_options(groups), gen));
    if (add_upsample) {
        upsamplers = register_module("upsamplers", std::make_shared<nn::ModuleList>());
        upsamplers->push_back(std::make_shared<Upsample2D>(out, true, out, gen));  // nearest ×2, then 3×3 conv
    }
}

Tensor UpDecoderBlock2D::forward(const Tensor& x) {
    Tensor h = x;
    for (size_t j = 0; j < resnets->size(); ++j) h = (*resnets)[j]->forward(h);
    if (upsamplers) h = (*upsamplers)[0]->forward(h);
    return h;
}

UNetMidBlock2D::UNetMidBlock2D(int64_t ch, int64_t groups, bool with_attention, tensor::Generator* gen)
    : Module("UNetMidBlock2D"), channels(ch), add_attention(with_attention) {
    // diffusers registers the attentions before the resnets (the order of named_parameters()).
    attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
    if (add_attention) {
        Attention::Options a;
        a.heads = 1;          // heads = C / attention_head_dim with attention_head_dim = C
        a.dim_head = ch;
        a.bias = true;        // q/k/v projections with biases
        a.out_bias = true;
        a.norm_num_groups = groups;
        a.eps = kGroupNormEps;
        a.residual_connection = true;
        a.rescale_output_factor = 1.0;
        attentions->push_back(std::make_shared<Attention>(ch, a, gen));
    }
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    resnets->push_back(std::make_shared<ResnetBlock2D>(ch, ch, vae_resnet_options(groups), gen));
    resnets->push_back(std::make_shared<ResnetBlock2D>(ch, ch, vae_resnet_options(groups), gen));
}

Tensor UNetMidBlock2D::forward(const Tensor& x) {
    Tensor h = (*resnets)[0]->forward(x);           // [N, C, H, W]
    if (add_attention) h = (*attentions)[0]->forward(h);  // x + attention(group_norm(x)) over the H·W tokens
    return (*resnets)[1]->forward(h);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder / decoder
Encoder::Encoder(const AutoencoderKLConfig& c, tensor::Generator* gen) : Module("Encoder") {
    c.validate();
    const auto& C = c.block_out_channels;
    const int64_t n = static_cast<int64_t>(C.size()), G = c.norm_num_groups;
    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.in_channels, C[0], 3, 1, 1, 1, 1, true, gen));
    down_blocks = register_module("down_blocks", std::make_shared<nn::ModuleList>());
    int64_t out = C[0];
    for (int64_t i = 0; i < n; ++i) {
        const int64_t in = out;
        out = C[i];
        down_blocks->push_back(
                std::make_shared<DownEncoderBlock2D>(in, out, c.layers_per_block, G, /*add_downsample=*/i < n - 1, gen));
    }
    mid_block = register_module("mid_block", std::make_shared<UNetMidBlock2D>(C[n - 1], G, c.mid_block_add_attention, gen));
    conv_norm_out = register_module("conv_norm_out", std::make_shared<nn::GroupNorm>(G, C[n - 1], kGroupNormEps, true));
    conv_act = register_module("conv_act", std::make_shared<nn::SiLU>());
    // double_z: the mean and the log-variance of every latent channel
    conv_out = register_module("conv_out",
                               std::make_shared<nn::Conv2d>(C[n - 1], 2 * c.latent_channels, 3, 1, 1, 1, 1, true, gen));
}

Tensor Encoder::forward(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == conv_in->in_channels, "Encoder: expected images [N, ",
              conv_in->in_channels, ", H, W], got ", ts::shape_str(x.shape()));
    Tensor h = conv_in->forward(x);  // [N, C_0, H, W]
    for (size_t i = 0; i < down_blocks->size(); ++i) h = (*down_blocks)[i]->forward(h);  // [N, C_{n−1}, H/f, W/f]
    h = mid_block->forward(h);
    return conv_out->forward(conv_act->forward(conv_norm_out->forward(h)));  // [N, 2·latent, H/f, W/f]
}

Decoder::Decoder(const AutoencoderKLConfig& c, tensor::Generator* gen) : Module("Decoder") {
    c.validate();
    const std::vector<int64_t> R(c.block_out_channels.rbegin(), c.block_out_channels.rend());  // reversed channels
    const int64_t n = static_cast<int64_t>(R.size()), G = c.norm_num_groups;
    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.latent_channels, R[0], 3, 1, 1, 1, 1, true, gen));
    up_blocks = register_module("up_blocks", std::make_shared<nn::ModuleList>());
    mid_block = register_module("mid_block", std::make_shared<UNetMidBlock2D>(R[0], G, c.mid_block_add_attention, gen));
    int64_t out = R[0];
    for (int64_t i = 0; i < n; ++i) {
        const int64_t in = out;
        out = R[i];
        up_blocks->push_back(
                std::make_shared<UpDecoderBlock2D>(in, out, c.layers_per_block + 1, G, /*add_upsample=*/i < n - 1, gen));
    }
    conv_norm_out = register_module("conv_norm_out", std::make_shared<nn::GroupNorm>(G, R[n - 1], kGroupNormEps, true));
    conv_act = register_module("conv_act", std::make_shared<nn::SiLU>());
    conv_out = register_module("conv_out",
                               std::make_shared<nn::Conv2d>(R[n - 1], c.out_channels, 3, 1, 1, 1, 1, true, gen));
}

Tensor Decoder::forward(const Tensor& z) {
    CXR_CHECK(z.dim() == 4 && z.size(1) == conv_in->in_channels, "Decoder: expected latents [N, ",
              conv_in->in_channels, ", h, w], got ", ts::shape_str(z.shape()));
    Tensor h = conv_in->forward(z);  // [N, C_{n−1}, h, w]
    h = mid_block->forward(h);
    for (size_t i = 0; i < up_blocks->size(); ++i) h = (*up_blocks)[i]->forward(h);  // [N, C_0, h·f, w·f]
    return conv_out->forward(conv_act->forward(conv_norm_out->forward(h)));  // [N, out, h·f, w·f]
}

// ---------------------------------------------------------------------------------------------------------------
// AutoencoderKL
namespace {

// fn over slices of at most `limit` images (all at once when limit <= 0), concatenated along the batch.
Tensor in_slices(const Tensor& x, int64_t limit, const std::function<Tensor(const Tensor&)>& fn) {
    if (limit <= 0 || x.size(0) <= limit) return fn(x);
    std::vector<Tensor> parts;
    for (const Tensor& part : ts::split(x, limit, 0)) parts.push_back(fn(part));
    return ts::cat(parts, 0);
}

}  // namespace

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& c, tensor::Generator* gen)
    : Module("AutoencoderKL"), config(c) {
    config.validate();
    encoder = register_module("encoder", std::make_shared<Encoder>(config, gen));
    decoder = register_module("decoder", std::make_shared<Decoder>(config, gen));
    const int64_t L = config.latent_channels;
    if (config.use_quant_conv)
        quant_conv = register_module("quant_conv", std::make_shared<nn::Conv2d>(2 * L, 2 * L, 1, 1, 0, 1, 1, true, gen));
    if (config.use_post_quant_conv)
        post_quant_conv = register_module("post_quant_conv", std::make_shared<nn::Conv2d>(L, L, 1, 1, 0, 1, 1, true, gen));
}

DiagonalGaussian AutoencoderKL::encode(const Tensor& x) {
    const int64_t f = config.downscale_factor();
    CXR_CHECK(x.defined() && x.dim() == 4 && x.size(1) == config.in_channels, "AutoencoderKL::encode: expected images [N, ",
              config.in_channels, ", H, W], got ", x.defined() ? ts::shape_str(x.shape()) : std::string("an undefined tensor"));
    CXR_CHECK(x.size(0) > 0 && x.size(2) > 0 && x.size(3) > 0 && x.size(2) % f == 0 && x.size(3) % f == 0,
              "AutoencoderKL::encode: the image size ", x.size(2), "x", x.size(3), " must be a positive multiple of ", f,
              " (the downscale factor of ", config.block_out_channels.size(), " blocks)");
    Tensor moments = in_slices(x, encode_batch_limit, [&](const Tensor& part) {
        Tensor h = encoder->forward(part);             // [n, 2·latent, H/f, W/f]
        return quant_conv ? quant_conv->forward(h) : h;
    });
    return DiagonalGaussian(moments);
}

Tensor AutoencoderKL::decode(const Tensor& z) {
    CXR_CHECK(z.defined() && z.dim() == 4 && z.size(1) == config.latent_channels && z.size(0) > 0,
              "AutoencoderKL::decode: expected latents [N, ", config.latent_channels, ", h, w], got ",
              z.defined() ? ts::shape_str(z.shape()) : std::string("an undefined tensor"));
    return in_slices(z, decode_batch_limit, [&](const Tensor& part) {
        Tensor h = post_quant_conv ? post_quant_conv->forward(part) : part;
        return decoder->forward(h);  // [n, out, h·f, w·f]
    });
}

Tensor AutoencoderKL::forward(const Tensor& x) { return forward(x, false); }

Tensor AutoencoderKL::forward(const Tensor& x, bool sample_posterior, tensor::Generator* gen) {
    DiagonalGaussian posterior = encode(x);
    return decode(sample_posterior ? posterior.sample(gen) : posterior.mode());
}

Tensor AutoencoderKL::forward_with_noise(const Tensor& x, const Tensor& noise) {
    return decode(encode(x).sample(noise));
}

Tensor AutoencoderKL::scale_latents(const Tensor& z) const {
    Tensor t = config.shift_factor ? ts::sub(z, *config.shift_factor) : z;
    return ts::mul(t, config.scaling_factor);  // (z − b) · s
}

Tensor AutoencoderKL::unscale_latents(const Tensor& latents) const {
    Tensor t = ts::div(latents, config.scaling_factor);
    return config.shift_factor ? ts::add(t, *config.shift_factor) : t;  // latents / s + b
}

Tensor AutoencoderKL::images_to_latents(const Tensor& images, bool sample, tensor::Generator* gen) {
    DiagonalGaussian posterior = encode(images);
    return scale_latents(sample ? posterior.sample(gen) : posterior.mode());
}

Tensor AutoencoderKL::latents_to_images(const Tensor& latents) { return decode(unscale_latents(latents)); }

nn::LoadReport AutoencoderKL::load_weights(nn::StateDict state, const nn::LoadOptions& options) {
    rename_legacy_attention_keys(state);
    return load_state_dict(state, options);
}

Tensor normalize_images(const Tensor& images01) { return ts::sub(ts::mul(images01, 2.0), 1.0); }

Tensor denormalize_images(const Tensor& images) {
    return ts::clamp(ts::add(ts::mul(images, 0.5), 0.5), 0.0, 1.0);
}

}  // namespace cxr::diffusion
