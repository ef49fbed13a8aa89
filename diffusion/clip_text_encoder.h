// The CLIP text encoder (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
// Supervision") as Stable Diffusion uses it for its conditioning, with the semantics and checkpoint keys of
// transformers' CLIPTextModel / CLIPTextModelWithProjection, so that the text_encoder/model.safetensors of a diffusers
// pipeline folder loads strictly:
//
//   text_model.embeddings.token_embedding.weight          [V, D]
//   text_model.embeddings.position_embedding.weight       [P, D]
//   text_model.encoder.layers.N.self_attn.{k,v,q,out}_proj.{weight [D, D], bias [D]}
//   text_model.encoder.layers.N.layer_norm1.{weight, bias} [D]
//   text_model.encoder.layers.N.mlp.fc1.{weight [F, D], bias [F]},  mlp.fc2.{weight [D, F], bias [D]}
//   text_model.encoder.layers.N.layer_norm2.{weight, bias} [D]
//   text_model.final_layer_norm.{weight, bias}              [D]
//   text_projection.weight                                  [E, D]   (ClipTextModelWithProjection only)
// The non-persistent "text_model.embeddings.position_ids" buffer (arange(P)) that older checkpoints contain is a
// known harmless extra (nn::LoadOptions drops it by name). transformers >= 5 builds CLIPTextModel without the
// "text_model." level and saves without it; normalize_clip_text_keys() adds the prefix back to such a dictionary.
//
// The computation, for token ids t [B, L] (L <= P), H heads of size d = D/H, activation act:
//   h⁰ = E_tok[t] + E_pos[0..L)                                               (embeddings)          [B, L, D]
//   for each layer n = 1..N (pre-LayerNorm transformer):
//     a  = LN₁(hⁿ⁻¹);  q, k, v = a W_qᵀ + b_q, ...  split into heads                                 [B, H, L, d]
//     o  = softmax(q kᵀ / √d + M) v,  M = −∞ where j > i (causal) or where attention_mask[b, j] = 0
//     hⁿ = hⁿ⁻¹ + concat_heads(o) W_outᵀ + b_out
//     hⁿ = hⁿ + fc2(act(fc1(LN₂(hⁿ))))
//   last_hidden_state = LN_final(hᴺ)                                                                [B, L, D]
//   hidden_states[i] = hⁱ, i = 0..N (transformers' numbering: 0 = the embeddings, N = the last layer before LN_final)
//   pooled_output[b] = last_hidden_state[b, p_b] with p_b (transformers' rule):
//     eos_token_id == 2 (the configs of SD 1.x/2.x, written before transformers PR #24773): the position of the
//       largest token id (its first occurrence) — the end token 49407 is the largest id of the CLIP vocabulary;
//     otherwise: the first position whose id equals eos_token_id (position 0 when there is none, as argmax of
//       an all-zero row).
//   text_embeds = pooled_output W_projᵀ                                         (with projection)    [B, E]
//   act: quick_gelu(x) = x·σ(1.702 x) (OpenAI CLIP, SD 1.x), gelu (exact erf; OpenCLIP ViT-H, SD 2.x),
//        gelu_new / gelu_pytorch_tanh (tanh approximation), relu, silu/swish.
//   The padding mask is combined with the causal mask as transformers does; a query row whose keys are all masked
//   (possible only with left padding where position 0 is padding) gives zeros here (the safe-softmax rule of
//   tensor/ops/attention.h).
//
// "clip skip" (diffusers' StableDiffusionPipeline.encode_prompt, clip_skip = k > 0): the prompt embeddings are
// LN_final(hidden_states[N − k]) (its hidden_states[-(k + 1)]); k = 0 (diffusers' None) gives last_hidden_state.
// encode() runs only the N − k layers it needs; the outputs are identical.
//
// Initialisation as transformers' CLIPPreTrainedModel._init_weights (f = initializer_factor): token and position
// embeddings N(0, (0.02 f)²); q/k/v_proj N(0, (D^−½ (2N)^−½ f)²), out_proj N(0, (D^−½ f)²); fc1 N(0, ((2D)^−½ f)²),
// fc2 N(0, (D^−½ (2N)^−½ f)²); text_projection N(0, (D^−½ f)²); Linear biases 0; LayerNorm weight 1, bias 0.
// Values come from cxr's Philox generator (the distributions match, the numbers do not).
//
// Presets: sd15() = openai/clip-vit-large-patch14's text tower as in SD 1.x's text_encoder/config.json (V 49408,
// D 768, F 3072, N 12, H 12, P 77, quick_gelu; 123,060,480 parameters); sd21() = the OpenCLIP ViT-H/14 text tower
// as in SD 2.x's text_encoder/config.json (D 1024, F 4096, N 23 — OpenCLIP's 24th layer is dropped — H 16, gelu;
// 340,387,840 parameters); both with bos 0, eos 2, pad 1 as those configs (so the legacy pooling rule applies).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/basic.h"
#include "nn/container.h"
#include "nn/module.h"
#include "nn/norm.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::diffusion {

