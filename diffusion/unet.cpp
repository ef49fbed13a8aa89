// The Stable Diffusion UNet: UNet2DConditionConfig (presets, diffusers config.json parsing and validation), the
// down / mid / up blocks and UNet2DConditionModel (architecture, formulas and references in diffusion/unet.h).
#include "diffusion/unet.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace ts = cxr::tensor;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------------
// Config: presets
namespace {

UNet2DConditionConfig sd_common() {
    UNet2DConditionConfig c;
    c.sample_size = {64, 64};
    c.in_channels = 4;
    c.out_channels = 4;
    c.down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
    c.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
    c.block_out_channels = {320, 640, 1280, 1280};
    c.layers_per_block = {2};
    c.norm_num_groups = 32;
    c.norm_eps = 1e-5;
    return c;
}

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::sd15() {
    UNet2DConditionConfig c = sd_common();
    c.num_attention_heads = {8};  // config.json: "attention_head_dim": 8
    c.cross_attention_dim = {768};
    return c;
}

UNet2DConditionConfig UNet2DConditionConfig::sd21_base() {
    UNet2DConditionConfig c = sd_common();
    c.num_attention_heads = {5, 10, 20, 20};  // config.json: "attention_head_dim": [5, 10, 20, 20] (64-channel heads)
    c.cross_attention_dim = {1024};
    c.use_linear_projection = true;
    return c;
}

UNet2DConditionConfig UNet2DConditionConfig::sd21() {
    UNet2DConditionConfig c = sd21_base();
    c.sample_size = {96, 96};
    c.upcast_attention = true;
    return c;
}

UNet2DConditionConfig UNet2DConditionConfig::tiny() {
    UNet2DConditionConfig c;
    c.sample_size = {16, 16};
    c.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
    c.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
    c.block_out_channels = {32, 64};
    c.layers_per_block = {1};
    c.norm_num_groups = 8;
    c.num_attention_heads = {4};
    c.cross_attention_dim = {32};
    return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Config: per-block values and validation
namespace {

template <class T>
T per_block(const std::vector<T>& list, size_t i, const char* name) {
    CXR_CHECK(!list.empty(), "UNet2DConditionConfig: ", name, " is empty");
    return list.size() == 1 ? list[0] : list.at(i);
}

}  // namespace

int64_t UNet2DConditionConfig::layers(size_t i) const { return per_block(layers_per_block, i, "layers_per_block"); }
int64_t UNet2DConditionConfig::heads(size_t i) const { return per_block(num_attention_heads, i, "attention_head_dim"); }
int64_t UNet2DConditionConfig::cross_dim(size_t i) const {
    return per_block(cross_attention_dim, i, "cross_attention_dim");
}
int64_t UNet2DConditionConfig::transformer_layers(size_t i) const {
    return per_block(transformer_layers_per_block, i, "transformer_layers_per_block");
}
bool UNet2DConditionConfig::only_cross(size_t i) const {
    return per_block(only_cross_attention, i, "only_cross_attention");
}

void UNet2DConditionConfig::validate() const {
    const size_t n = block_out_channels.size();
    CXR_CHECK(n > 0, "UNet2DConditionConfig: block_out_channels is empty");
    CXR_CHECK(down_block_types.size() == n, "UNet2DConditionConfig: down_block_types has ", down_block_types.size(),
              " entries but block_out_channels has ", n, " (one per block)");
    CXR_CHECK(up_block_types.size() == n, "UNet2DConditionConfig: up_block_types has ", up_block_types.size(),
              " entries but down_block_types has ", n, " (they must be the same number)");
    auto check_list = [&](size_t size, const char* name) {
        CXR_CHECK(size == 1 || size == n, "UNet2DConditionConfig: ", name, " has ", size,
                  " entries; give one value or one per block (", n, ")");
    };
    check_list(layers_per_block.size(), "layers_per_block");
    check_list(num_attention_heads.size(), "attention_head_dim (the number of heads)");
    check_list(cross_attention_dim.size(), "cross_attention_dim");
    check_list(transformer_layers_per_block.size(), "transformer_layers_per_block");
    check_list(only_cross_attention.size(), "only_cross_attention");
    CXR_CHECK(in_channels > 0 && out_channels > 0, "UNet2DConditionConfig: in_channels (", in_channels,
              ") and out_channels (", out_channels, ") must be positive");
    CXR_CHECK(norm_num_groups > 0, "UNet2DConditionConfig: norm_num_groups must be positive, got ", norm_num_groups);
    CXR_CHECK(norm_eps > 0, "UNet2DConditionConfig: norm_eps must be positive, got ", norm_eps);
    CXR_CHECK(conv_in_kernel > 0 && conv_in_kernel % 2 == 1, "UNet2DConditionConfig: conv_in_kernel must be odd, got ",
              conv_in_kernel);
    CXR_CHECK(conv_out_kernel > 0 && conv_out_kernel % 2 == 1,
              "UNet2DConditionConfig: conv_out_kernel must be odd, got ", conv_out_kernel);
    CXR_CHECK(downsample_padding >= 0, "UNet2DConditionConfig: downsample_padding must be >= 0, got ",
              downsample_padding);
    CXR_CHECK(time_embedding_dim >= 0, "UNet2DConditionConfig: time_embedding_dim must be >= 0, got ",
              time_embedding_dim);
    CXR_CHECK(block_out_channels[0] >= 2, "UNet2DConditionConfig: block_out_channels[0] must be >= 2 (the timestep ",
              "embedding has that many channels)");
    CXR_CHECK(mid_block_type.empty() || mid_block_type == "UNetMidBlock2DCrossAttn",
              "UNet2DConditionConfig: mid_block_type \"", mid_block_type,
              "\" is not supported (UNetMidBlock2DCrossAttn or none)");
    for (size_t i = 0; i < n; ++i) {
        const int64_t c = block_out_channels[i];
        CXR_CHECK(c > 0 && c % norm_num_groups == 0, "UNet2DConditionConfig: block_out_channels[", i, "] = ", c,
                  " is not divisible into norm_num_groups = ", norm_num_groups, " groups");
        CXR_CHECK(down_block_types[i] == "CrossAttnDownBlock2D" || down_block_types[i] == "DownBlock2D",
                  "UNet2DConditionConfig: down_block_types[", i, "] \"", down_block_types[i],
                  "\" is not supported (CrossAttnDownBlock2D or DownBlock2D)");
        CXR_CHECK(up_block_types[i] == "CrossAttnUpBlock2D" || up_block_types[i] == "UpBlock2D",
                  "UNet2DConditionConfig: up_block_types[", i, "] \"", up_block_types[i],
                  "\" is not supported (CrossAttnUpBlock2D or UpBlock2D)");
        CXR_CHECK(layers(i) > 0, "UNet2DConditionConfig: layers_per_block[", i, "] must be positive, got ", layers(i));
        CXR_CHECK(transformer_layers(i) > 0, "UNet2DConditionConfig: transformer_layers_per_block[", i,
                  "] must be positive, got ", transformer_layers(i));
        CXR_CHECK(heads(i) > 0, "UNet2DConditionConfig: attention_head_dim[", i, "] (heads) must be positive, got ",
                  heads(i));
        CXR_CHECK(cross_dim(i) > 0, "UNet2DConditionConfig: cross_attention_dim[", i, "] must be positive, got ",
                  cross_dim(i));
    }
    // Cross-attention blocks split their channels into heads (down block i uses entry i, up block i the reversed
    // entry, the mid block the last one).
    auto check_heads = [&](int64_t channels, size_t entry, const std::string& where) {
        CXR_CHECK(channels % heads(entry) == 0, "UNet2DConditionConfig: ", where, " has ", channels,
                  " channels, not divisible into attention_head_dim[", entry, "] = ", heads(entry), " heads");
    };
    for (size_t i = 0; i < n; ++i) {
        if (down_block_types[i] == "CrossAttnDownBlock2D")
            check_heads(block_out_channels[i], i, "down_blocks." + std::to_string(i));
        if (up_block_types[i] == "CrossAttnUpBlock2D")
            check_heads(block_out_channels[n - 1 - i], n - 1 - i, "up_blocks." + std::to_string(i));
    }
    if (!mid_block_type.empty()) check_heads(block_out_channels[n - 1], n - 1, "mid_block");
}

// ---------------------------------------------------------------------------------------------------------------
// Config: diffusers config.json
namespace {

struct JsonReader {
    const json& j;
    const std::string& source;

    bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
    [[noreturn]] void fail_type(const char* key, const char* expected) const {
        CXR_FAIL("UNet2DConditionConfig (", source, "): \"", key, "\" must be ", expected, ", got ", j.at(key).dump());
    }
    int64_t integer(const char* key) const {
        const json& v = j.at(key);
        if (v.is_number_integer()) return v.get<int64_t>();
        if (v.is_number_float() && v.get<double>() == (double)(int64_t)v.get<double>()) return (int64_t)v.get<double>();
        fail_type(key, "an integer");
    }
    double number(const char* key) const {
        if (!j.at(key).is_number()) fail_type(key, "a number");
        return j.at(key).get<double>();
    }
    bool boolean(const char* key) const {
        if (!j.at(key).is_boolean()) fail_type(key, "true or false");
        return j.at(key).get<bool>();
    }
    std::string string(const char* key) const {
        if (!j.at(key).is_string()) fail_type(key, "a string");
        return j.at(key).get<std::string>();
    }
    // An integer or a list of integers.
    std::vector<int64_t> integers(const char* key) const {
        const json& v = j.at(key);
        if (v.is_number_integer()) return {v.get<int64_t>()};
        if (!v.is_array() || v.empty()) fail_type(key, "an integer or a list of integers");
        std::vector<int64_t> out;
        for (const json& e : v) {
            if (!e.is_number_integer()) fail_type(key, "an integer or a list of integers");
            out.push_back(e.get<int64_t>());
        }
        return out;
    }
    std::vector<bool> booleans(const char* key) const {
        const json& v = j.at(key);
        if (v.is_boolean()) return {v.get<bool>()};
        if (!v.is_array() || v.empty()) fail_type(key, "true, false or a list of them");
        std::vector<bool> out;
        for (const json& e : v) {
            if (!e.is_boolean()) fail_type(key, "true, false or a list of them");
            out.push_back(e.get<bool>());
        }
        return out;
    }
    std::vector<std::string> strings(const char* key) const {
        const json& v = j.at(key);
        if (!v.is_array()) fail_type(key, "a list of block type names");
        std::vector<std::string> out;
        for (const json& e : v) {
            if (!e.is_string()) fail_type(key, "a list of block type names");
            out.push_back(e.get<std::string>());
        }
        return out;
    }
    // Keys whose only supported value is null (or absent): the feature they switch on is not built.
    void require_null(const char* key, const char* feature) const {
        CXR_CHECK(!has(key), "UNet2DConditionConfig (", source, "): \"", key, "\": ", j.at(key).dump(),
                  " is not supported (", feature, "); only null is");
    }
    template <class T>
    void require_value(const char* key, const T& supported, const char* feature) const {
        if (!has(key)) return;
        CXR_CHECK(j.at(key) == json(supported), "UNet2DConditionConfig (", source, "): \"", key, "\": ",
                  j.at(key).dump(), " is not supported (", feature, "); only ", json(supported).dump(), " is");
    }
};

// diffusers strips a "UNetRes" prefix from block type names ("UNetResCrossAttnDownBlock2D").
std::string strip_unetres(const std::string& name) {
    const std::string prefix = "UNetRes";
    return name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : name;
}

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::from_json(const std::string& text, const std::string& source) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        CXR_FAIL("UNet2DConditionConfig (", source, "): not valid JSON: ", e.what());
    }
    CXR_CHECK(j.is_object(), "UNet2DConditionConfig (", source, "): expected a JSON object");
    const JsonReader r{j, source};
    if (r.has("_class_name"))
        CXR_CHECK(r.string("_class_name") == "UNet2DConditionModel", "UNet2DConditionConfig (", source,
                  "): \"_class_name\": \"", r.string("_class_name"), "\" is not a UNet2DConditionModel");

    // Unsupported features: each is rejected naming the key and the value.
    r.require_null("num_attention_heads",
                   "diffusers itself rejects it for this model; the head count is given by attention_head_dim");
    r.require_null("class_embed_type", "class embeddings");
    r.require_null("num_class_embeds", "class embeddings");
    r.require_null("addition_embed_type", "addition embeddings (SDXL, Kandinsky)");
    r.require_null("encoder_hid_dim", "a projection of the encoder hidden states");
    r.require_null("encoder_hid_dim_type", "a projection of the encoder hidden states");
    r.require_null("time_embedding_act_fn", "an activation after the time embedding");
    r.require_null("timestep_post_act", "an activation after the time embedding");
    r.require_null("time_cond_proj_dim", "a timestep condition projection");
    r.require_null("reverse_transformer_layers_per_block", "asymmetric transformer depths");
    r.require_value("resnet_time_scale_shift", "default", "scale-shift time conditioning");
    r.require_value("time_embedding_type", "positional", "Fourier time embeddings");
    r.require_value("dual_cross_attention", false, "dual cross-attention");
    r.require_value("attention_type", "default", "GLIGEN gated attention");
    if (r.has("act_fn")) {
        const std::string act = r.string("act_fn");
        CXR_CHECK(act == "silu" || act == "swish", "UNet2DConditionConfig (", source, "): \"act_fn\": \"", act,
                  "\" is not supported (silu or swish)");
    }
    // Ignored because they do not affect the blocks built here (diffusers passes them only to other block types or
    // to the rejected embeddings): resnet_skip_time_act, resnet_out_scale_factor, cross_attention_norm,
    // mid_block_only_cross_attention, class_embeddings_concat, addition_time_embed_dim,
    // addition_embed_type_num_heads, projection_class_embeddings_input_dim; and every unknown key.

    UNet2DConditionConfig c;
    if (r.has("sample_size")) {
        const std::vector<int64_t> s = r.integers("sample_size");
        CXR_CHECK(s.size() == 1 || s.size() == 2, "UNet2DConditionConfig (", source,
                  "): \"sample_size\" must be an integer or [height, width]");
        c.sample_size = {s[0], s.size() == 2 ? s[1] : s[0]};
    }
    if (r.has("in_channels")) c.in_channels = r.integer("in_channels");
    if (r.has("out_channels")) c.out_channels = r.integer("out_channels");
    if (r.has("center_input_sample")) c.center_input_sample = r.boolean("center_input_sample");
    if (r.has("flip_sin_to_cos")) c.flip_sin_to_cos = r.boolean("flip_sin_to_cos");
    if (r.has("freq_shift")) c.freq_shift = r.number("freq_shift");
    if (r.has("down_block_types")) c.down_block_types = r.strings("down_block_types");
    if (r.has("up_block_types")) c.up_block_types = r.strings("up_block_types");
    for (auto& t : c.down_block_types) t = strip_unetres(t);
    for (auto& t : c.up_block_types) t = strip_unetres(t);
    if (j.contains("mid_block_type")) c.mid_block_type = r.has("mid_block_type") ? r.string("mid_block_type") : "";
    if (r.has("block_out_channels")) c.block_out_channels = r.integers("block_out_channels");
    if (r.has("layers_per_block")) c.layers_per_block = r.integers("layers_per_block");
    // The naming quirk: "attention_head_dim" holds the number of heads (diffusers: num_attention_heads =
    // num_attention_heads or attention_head_dim).
    if (r.has("attention_head_dim")) c.num_attention_heads = r.integers("attention_head_dim");
    else if (j.contains("attention_head_dim"))
        CXR_FAIL("UNet2DConditionConfig (", source, "): \"attention_head_dim\": null is not supported (give the ",
                 "number of heads per block)");
    if (r.has("cross_attention_dim")) c.cross_attention_dim = r.integers("cross_attention_dim");
    if (r.has("transformer_layers_per_block")) {
        const json& v = j.at("transformer_layers_per_block");
        if (v.is_array())
            for (const json& e : v)
                CXR_CHECK(!e.is_array(), "UNet2DConditionConfig (", source, "): \"transformer_layers_per_block\": ",
                          v.dump(), " is not supported (per-layer depths inside a block); give one integer per block");
        c.transformer_layers_per_block = r.integers("transformer_layers_per_block");
    }
    if (r.has("only_cross_attention")) c.only_cross_attention = r.booleans("only_cross_attention");
    if (r.has("downsample_padding")) c.downsample_padding = r.integer("downsample_padding");
    if (r.has("mid_block_scale_factor")) c.mid_block_scale_factor = r.number("mid_block_scale_factor");
    if (r.has("dropout")) c.dropout = r.number("dropout");
    if (j.contains("norm_num_groups"))
        CXR_CHECK(r.has("norm_num_groups"), "UNet2DConditionConfig (", source,
                  "): \"norm_num_groups\": null is not supported (the blocks need group normalisation)");
    if (r.has("norm_num_groups")) c.norm_num_groups = r.integer("norm_num_groups");
    if (r.has("norm_eps")) c.norm_eps = r.number("norm_eps");
    if (r.has("use_linear_projection")) c.use_linear_projection = r.boolean("use_linear_projection");
    if (r.has("upcast_attention")) c.upcast_attention = r.boolean("upcast_attention");
    if (r.has("time_embedding_dim")) c.time_embedding_dim = r.integer("time_embedding_dim");
    if (r.has("conv_in_kernel")) c.conv_in_kernel = r.integer("conv_in_kernel");
    if (r.has("conv_out_kernel")) c.conv_out_kernel = r.integer("conv_out_kernel");
    try {
        c.validate();
    } catch (const Error& e) {
        CXR_FAIL("invalid UNet config (", source, "): ", e.what());
    }
    return c;
}

UNet2DConditionConfig UNet2DConditionConfig::from_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    CXR_CHECK(in.good(), "UNet2DConditionConfig: cannot open ", path);
    std::ostringstream text;
    text << in.rdbuf();
    CXR_CHECK(!in.bad(), "UNet2DConditionConfig: cannot read ", path);
    return from_json(text.str(), path);
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks
namespace {

std::shared_ptr<ResnetBlock2D> make_resnet(int64_t in, int64_t out, const UNetBlockOptions& o, tensor::Generator* gen) {
    ResnetBlock2D::Options r;
    r.temb_channels = o.temb_channels;
    r.groups = o.groups;
    r.eps = o.eps;
    r.output_scale_factor = o.output_scale_factor;
    r.dropout = o.dropout;
    return std::make_shared<ResnetBlock2D>(in, out, r, gen);
}

std::shared_ptr<Transformer2DModel> make_transformer(int64_t channels, const UNetBlockOptions& o,
                                                     tensor::Generator* gen) {
    CXR_CHECK(channels % o.heads == 0, "UNet block: ", channels, " channels are not divisible into ", o.heads, " heads");
    Transformer2DModel::Options t;
    t.num_layers = o.transformer_layers;
    t.norm_num_groups = o.groups;
    t.cross_attention_dim = o.cross_attention_dim;
    t.use_linear_projection = o.use_linear_projection;
    t.only_cross_attention = o.only_cross_attention;
    t.upcast_attention = o.upcast_attention;
    // (diffusers' UNet blocks do not pass their dropout to the transformers: they keep 0)
    return std::make_shared<Transformer2DModel>(o.heads, channels / o.heads, channels, t, gen);
}

ResnetBlock2D& resnet_at(const nn::ModuleList& list, size_t i) { return *list.at<ResnetBlock2D>(i); }
Transformer2DModel& attention_at(const nn::ModuleList& list, size_t i) { return *list.at<Transformer2DModel>(i); }

}  // namespace

Tensor UNetDownBlock::forward(const Tensor&) {
    CXR_FAIL(type_name(), ": forward needs the time embedding, the context and the skip list");
}

Tensor UNetUpBlock::forward(const Tensor&) {
    CXR_FAIL(type_name(), ": forward needs the skip connections, the time embedding and the context");
}

CrossAttnDownBlock2D::CrossAttnDownBlock2D(int64_t in, int64_t out, const UNetBlockOptions& o, tensor::Generator* gen)
    : UNetDownBlock("CrossAttnDownBlock2D") {
    in_channels = in;
    out_channels = out;
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < o.num_layers; ++j) {
        resnets->push_back(make_resnet(j == 0 ? in : out, out, o, gen));
        attentions->push_back(make_transformer(out, o, gen));
    }
    if (o.add_sample) {
        downsamplers = register_module("downsamplers", std::make_shared<nn::ModuleList>());
        downsamplers->push_back(std::make_shared<Downsample2D>(out, true, out, o.downsample_padding, gen));
    }
}

