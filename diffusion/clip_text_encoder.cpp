// The CLIP text encoder: config parsing and presets, the blocks, pooling and clip skip (semantics, key names and
// formulas in diffusion/clip_text_encoder.h, after transformers' CLIPTextModel and diffusers' encode_prompt).
#include "diffusion/clip_text_encoder.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

using tensor::DType;
using tensor::Shape;

namespace {

const std::vector<std::string>& known_activations() {
    static const std::vector<std::string> acts = {"quick_gelu", "gelu",  "gelu_new", "gelu_pytorch_tanh",
                                                  "relu",       "silu",  "swish"};
    return acts;
}

bool is_known_activation(const std::string& act) {
    for (const auto& a : known_activations())
        if (a == act) return true;
    return false;
}

std::string activation_list() {
    std::string s;
    for (const auto& a : known_activations()) s += (s.empty() ? "" : ", ") + a;
    return s;
}

// act(x) for the names of transformers' ACT2FN that CLIP configs use.
Tensor activate(const std::string& act, const Tensor& x) {
    if (act == "quick_gelu") return tensor::quick_gelu(x);  // x·σ(1.702 x)
    if (act == "gelu") return tensor::gelu(x);              // x·Φ(x)
    if (act == "gelu_new" || act == "gelu_pytorch_tanh")    // ½x(1 + tanh(√(2/π)(x + 0.044715 x³)))
        return tensor::gelu(x, tensor::GeluApprox::tanh);
    if (act == "relu") return tensor::relu(x);
    if (act == "silu" || act == "swish") return tensor::silu(x);  // x·σ(x)
    CXR_FAIL("CLIP text encoder: unknown hidden_act '", act, "' (known: ", activation_list(), ")");
}

// ---- JSON field readers: each names the key and the source on a bad value ----

int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& source) {
    const auto& v = j.at(key);
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        const double d = v.get<double>();
        CXR_CHECK(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15, source, ": \"", key,
                  "\" must be an integer, got ", v.dump());
        return static_cast<int64_t>(d);
    }
    CXR_FAIL(source, ": \"", key, "\" must be an integer, got ", v.dump());
}

// bos/pad may be null in a config (transformers allows None): stored as -1.
int64_t json_int_or_null(const nlohmann::json& j, const std::string& key, const std::string& source) {
    if (j.at(key).is_null()) return -1;
    return json_int(j, key, source);
}

double json_double(const nlohmann::json& j, const std::string& key, const std::string& source) {
    const auto& v = j.at(key);
    CXR_CHECK(v.is_number(), source, ": \"", key, "\" must be a number, got ", v.dump());
    return v.get<double>();
}

std::string json_string(const nlohmann::json& j, const std::string& key, const std::string& source) {
    const auto& v = j.at(key);
    CXR_CHECK(v.is_string(), source, ": \"", key, "\" must be a string, got ", v.dump());
    return v.get<std::string>();
}

// Reads the token ids to the host as int64 (after checking their dtype and rank).
std::vector<int64_t> host_ids(const Tensor& ids) {
    return ids.to(tensor::Device::cpu()).to(DType::i64).contiguous().to_vector<int64_t>();
}