using nn::Module;
using tensor::Tensor;

// transformers' CLIPTextConfig fields; the defaults are transformers' defaults (so a config.json that omits a key
// means the same here as there).
struct ClipTextConfig {
    int64_t vocab_size = 49408;               // V
    int64_t hidden_size = 512;                // D
    int64_t intermediate_size = 2048;         // F
    int64_t num_hidden_layers = 12;           // N
    int64_t num_attention_heads = 8;          // H
    int64_t max_position_embeddings = 77;     // P
    std::string hidden_act = "quick_gelu";    // quick_gelu | gelu | gelu_new | gelu_pytorch_tanh | relu | silu | swish
    double layer_norm_eps = 1e-5;
    int64_t bos_token_id = 49406;
    int64_t eos_token_id = 49407;             // 2 selects the legacy pooling rule (header comment)
    int64_t pad_token_id = 1;
    int64_t projection_dim = 512;             // E, used by ClipTextModelWithProjection only
    double initializer_factor = 1.0;
    double initializer_range = 0.02;          // recorded for round trips; the CLIP init uses the formulas above
    double attention_dropout = 0.0;           // only 0 is supported (every released CLIP text config has 0)

    // Throws cxr::Error naming the field when a value is out of range (sizes must be positive, D divisible by H,
    // a known activation, eps > 0, attention_dropout 0, eos_token_id inside the vocabulary, ...); `where` starts
    // the message (from_json passes the file name).
    void validate(const std::string& where = "ClipTextConfig") const;
    int64_t head_dim() const { return hidden_size / num_attention_heads; }
    // Parameters of ClipTextModel (without the projection) by the layer formula:
    //   V·D + P·D + N·(4·(D² + D) + 2·F·D + F + D + 4·D) + 2·D
    int64_t num_parameters() const;

    // Parses a transformers config.json (the text_encoder/config.json of a pipeline, or a full CLIPModel config,
    // whose nested "text_config" object is used). Unknown keys are ignored; a known key with a value of the wrong
    // type or out of range throws naming the key and `source`. The result is validated.
    static ClipTextConfig from_json(const std::string& json_text, const std::string& source = "config.json");
    static ClipTextConfig from_json_file(const std::string& path);
    // The config as transformers writes it (model_type "clip_text_model"; the keys above).
    std::string to_json() const;

    static ClipTextConfig sd15();  // SD 1.x text encoder (CLIP ViT-L/14 text tower)
    static ClipTextConfig sd21();  // SD 2.x text encoder (OpenCLIP ViT-H/14 text tower, 23 layers)
    // A small config for tests and the CPU demo: V 1000, D 32, F 64, N 2, H 4, P 77, quick_gelu, bos 998,
    // eos 999 (new-style pooling), pad 999, projection 32.
    static ClipTextConfig tiny();
};

// ---- the blocks (transformers' class names as type names) ----

class ClipTextEmbeddings : public Module {
public:
    ClipTextEmbeddings(const ClipTextConfig& config, tensor::Generator* gen);
    // ids [B, L] (i64/i32, already checked) -> E_tok[ids] + E_pos[0..L)  [B, L, D]
    Tensor forward(const Tensor& ids) override;

    std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
};

class ClipAttention : public Module {
public:
    ClipAttention(const ClipTextConfig& config, tensor::Generator* gen);
    // x [B, L, D]; mask: bool [B, 1, L, L] (true = attend) or undefined for the causal mask alone -> [B, L, D]
    Tensor forward(const Tensor& x, const Tensor& mask);
    Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

    int64_t num_heads, head_dim;
    std::shared_ptr<nn::Linear> k_proj, v_proj, q_proj, out_proj;
};

class ClipMlp : public Module {
public:
    ClipMlp(const ClipTextConfig& config, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [..., D] -> fc2(act(fc1(x))) [..., D]

    std::string hidden_act;
    std::shared_ptr<nn::Linear> fc1, fc2;
};

class ClipEncoderLayer : public Module {
public:
    ClipEncoderLayer(const ClipTextConfig& config, tensor::Generator* gen);
    // h [B, L, D] -> h + attn(LN₁ h), then + mlp(LN₂ ·)  [B, L, D]; mask as ClipAttention
    Tensor forward(const Tensor& h, const Tensor& mask);
    Tensor forward(const Tensor& h) override { return forward(h, Tensor()); }