Tensor CrossAttnDownBlock2D::forward(const Tensor& x, const Tensor& temb, const Tensor& context,
                                     std::vector<Tensor>& skips) {
    Tensor h = x;  // [B, in, H, W]
    for (size_t j = 0; j < resnets->size(); ++j) {
        h = resnet_at(*resnets, j).forward(h, temb);      // [B, out, H, W]
        h = attention_at(*attentions, j).forward(h, context);
        skips.push_back(h);
    }
    if (downsamplers) {
        h = (*downsamplers)[0]->forward(h);  // [B, out, ⌈H/2⌉, ⌈W/2⌉]
        skips.push_back(h);
    }
    return h;
}

DownBlock2D::DownBlock2D(int64_t in, int64_t out, const UNetBlockOptions& o, tensor::Generator* gen)
    : UNetDownBlock("DownBlock2D") {
    in_channels = in;
    out_channels = out;
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < o.num_layers; ++j) resnets->push_back(make_resnet(j == 0 ? in : out, out, o, gen));
    if (o.add_sample) {
        downsamplers = register_module("downsamplers", std::make_shared<nn::ModuleList>());
        downsamplers->push_back(std::make_shared<Downsample2D>(out, true, out, o.downsample_padding, gen));
    }
}

Tensor DownBlock2D::forward(const Tensor& x, const Tensor& temb, const Tensor&, std::vector<Tensor>& skips) {
    Tensor h = x;
    for (size_t j = 0; j < resnets->size(); ++j) {
        h = resnet_at(*resnets, j).forward(h, temb);  // [B, out, H, W]
        skips.push_back(h);
    }
    if (downsamplers) {
        h = (*downsamplers)[0]->forward(h);
        skips.push_back(h);
    }
    return h;
}