void check_ids_tensor(const Tensor& ids, const char* who) {
    CXR_CHECK(ids.defined(), who, ": token ids are undefined");
    CXR_CHECK(ids.dtype() == DType::i64 || ids.dtype() == DType::i32, who, ": token ids must be i64 or i32, got ",
              tensor::dtype_name(ids.dtype()));
    CXR_CHECK(ids.dim() == 2, who, ": expected token ids [B, L], got shape ", tensor::shape_str(ids.sizes()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// ClipTextConfig

void ClipTextConfig::validate(const std::string& who) const {
    CXR_CHECK(vocab_size > 0, who, ": vocab_size must be positive, got ", vocab_size);
    CXR_CHECK(hidden_size > 0, who, ": hidden_size must be positive, got ", hidden_size);
    CXR_CHECK(intermediate_size > 0, who, ": intermediate_size must be positive, got ", intermediate_size);
    CXR_CHECK(num_hidden_layers > 0, who, ": num_hidden_layers must be positive, got ", num_hidden_layers);
    CXR_CHECK(num_attention_heads > 0, who, ": num_attention_heads must be positive, got ", num_attention_heads);
    CXR_CHECK(hidden_size % num_attention_heads == 0, who, ": hidden_size ", hidden_size,
              " is not divisible by num_attention_heads ", num_attention_heads);
    CXR_CHECK(max_position_embeddings > 0, who, ": max_position_embeddings must be positive, got ",
              max_position_embeddings);
    CXR_CHECK(is_known_activation(hidden_act), who, ": hidden_act '", hidden_act, "' is not supported (known: ",
              activation_list(), ")");
    CXR_CHECK(std::isfinite(layer_norm_eps) && layer_norm_eps > 0, who, ": layer_norm_eps must be positive, got ",
              layer_norm_eps);
    CXR_CHECK(eos_token_id >= 0 && eos_token_id < vocab_size, who, ": eos_token_id ", eos_token_id,
              " is outside the vocabulary [0, ", vocab_size, ")");
    CXR_CHECK(bos_token_id >= -1 && bos_token_id < vocab_size, who, ": bos_token_id ", bos_token_id,
              " is outside the vocabulary [0, ", vocab_size, ")");
    CXR_CHECK(pad_token_id >= -1 && pad_token_id < vocab_size, who, ": pad_token_id ", pad_token_id,
              " is outside the vocabulary [0, ", vocab_size, ")");
    CXR_CHECK(projection_dim > 0, who, ": projection_dim must be positive, got ", projection_dim);
    CXR_CHECK(std::isfinite(initializer_factor) && initializer_factor >= 0, who,
              ": initializer_factor must be finite and >= 0, got ", initializer_factor);
    CXR_CHECK(std::isfinite(initializer_range) && initializer_range >= 0, who,
              ": initializer_range must be finite and >= 0, got ", initializer_range);
    CXR_CHECK(attention_dropout == 0.0, who, ": attention_dropout ", attention_dropout,
              " is not supported (only 0, as every released CLIP text encoder)");
}

int64_t ClipTextConfig::num_parameters() const {
    const int64_t V = vocab_size, D = hidden_size, F = intermediate_size, N = num_hidden_layers,
                  P = max_position_embeddings;
    const int64_t per_layer = 4 * (D * D + D) + 2 * F * D + F + D + 4 * D;
    return V * D + P * D + N * per_layer + 2 * D;
}

ClipTextConfig ClipTextConfig::from_json(const std::string& json_text, const std::string& source) {
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::exception& e) {
        CXR_FAIL(source, ": not valid JSON (", e.what(), ")");
    }
    CXR_CHECK(root.is_object(), source, ": expected a JSON object");
    const nlohmann::json* j = &root;
    std::string src = source;
    if (root.contains("text_config") && !root.at("text_config").is_null()) {
        CXR_CHECK(root.at("text_config").is_object(), source, ": \"text_config\" must be an object");
        j = &root.at("text_config");
        src = source + " (text_config)";
    }
    ClipTextConfig c;
    auto has = [&](const char* k) { return j->contains(k); };
    if (has("vocab_size")) c.vocab_size = json_int(*j, "vocab_size", src);
    if (has("hidden_size")) c.hidden_size = json_int(*j, "hidden_size", src);
    if (has("intermediate_size")) c.intermediate_size = json_int(*j, "intermediate_size", src);
    if (has("num_hidden_layers")) c.num_hidden_layers = json_int(*j, "num_hidden_layers", src);
    if (has("num_attention_heads")) c.num_attention_heads = json_int(*j, "num_attention_heads", src);
    if (has("max_position_embeddings")) c.max_position_embeddings = json_int(*j, "max_position_embeddings", src);
    if (has("hidden_act")) c.hidden_act = json_string(*j, "hidden_act", src);
    if (has("layer_norm_eps")) c.layer_norm_eps = json_double(*j, "layer_norm_eps", src);
    if (has("bos_token_id")) c.bos_token_id = json_int_or_null(*j, "bos_token_id", src);
    if (has("pad_token_id")) c.pad_token_id = json_int_or_null(*j, "pad_token_id", src);
    if (has("eos_token_id")) c.eos_token_id = json_int(*j, "eos_token_id", src);
    if (has("projection_dim")) c.projection_dim = json_int(*j, "projection_dim", src);
    else if (j != &root && root.contains("projection_dim")) c.projection_dim = json_int(root, "projection_dim", source);
    if (has("initializer_factor")) c.initializer_factor = json_double(*j, "initializer_factor", src);
    if (has("initializer_range")) c.initializer_range = json_double(*j, "initializer_range", src);
    if (has("attention_dropout")) c.attention_dropout = json_double(*j, "attention_dropout", src);
    c.validate(src);
    return c;
}

ClipTextConfig ClipTextConfig::from_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    CXR_CHECK(in.good(), "ClipTextConfig: cannot open ", path);
    std::ostringstream ss;
    ss << in.rdbuf();
    CXR_CHECK(!in.bad(), "ClipTextConfig: error reading ", path);
    return from_json(ss.str(), path);
}

std::string ClipTextConfig::to_json() const {
    nlohmann::json j;
    j["architectures"] = {"CLIPTextModel"};
    j["model_type"] = "clip_text_model";
    j["vocab_size"] = vocab_size;
    j["hidden_size"] = hidden_size;
    j["intermediate_size"] = intermediate_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["max_position_embeddings"] = max_position_embeddings;
    j["hidden_act"] = hidden_act;
    j["layer_norm_eps"] = layer_norm_eps;
    j["bos_token_id"] = bos_token_id < 0 ? nlohmann::json(nullptr) : nlohmann::json(bos_token_id);
    j["eos_token_id"] = eos_token_id;
    j["pad_token_id"] = pad_token_id < 0 ? nlohmann::json(nullptr) : nlohmann::json(pad_token_id);
    j["projection_dim"] = projection_dim;
    j["initializer_factor"] = initializer_factor;
    j["initializer_range"] = initializer_range;
    j["attention_dropout"] = attention_dropout;
    j["torch_dtype"] = "float32";
    return j.dump(2);
}

ClipTextConfig ClipTextConfig::sd15() {
    ClipTextConfig c;
    c.vocab_size = 49408;
    c.hidden_size = 768;
    c.intermediate_size = 3072;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 12;
    c.max_position_embeddings = 77;
    c.hidden_act = "quick_gelu";
    c.layer_norm_eps = 1e-5;
    c.bos_token_id = 0;
    c.eos_token_id = 2;
    c.pad_token_id = 1;
    c.projection_dim = 768;
    return c;
}

ClipTextConfig ClipTextConfig::sd21() {
    ClipTextConfig c;
    c.vocab_size = 49408;
    c.hidden_size = 1024;
    c.intermediate_size = 4096;
    c.num_hidden_layers = 23;
    c.num_attention_heads = 16;
    c.max_position_embeddings = 77;
    c.hidden_act = "gelu";
    c.layer_norm_eps = 1e-5;
    c.bos_token_id = 0;
    c.eos_token_id = 2;
    c.pad_token_id = 1;
    c.projection_dim = 512;
    return c;
}

ClipTextConfig ClipTextConfig::tiny() {
    ClipTextConfig c;
    c.vocab_size = 1000;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.max_position_embeddings = 77;
    c.hidden_act = "quick_gelu";
    c.bos_token_id = 998;
    c.eos_token_id = 999;
    c.pad_token_id = 999;
    c.projection_dim = 32;
    return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks

ClipTextEmbeddings::ClipTextEmbeddings(const ClipTextConfig& c, tensor::Generator* gen) : Module("CLIPTextEmbeddings") {
    token_embedding = register_module("token_embedding",
                                      std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, std::nullopt, gen));
    position_embedding = register_module(
            "position_embedding",
            std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size, std::nullopt, gen));
}