    std::shared_ptr<ClipAttention> self_attn;
    std::shared_ptr<nn::LayerNorm> layer_norm1;
    std::shared_ptr<ClipMlp> mlp;
    std::shared_ptr<nn::LayerNorm> layer_norm2;
};

class ClipEncoder : public Module {
public:
    ClipEncoder(const ClipTextConfig& config, tensor::Generator* gen);
    std::shared_ptr<nn::ModuleList> layers;  // "layers.0", "layers.1", ... (ClipEncoderLayer)
    std::shared_ptr<ClipEncoderLayer> layer(int64_t n) const;
};

// What a forward pass can return.
struct ClipTextOptions {
    // [B, L], 1 (or true / non-zero) = a prompt token, 0 = padding; any integer, bool or floating dtype; undefined
    // = no padding mask (SD pipelines pass none unless text_encoder.config.use_attention_mask is set).
    Tensor attention_mask;
    bool output_hidden_states = false;  // fill ClipTextOutput::hidden_states (N + 1 tensors)
    int64_t clip_skip = 0;              // prompt_embeds as diffusers' clip_skip (0 = last_hidden_state)
};

struct ClipTextOutput {
    Tensor last_hidden_state;           // [B, L, D], after final_layer_norm
    Tensor pooled_output;               // [B, D]
    std::vector<Tensor> hidden_states;  // [B, L, D] × (N + 1) when asked for; [0] = embeddings
    Tensor prompt_embeds;               // [B, L, D]: last_hidden_state, or LN_final(hidden_states[N − clip_skip])
    Tensor text_embeds;                 // [B, E] (ClipTextModelWithProjection only)
};

// transformers' CLIPTextTransformer: embeddings, encoder, final_layer_norm (the "text_model" of the checkpoints).
class ClipTextTransformer : public Module {
public:
    ClipTextTransformer(const ClipTextConfig& config, tensor::Generator* gen);
    ClipTextOutput run(const Tensor& ids, const ClipTextOptions& options);
    // The conditioning of a diffusion model: the prompt embeddings for clip_skip (runs N − clip_skip layers).
    Tensor encode(const Tensor& ids, int64_t clip_skip, const Tensor& attention_mask);
    Tensor forward(const Tensor& ids) override { return run(ids, {}).last_hidden_state; }

    ClipTextConfig config;
    std::shared_ptr<ClipTextEmbeddings> embeddings;
    std::shared_ptr<ClipEncoder> encoder;
    std::shared_ptr<nn::LayerNorm> final_layer_norm;

private:
    // Checks ids [B, L] (dtype, rank, L <= P, every id in [0, V)) and returns the embeddings h⁰ and the attention
    // mask for the layers (undefined when the causal mask alone applies); also the pooled positions.
    Tensor prepare(const Tensor& ids, const Tensor& attention_mask, Tensor& mask, std::vector<int64_t>* pool_pos);
};

// transformers' CLIPTextModel (what SD pipelines load as text_encoder).
class ClipTextModel : public Module {
public:
    explicit ClipTextModel(const ClipTextConfig& config, tensor::Generator* gen = nullptr);
    // ids [B, L] -> everything in ClipTextOutput (text_embeds undefined)
    ClipTextOutput forward_text(const Tensor& ids, const ClipTextOptions& options = {});
    // ids [B, L] -> the prompt embeddings [B, L, D] (diffusers' encode_prompt for one batch of token ids)
    Tensor encode(const Tensor& ids, int64_t clip_skip = 0, const Tensor& attention_mask = Tensor());
    // ids [B, L] -> last_hidden_state [B, L, D]
    Tensor forward(const Tensor& ids) override;

    const ClipTextConfig& config() const { return text_model->config; }
    std::shared_ptr<ClipTextTransformer> text_model;
};

// transformers' CLIPTextModelWithProjection (SDXL's second text encoder, CLIP text embeddings for retrieval):
// also text_embeds = pooled_output W_projᵀ.
class ClipTextModelWithProjection : public Module {
public:
    explicit ClipTextModelWithProjection(const ClipTextConfig& config, tensor::Generator* gen = nullptr);
    ClipTextOutput forward_text(const Tensor& ids, const ClipTextOptions& options = {});
    Tensor forward(const Tensor& ids) override;  // -> text_embeds [B, E]

    const ClipTextConfig& config() const { return text_model->config; }
    std::shared_ptr<ClipTextTransformer> text_model;
    std::shared_ptr<nn::Linear> text_projection;  // [E, D], no bias
};

// The pooled positions p_b of token ids [B, L] (any device, i64/i32) by transformers' rule (header comment).
std::vector<int64_t> clip_pooling_positions(const Tensor& ids, int64_t eos_token_id);

// The checkpoint keys and shapes of ClipTextModel (with_projection: ClipTextModelWithProjection) for a config,
// without building the model (the full-size encoders hold 123M / 340M parameters): for checking a checkpoint's
// listing before loading it, and for the preset tests. Equal to the built module's state_dict() (tested).
std::map<std::string, tensor::Shape> clip_text_state_shapes(const ClipTextConfig& config, bool with_projection = false);

// A CLIPTextModel dictionary saved by transformers >= 5 ("embeddings.…", "encoder.…", "final_layer_norm.…") with
// the "text_model." prefix of the checkpoints added; a dictionary that already has it is returned unchanged.
// Keys that belong to neither layout are kept as they are (strict loading then names them).
nn::StateDict normalize_clip_text_keys(const nn::StateDict& state);

}  // namespace cxr::diffusion