UNetMidBlock2DCrossAttn::UNetMidBlock2DCrossAttn(int64_t c, const UNetBlockOptions& o, tensor::Generator* gen)
    : Module("UNetMidBlock2DCrossAttn"), channels(c) {
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
    resnets->push_back(make_resnet(c, c, o, gen));
    for (int64_t j = 0; j < o.num_layers; ++j) {
        attentions->push_back(make_transformer(c, o, gen));
        resnets->push_back(make_resnet(c, c, o, gen));
    }
}

Tensor UNetMidBlock2DCrossAttn::forward(const Tensor& x, const Tensor& temb, const Tensor& context) {
    Tensor h = resnet_at(*resnets, 0).forward(x, temb);  // [B, C, H, W]
    for (size_t j = 0; j < attentions->size(); ++j)
        h = resnet_at(*resnets, j + 1).forward(attention_at(*attentions, j).forward(h, context), temb);
    return h;
}

Tensor UNetMidBlock2DCrossAttn::forward(const Tensor&) {
    CXR_FAIL("UNetMidBlock2DCrossAttn: forward needs the time embedding and the context");
}

namespace {

// Resnet j of an up block with `layers` resnets: (j == 0 ? prev : out) + (j == last ? in : out) input channels.
int64_t up_resnet_in(int64_t j, int64_t layers, int64_t in, int64_t prev, int64_t out) {
    const int64_t skip = j == layers - 1 ? in : out;
    const int64_t from_h = j == 0 ? prev : out;
    return from_h + skip;
}

// Pops the next skip connection and concatenates it to h on channels: [B, c_h, H, W] + [B, c_s, H, W].
Tensor cat_skip(const Tensor& h, std::vector<Tensor>& skips, const std::string& where) {
    CXR_CHECK(!skips.empty(), where, ": no skip connection left");
    Tensor s = std::move(skips.back());
    skips.pop_back();
    CXR_CHECK(s.dim() == 4 && s.size(0) == h.size(0) && s.size(2) == h.size(2) && s.size(3) == h.size(3), where,
              ": the skip connection ", ts::shape_str(s.shape()), " does not match the hidden states ",
              ts::shape_str(h.shape()), " in batch and spatial size");
    return ts::cat({h, s}, 1);
}

Tensor upsample(const nn::ModuleList* upsamplers, const Tensor& h, std::optional<tensor::Size2> size) {
    if (!upsamplers) return h;
    return upsamplers->at<Upsample2D>(0)->forward(h, size);  // [B, out, 2H, 2W] or size
}

}  // namespace