Tensor ClipTextEmbeddings::forward(const Tensor& ids) {
    const int64_t L = ids.size(1);
    const Tensor tok = token_embedding->forward(ids);                  // [B, L, D]
    const Tensor pos = position_embedding->weight.narrow(0, 0, L);     // [L, D]  (position_ids = 0..L-1)
    return tensor::add(tok, pos);                                      // [B, L, D]
}

ClipAttention::ClipAttention(const ClipTextConfig& c, tensor::Generator* gen)
    : Module("CLIPAttention"), num_heads(c.num_attention_heads), head_dim(c.head_dim()) {
    const int64_t D = c.hidden_size;
    // registration order as torch's (k, v, q, out), so named_parameters() lists them in the same order
    k_proj = register_module("k_proj", std::make_shared<nn::Linear>(D, D, true, gen));
    v_proj = register_module("v_proj", std::make_shared<nn::Linear>(D, D, true, gen));
    q_proj = register_module("q_proj", std::make_shared<nn::Linear>(D, D, true, gen));
    out_proj = register_module("out_proj", std::make_shared<nn::Linear>(D, D, true, gen));
}

Tensor ClipAttention::forward(const Tensor& x, const Tensor& mask) {
    CXR_CHECK(x.dim() == 3 && x.size(2) == num_heads * head_dim, "CLIPAttention: expected input [B, L, ",
              num_heads * head_dim, "], got ", tensor::shape_str(x.sizes()));
    const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
    auto heads = [&](const Tensor& t) {  // [B, L, D] -> [B, H, L, d]
        return t.reshape({B, L, num_heads, head_dim}).transpose(1, 2);
    };
    const Tensor q = heads(q_proj->forward(x));
    const Tensor k = heads(k_proj->forward(x));
    const Tensor v = heads(v_proj->forward(x));
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    // softmax(q kᵀ/√d + M) v: the causal mask alone, or the combined causal + padding mask
    const Tensor o = mask.defined() ? tensor::scaled_dot_product_attention(q, k, v, mask, false, scale)
                                    : tensor::scaled_dot_product_attention(q, k, v, Tensor(), true, scale);  // [B, H, L, d]
    return out_proj->forward(o.transpose(1, 2).reshape({B, L, D}));  // [B, L, D]
}