CrossAttnUpBlock2D::CrossAttnUpBlock2D(int64_t in, int64_t prev, int64_t out, const UNetBlockOptions& o,
                                       tensor::Generator* gen)
    : UNetUpBlock("CrossAttnUpBlock2D") {
    out_channels = out;
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < o.num_layers; ++j) {
        resnets->push_back(make_resnet(up_resnet_in(j, o.num_layers, in, prev, out), out, o, gen));
        attentions->push_back(make_transformer(out, o, gen));
    }
    if (o.add_sample) {
        upsamplers = register_module("upsamplers", std::make_shared<nn::ModuleList>());
        upsamplers->push_back(std::make_shared<Upsample2D>(out, true, out, gen));
    }
}

Tensor CrossAttnUpBlock2D::forward(const Tensor& x, std::vector<Tensor>& skips, const Tensor& temb,
                                   const Tensor& context, std::optional<tensor::Size2> upsample_size) {
    Tensor h = x;  // [B, prev, H, W]
    for (size_t j = 0; j < resnets->size(); ++j) {
        h = cat_skip(h, skips, "CrossAttnUpBlock2D");       // [B, c_h + c_skip, H, W]
        h = resnet_at(*resnets, j).forward(h, temb);        // [B, out, H, W]
        h = attention_at(*attentions, j).forward(h, context);
    }
    return upsample(upsamplers.get(), h, upsample_size);
}

UpBlock2D::UpBlock2D(int64_t in, int64_t prev, int64_t out, const UNetBlockOptions& o, tensor::Generator* gen)
    : UNetUpBlock("UpBlock2D") {
    out_channels = out;
    resnets = register_module("resnets", std::make_shared<nn::ModuleList>());
    for (int64_t j = 0; j < o.num_layers; ++j)
        resnets->push_back(make_resnet(up_resnet_in(j, o.num_layers, in, prev, out), out, o, gen));
    if (o.add_sample) {
        upsamplers = register_module("upsamplers", std::make_shared<nn::ModuleList>());
        upsamplers->push_back(std::make_shared<Upsample2D>(out, true, out, gen));
    }
}

Tensor UpBlock2D::forward(const Tensor& x, std::vector<Tensor>& skips, const Tensor& temb, const Tensor&,
                          std::optional<tensor::Size2> upsample_size) {
    Tensor h = x;
    for (size_t j = 0; j < resnets->size(); ++j) {
        h = cat_skip(h, skips, "UpBlock2D");
        h = resnet_at(*resnets, j).forward(h, temb);  // [B, out, H, W]
    }
    return upsample(upsamplers.get(), h, upsample_size);
}

// ---------------------------------------------------------------------------------------------------------------
// The model
UNet2DConditionModel::UNet2DConditionModel(const UNet2DConditionConfig& cfg, tensor::Generator* gen)
    : Module("UNet2DConditionModel"), config(cfg) {
    config.validate();
    const UNet2DConditionConfig& c = config;
    const size_t n = c.num_blocks();
    const int64_t c0 = c.block_out_channels[0];
    const int64_t temb = c.time_embed_dim();

    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.in_channels, c0, c.conv_in_kernel, 1,
                                                                      (c.conv_in_kernel - 1) / 2, 1, 1, true, gen));
    time_proj = register_module("time_proj", std::make_shared<Timesteps>(c0, c.flip_sin_to_cos, c.freq_shift));
    time_embedding = register_module("time_embedding", std::make_shared<TimestepEmbedding>(c0, temb, gen));

    // Options shared by every block; the per-block fields are set below.
    UNetBlockOptions base;
    base.temb_channels = temb;
    base.groups = c.norm_num_groups;
    base.eps = c.norm_eps;
    base.dropout = c.dropout;
    base.use_linear_projection = c.use_linear_projection;
    base.upcast_attention = c.upcast_attention;
    base.downsample_padding = c.downsample_padding;
    auto block_options = [&](size_t entry, int64_t num_layers, bool add_sample) {
        UNetBlockOptions o = base;
        o.num_layers = num_layers;
        o.heads = c.heads(entry);
        o.cross_attention_dim = c.cross_dim(entry);
        o.transformer_layers = c.transformer_layers(entry);
        o.only_cross_attention = c.only_cross(entry);
        o.add_sample = add_sample;
        return o;
    };

    down_blocks = register_module("down_blocks", std::make_shared<nn::ModuleList>());
    int64_t out = c0;
    for (size_t i = 0; i < n; ++i) {
        const int64_t in = out;
        out = c.block_out_channels[i];
        const UNetBlockOptions o = block_options(i, c.layers(i), i + 1 < n);
        if (c.down_block_types[i] == "CrossAttnDownBlock2D") {
            down_blocks->push_back(std::make_shared<CrossAttnDownBlock2D>(in, out, o, gen));
            needs_context_ = true;
        } else {
            down_blocks->push_back(std::make_shared<DownBlock2D>(in, out, o, gen));
        }
    }

    if (!c.mid_block_type.empty()) {
        UNetBlockOptions o = block_options(n - 1, 1, false);
        o.output_scale_factor = c.mid_block_scale_factor;
        mid_block = register_module("mid_block", std::make_shared<UNetMidBlock2DCrossAttn>(c.block_out_channels[n - 1],
                                                                                            o, gen));
        needs_context_ = true;
    }

    up_blocks = register_module("up_blocks", std::make_shared<nn::ModuleList>());
    out = c.block_out_channels[n - 1];
    for (size_t i = 0; i < n; ++i) {
        const size_t entry = n - 1 - i;  // the reversed per-block lists
        const int64_t prev = out;
        out = c.block_out_channels[entry];
        const int64_t in = c.block_out_channels[entry == 0 ? 0 : entry - 1];  // reversed[min(i + 1, n − 1)]
        const UNetBlockOptions o = block_options(entry, c.layers(entry) + 1, i + 1 < n);
        if (c.up_block_types[i] == "CrossAttnUpBlock2D") {
            up_blocks->push_back(std::make_shared<CrossAttnUpBlock2D>(in, prev, out, o, gen));
            needs_context_ = true;
        } else {
            up_blocks->push_back(std::make_shared<UpBlock2D>(in, prev, out, o, gen));
        }
    }

    conv_norm_out = register_module("conv_norm_out", std::make_shared<nn::GroupNorm>(c.norm_num_groups, c0, c.norm_eps));
    conv_act = register_module("conv_act", std::make_shared<nn::SiLU>());
    conv_out = register_module("conv_out", std::make_shared<nn::Conv2d>(c0, c.out_channels, c.conv_out_kernel, 1,
                                                                        (c.conv_out_kernel - 1) / 2, 1, 1, true, gen));
}