ClipMlp::ClipMlp(const ClipTextConfig& c, tensor::Generator* gen) : Module("CLIPMLP"), hidden_act(c.hidden_act) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size, true, gen));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(c.intermediate_size, c.hidden_size, true, gen));
}

Tensor ClipMlp::forward(const Tensor& x) { return fc2->forward(activate(hidden_act, fc1->forward(x))); }

ClipEncoderLayer::ClipEncoderLayer(const ClipTextConfig& c, tensor::Generator* gen) : Module("CLIPEncoderLayer") {
    self_attn = register_module("self_attn", std::make_shared<ClipAttention>(c, gen));
    layer_norm1 = register_module("layer_norm1", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
    mlp = register_module("mlp", std::make_shared<ClipMlp>(c, gen));
    layer_norm2 = register_module("layer_norm2", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
}

Tensor ClipEncoderLayer::forward(const Tensor& h, const Tensor& mask) {
    Tensor x = tensor::add(h, self_attn->forward(layer_norm1->forward(h), mask));  // h + attn(LN₁ h)
    return tensor::add(x, mlp->forward(layer_norm2->forward(x)));                   // x + mlp(LN₂ x)
}

ClipEncoder::ClipEncoder(const ClipTextConfig& c, tensor::Generator* gen) : Module("CLIPEncoder") {
    layers = register_module("layers", std::make_shared<nn::ModuleList>());
    for (int64_t n = 0; n < c.num_hidden_layers; ++n) layers->push_back(std::make_shared<ClipEncoderLayer>(c, gen));
}

std::shared_ptr<ClipEncoderLayer> ClipEncoder::layer(int64_t n) const {
    return layers->at<ClipEncoderLayer>(static_cast<size_t>(n));
}

// ---------------------------------------------------------------------------------------------------------------
// Pooling and key normalisation

std::vector<int64_t> clip_pooling_positions(const Tensor& ids, int64_t eos_token_id) {
    check_ids_tensor(ids, "clip_pooling_positions");
    const int64_t B = ids.size(0), L = ids.size(1);
    const std::vector<int64_t> v = host_ids(ids);
    std::vector<int64_t> pos(static_cast<size_t>(B), 0);
    for (int64_t b = 0; b < B; ++b) {
        const int64_t* row = v.data() + b * L;
        int64_t p = 0;
        if (eos_token_id == 2) {  // legacy: first position of the largest id
            for (int64_t j = 1; j < L; ++j)
                if (row[j] > row[p]) p = j;
        } else {  // first position equal to eos (0 when absent)
            for (int64_t j = 0; j < L; ++j)
                if (row[j] == eos_token_id) {
                    p = j;
                    break;
                }
        }
        pos[static_cast<size_t>(b)] = p;
    }
    return pos;
}

std::map<std::string, Shape> clip_text_state_shapes(const ClipTextConfig& c, bool with_projection) {
    c.validate();
    const int64_t D = c.hidden_size, F = c.intermediate_size;
    std::map<std::string, Shape> s;
    const std::string t = "text_model.";
    s[t + "embeddings.token_embedding.weight"] = {c.vocab_size, D};
    s[t + "embeddings.position_embedding.weight"] = {c.max_position_embeddings, D};
    for (int64_t n = 0; n < c.num_hidden_layers; ++n) {
        const std::string l = t + "encoder.layers." + std::to_string(n) + ".";
        for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"}) {
            s[l + "self_attn." + proj + ".weight"] = {D, D};
            s[l + "self_attn." + proj + ".bias"] = {D};
        }
        for (const char* norm : {"layer_norm1", "layer_norm2"}) {
            s[l + norm + ".weight"] = {D};
            s[l + norm + ".bias"] = {D};
        }
        s[l + "mlp.fc1.weight"] = {F, D};
        s[l + "mlp.fc1.bias"] = {F};
        s[l + "mlp.fc2.weight"] = {D, F};
        s[l + "mlp.fc2.bias"] = {D};
    }
    s[t + "final_layer_norm.weight"] = {D};
    s[t + "final_layer_norm.bias"] = {D};
    if (with_projection) s["text_projection.weight"] = {c.projection_dim, D};
    return s;
}

nn::StateDict normalize_clip_text_keys(const nn::StateDict& state) {
    const std::string prefix = "text_model.";
    for (const auto& [k, v] : state)
        if (k.rfind(prefix, 0) == 0) return state;  // already in the checkpoint layout
    nn::StateDict out;
    for (const auto& [k, v] : state) {
        const bool inner = k.rfind("embeddings.", 0) == 0 || k.rfind("encoder.", 0) == 0 ||
                           k.rfind("final_layer_norm.", 0) == 0;
        out[inner ? prefix + k : k] = v;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// ClipTextTransformer

namespace {

// transformers' CLIPPreTrainedModel._init_weights for the text tower (formulas in the header).
void init_clip_text(ClipTextTransformer& tm, const ClipTextConfig& c, tensor::Generator* gen) {
    namespace init = nn::init;
    tensor::NoGradGuard ng;
    const double f = c.initializer_factor;
    const double D = static_cast<double>(c.hidden_size);
    const double two_n = 2.0 * static_cast<double>(c.num_hidden_layers);
    init::normal_(tm.embeddings->token_embedding->weight, 0.0, 0.02 * f, gen);
    init::normal_(tm.embeddings->position_embedding->weight, 0.0, 0.02 * f, gen);
    const double in_proj_std = std::pow(D, -0.5) * std::pow(two_n, -0.5) * f;
    const double out_proj_std = std::pow(D, -0.5) * f;
    const double fc_std = std::pow(2.0 * D, -0.5) * f;
    for (int64_t n = 0; n < c.num_hidden_layers; ++n) {
        auto layer = tm.encoder->layer(n);
        auto& a = *layer->self_attn;
        for (auto* lin : {a.q_proj.get(), a.k_proj.get(), a.v_proj.get()}) {
            init::normal_(lin->weight, 0.0, in_proj_std, gen);
            init::zeros_(lin->bias);
        }
        init::normal_(a.out_proj->weight, 0.0, out_proj_std, gen);
        init::zeros_(a.out_proj->bias);
        init::normal_(layer->mlp->fc1->weight, 0.0, fc_std, gen);
        init::zeros_(layer->mlp->fc1->bias);
        init::normal_(layer->mlp->fc2->weight, 0.0, in_proj_std, gen);
        init::zeros_(layer->mlp->fc2->bias);
    }
}

}  // namespace

ClipTextTransformer::ClipTextTransformer(const ClipTextConfig& c, tensor::Generator* gen)
    : Module("CLIPTextTransformer"), config(c) {
    config.validate();
    embeddings = register_module("embeddings", std::make_shared<ClipTextEmbeddings>(config, gen));
    encoder = register_module("encoder", std::make_shared<ClipEncoder>(config, gen));
    final_layer_norm = register_module(
            "final_layer_norm", std::make_shared<nn::LayerNorm>(Shape{config.hidden_size}, config.layer_norm_eps));
    init_clip_text(*this, config, gen);
}

Tensor ClipTextTransformer::prepare(const Tensor& ids, const Tensor& attention_mask, Tensor& mask,
                                    std::vector<int64_t>* pool_pos) {
    const char* who = "CLIPTextModel";
    check_ids_tensor(ids, who);
    const int64_t B = ids.size(0), L = ids.size(1);
    CXR_CHECK(B > 0 && L > 0, who, ": empty token ids ", tensor::shape_str(ids.sizes()));
    CXR_CHECK(L <= config.max_position_embeddings, who, ": sequence length ", L, " exceeds max_position_embeddings ",
              config.max_position_embeddings);
    const std::vector<int64_t> v = host_ids(ids);
    for (int64_t i = 0; i < B * L; ++i)
        CXR_CHECK(v[static_cast<size_t>(i)] >= 0 && v[static_cast<size_t>(i)] < config.vocab_size, who, ": token id ",
                  v[static_cast<size_t>(i)], " at [", i / L, ", ", i % L, "] is outside the vocabulary [0, ",
                  config.vocab_size, ")");
    if (pool_pos) *pool_pos = clip_pooling_positions(ids, config.eos_token_id);

    const tensor::Device dev = embeddings->token_embedding->weight.device();
    mask = Tensor();
    if (attention_mask.defined()) {
        CXR_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == L, who,
                  ": attention_mask must have the token ids' shape [", B, ", ", L, "], got ",
                  tensor::shape_str(attention_mask.sizes()));
        const std::vector<double> keep =
                attention_mask.to(tensor::Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
        bool all = true;
        for (double k : keep) all = all && k != 0.0;
        if (!all) {  // causal AND padding: allowed(b, i, j) = j <= i and attention_mask[b, j] != 0
            std::vector<uint8_t> m(static_cast<size_t>(B * L * L), 0);
            for (int64_t b = 0; b < B; ++b)
                for (int64_t i = 0; i < L; ++i)
                    for (int64_t j = 0; j <= i; ++j)
                        m[static_cast<size_t>((b * L + i) * L + j)] = keep[static_cast<size_t>(b * L + j)] != 0.0;
            mask = tensor::from_blob_copy(m.data(), {B, 1, L, L}, DType::boolean, dev);  // [B, 1, L, L]
        }
    }
    return embeddings->forward(ids.device() == dev ? ids : ids.to(dev));  // h⁰ [B, L, D]
}

ClipTextOutput ClipTextTransformer::run(const Tensor& ids, const ClipTextOptions& options) {
    const int64_t N = config.num_hidden_layers;
    CXR_CHECK(options.clip_skip >= 0 && options.clip_skip <= N, "CLIPTextModel: clip_skip must be in [0, ", N,
              "] (the number of layers), got ", options.clip_skip);
    Tensor mask;
    std::vector<int64_t> pool_pos;
    Tensor h = prepare(ids, options.attention_mask, mask, &pool_pos);  // [B, L, D]
    ClipTextOutput out;
    const int64_t keep_index = N - options.clip_skip;  // hidden_states index of the prompt embeddings
    Tensor skip_hidden;
    if (options.output_hidden_states) out.hidden_states.push_back(h);
    if (keep_index == 0) skip_hidden = h;
    for (int64_t n = 0; n < N; ++n) {
        h = encoder->layer(n)->forward(h, mask);
        if (options.output_hidden_states) out.hidden_states.push_back(h);
        if (n + 1 == keep_index) skip_hidden = h;
    }
    out.last_hidden_state = final_layer_norm->forward(h);  // [B, L, D]
    out.prompt_embeds =
            options.clip_skip == 0 ? out.last_hidden_state : final_layer_norm->forward(skip_hidden);  // [B, L, D]
    // pooled[b] = last_hidden_state[b, p_b]: rows b·L + p_b of the flattened [B·L, D]
    const int64_t B = ids.size(0), L = ids.size(1);
    std::vector<int64_t> rows(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) rows[static_cast<size_t>(b)] = b * L + pool_pos[static_cast<size_t>(b)];
    const Tensor index = tensor::from_vector(rows, {B}, tensor::Options(DType::i64, h.device()));
    out.pooled_output = tensor::index_select(out.last_hidden_state.reshape({B * L, config.hidden_size}), 0, index);
    return out;
}

Tensor ClipTextTransformer::encode(const Tensor& ids, int64_t clip_skip, const Tensor& attention_mask) {
    const int64_t N = config.num_hidden_layers;
    CXR_CHECK(clip_skip >= 0 && clip_skip <= N, "CLIPTextModel: clip_skip must be in [0, ", N,
              "] (the number of layers), got ", clip_skip);
    Tensor mask;
    Tensor h = prepare(ids, attention_mask, mask, nullptr);  // [B, L, D]
    for (int64_t n = 0; n < N - clip_skip; ++n) h = encoder->layer(n)->forward(h, mask);
    return final_layer_norm->forward(h);  // [B, L, D]
}

// ---------------------------------------------------------------------------------------------------------------
// The two models

ClipTextModel::ClipTextModel(const ClipTextConfig& c, tensor::Generator* gen) : Module("CLIPTextModel") {
    text_model = register_module("text_model", std::make_shared<ClipTextTransformer>(c, gen));
}

ClipTextOutput ClipTextModel::forward_text(const Tensor& ids, const ClipTextOptions& options) {
    return text_model->run(ids, options);
}

Tensor ClipTextModel::encode(const Tensor& ids, int64_t clip_skip, const Tensor& attention_mask) {
    return text_model->encode(ids, clip_skip, attention_mask);
}

Tensor ClipTextModel::forward(const Tensor& ids) { return text_model->encode(ids, 0, Tensor()); }

ClipTextModelWithProjection::ClipTextModelWithProjection(const ClipTextConfig& c, tensor::Generator* gen)
    : Module("CLIPTextModelWithProjection") {
    text_model = register_module("text_model", std::make_shared<ClipTextTransformer>(c, gen));
    const ClipTextConfig& cfg = text_model->config;
    text_projection = register_module("text_projection",
                                      std::make_shared<nn::Linear>(cfg.hidden_size, cfg.projection_dim, false, gen));
    tensor::NoGradGuard ng;
    nn::init::normal_(text_projection->weight, 0.0,
                      std::pow(static_cast<double>(cfg.hidden_size), -0.5) * cfg.initializer_factor, gen);
}

ClipTextOutput ClipTextModelWithProjection::forward_text(const Tensor& ids, const ClipTextOptions& options) {
    ClipTextOutput out = text_model->run(ids, options);
    out.text_embeds = text_projection->forward(out.pooled_output);  // [B, E]
    return out;
}

Tensor ClipTextModelWithProjection::forward(const Tensor& ids) { return forward_text(ids).text_embeds; }

}  // namespace cxr::diffusion