int64_t UNet2DConditionModel::default_overall_up_factor() const {
    return int64_t(1) << (config.num_blocks() - 1);  // every up block but the last upsamples
}

Tensor UNet2DConditionModel::forward(const Tensor&) {
    CXR_FAIL("UNet2DConditionModel: forward needs (sample, timestep, encoder_hidden_states)");
}

Tensor UNet2DConditionModel::forward(const Tensor& sample, double timestep, const Tensor& encoder_hidden_states) {
    // diffusers turns a Python float into a float64 tensor [1] (an int into int64); both reach the sinusoid as f32,
    // so rounding the value to f32 here gives the same embedding (and needs no f64 support on the device).
    Tensor t = ts::full({1}, timestep, ts::DType::f32);
    return forward(sample, t, encoder_hidden_states);
}

Tensor UNet2DConditionModel::forward(const Tensor& sample, const Tensor& timestep, const Tensor& context) {
    const UNet2DConditionConfig& c = config;
    CXR_CHECK(sample.defined() && sample.dim() == 4 && sample.size(1) == c.in_channels,
              "UNet2DConditionModel: sample must be [B, ", c.in_channels, ", H, W], got ",
              sample.defined() ? ts::shape_str(sample.shape()) : std::string("an undefined tensor"));
    const int64_t B = sample.size(0), H = sample.size(2), W = sample.size(3);
    CXR_CHECK(B > 0 && H > 0 && W > 0, "UNet2DConditionModel: sample ", ts::shape_str(sample.shape()), " is empty");
    CXR_CHECK(timestep.defined() && timestep.dim() <= 1 && (timestep.numel() == 1 || timestep.numel() == B),
              "UNet2DConditionModel: timestep must be a scalar, [1] or [", B, "] (the batch), got ",
              timestep.defined() ? ts::shape_str(timestep.shape()) : std::string("an undefined tensor"));
    if (needs_context_) {
        CXR_CHECK(context.defined() && context.dim() == 3 && context.size(0) == B,
                  "UNet2DConditionModel: encoder_hidden_states must be [", B, ", S, ", c.cross_dim(0), "], got ",
                  context.defined() ? ts::shape_str(context.shape()) : std::string("an undefined tensor"));
        if (c.cross_attention_dim.size() == 1)
            CXR_CHECK(context.size(2) == c.cross_dim(0), "UNet2DConditionModel: encoder_hidden_states must be [", B,
                      ", S, ", c.cross_dim(0), "] (cross_attention_dim ", c.cross_dim(0), "), got ",
                      ts::shape_str(context.shape()));
    }

    // Upsample sizes are forwarded when H or W is not a multiple of 2^(number of upsamplers).
    const int64_t factor = default_overall_up_factor();
    const bool forward_upsample_size = H % factor != 0 || W % factor != 0;

    Tensor x = sample;
    if (c.center_input_sample) x = ts::sub(ts::mul(x, 2.0), 1.0);

    // 1. time: [B] -> sinusoid [B, C0] (f32) -> [B, T]
    Tensor t = ts::reshape(timestep, {timestep.numel()});
    if (t.device() != sample.device()) t = ts::to_device(t, sample.device());
    if (t.size(0) != B) t = ts::contiguous(ts::expand(t, {B}));
    Tensor t_emb = time_proj->forward(t);
    if (t_emb.dtype() != sample.dtype()) t_emb = ts::cast(t_emb, sample.dtype());
    Tensor emb = time_embedding->forward(t_emb);  // [B, T]

    // 2. pre-process, 3. down
    Tensor h = conv_in->forward(x);  // [B, C0, H, W]
    std::vector<Tensor> skips{h};
    for (size_t i = 0; i < down_blocks->size(); ++i)
        h = down_blocks->at<UNetDownBlock>(i)->forward(h, emb, context, skips);

    // 4. mid
    if (mid_block) h = mid_block->forward(h, emb, context);

    // 5. up: each block consumes as many skips as it has resnets, last in first out
    std::optional<tensor::Size2> upsample_size;
    for (size_t i = 0; i < up_blocks->size(); ++i) {
        auto block = up_blocks->at<UNetUpBlock>(i);
        const size_t take = block->num_resnets();
        CXR_CHECK(skips.size() >= take, "UNet2DConditionModel: up_blocks.", i, " needs ", take,
                  " skip connections, only ", skips.size(), " are left");
        std::vector<Tensor> res(skips.end() - take, skips.end());
        skips.resize(skips.size() - take);
        const bool is_final = i + 1 == up_blocks->size();
        if (!is_final && forward_upsample_size) {
            CXR_CHECK(!skips.empty(), "UNet2DConditionModel: no skip connection left to size up_blocks.", i, "'s upsampler");
            upsample_size = tensor::Size2{skips.back().size(2), skips.back().size(3)};
        }
        h = block->forward(h, res, emb, context, upsample_size);
    }

    // 6. post-process
    h = conv_act->forward(conv_norm_out->forward(h));
    return conv_out->forward(h);  // [B, out_channels, H, W]
}

}  // namespace cxr::diffusion
