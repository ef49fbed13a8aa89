// Tests of the CLIP text encoder (diffusion/clip_text_encoder.h) against transformers' CLIPTextModel /
// CLIPTextModelWithProjection and diffusers' clip-skip rule, through tests/fixtures/clip_text.{safetensors,json}
// (made by tests/fixtures/tools/make_clip_text_fixtures.py; float64 references stored as float32):
//   - two tiny random models ("quick": quick_gelu, 3 layers, legacy pooling eos_token_id == 2; "gelu": gelu,
//     2 layers, with projection, pooling at the first eos) load strictly from the fixture weights, and
//     last_hidden_state, every hidden state, pooled output, text_embeds and the clip_skip = 1, 2 prompt embeddings
//     equal transformers' / diffusers' without and with a padding attention mask;
//   - every parameter gradient of a fixed weighted sum of last_hidden_state, pooled output (and text_embeds),
//     by name (the encoder is trainable, e.g. for text-encoder fine-tuning);
//   - the sd15()/sd21() presets have exactly the checkpoint keys, shapes and parameter counts of the real models
//     (123,060,480 and 340,387,840; key lists from transformers on the meta device): through
//     clip_text_state_shapes (proven equal to built modules on the tiny configs) in [cpu], and by building the
//     full-size modules in [slow];
//   - config parsing (transformers' config.json, nested text_config, defaults, errors naming the key), input errors
//     (token id out of range naming the id and its position, too long sequences, shapes, dtypes, clip_skip range),
//     transformers-5 un-prefixed keys, the pooling rule, and an f64 gradient check of one encoder layer.
#include "tests/support/testing.h"

#include <chrono>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "diffusion/clip_text_encoder.h"
#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

using namespace cxr::diffusion;
using cxr::nn::StateDict;
using cxr::tensor::DType;
using cxr::tensor::Shape;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;
using nlohmann::json;

namespace {

const json& record() { return cxr::testing::fixture_record("clip_text"); }

const Fixtures& fixtures() {
    static const Fixtures fx("clip_text");
    return fx;
}

// Tolerances of the JSON record: float32 forward/backward against float64 references. Outputs are O(1) (|x| <= 7,
// recorded in output_abs_max); float32 rounding over 2-3 layers leaves ~1e-6. Gradients reach ~20 (grad_abs_max).
double tol(const std::string& model, const std::string& kind, const std::string& which) {
    return record().at("models").at(model).at("tol").at(kind).at(which).get<double>();
}

ClipTextConfig config_of(const std::string& model) {
    // through from_json: the record holds the transformers config values of the fixture model
    return ClipTextConfig::from_json(record().at("models").at(model).at("config").dump(), model + " config");
}

StateDict fixture_weights(const std::string& model) {
    StateDict sd;
    const std::string prefix = model + ".weights.";
    for (const auto& name : fixtures().names_with_prefix(prefix)) sd[name.substr(prefix.size())] = fixtures().get(name);
    return sd;
}

template <class M>
std::shared_ptr<M> load_model(const std::string& model) {
    auto m = std::make_shared<M>(config_of(model));
    const StateDict sd = fixture_weights(model);
    const auto report = m->load_state_dict(sd);  // strict
    INFO(report.str());
    REQUIRE(report.ok());
    CHECK(report.loaded.size() == sd.size());
    CHECK(sd.size() == record().at("models").at(model).at("keys").size());
    return m;
}

void expect_output(const Tensor& actual, const std::string& name, const std::string& model) {
    INFO(name);
    CXR_EXPECT_CLOSE(actual, fixtures().get(name), tol(model, "outputs", "atol"), tol(model, "outputs", "rtol"));
}

// Compares the forward outputs of `model` ("quick" or "gelu") for both variants; with_projection: text_embeds too.
// `m` may live on a GPU (the comparisons run on the CPU).
template <class M>
void check_outputs(const std::string& model, M& m, bool with_projection) {
    T::NoGradGuard ng;
    const Tensor ids = fixtures().get(model + ".ids");
    const Tensor mask = fixtures().get(model + ".attention_mask");
    const int64_t N = m.config().num_hidden_layers;
    for (const std::string variant : {"nomask", "mask"}) {
        const std::string p = model + "." + variant + ".";
        ClipTextOptions opt;
        if (variant == "mask") opt.attention_mask = mask;
        opt.output_hidden_states = true;
        const ClipTextOutput out = m.forward_text(ids, opt);
        expect_output(out.last_hidden_state, p + "last_hidden_state", model);
        expect_output(out.pooled_output, p + "pooled", model);
        CHECK(out.prompt_embeds.same(out.last_hidden_state));
        REQUIRE(static_cast<int64_t>(out.hidden_states.size()) == N + 1);
        if (variant == "nomask")
            for (int64_t i = 0; i <= N; ++i) expect_output(out.hidden_states[i], p + "hidden_states." + std::to_string(i), model);
        if (with_projection) expect_output(out.text_embeds, p + "text_embeds", model);
        else CHECK(!out.text_embeds.defined());
        // diffusers' clip skip: through the options and through encode() (which runs fewer layers)
        for (int64_t k : {1, 2}) {
            const std::string name = p + "clip_skip." + std::to_string(k);
            if (!fixtures().has(name)) continue;
            ClipTextOptions o2;
            o2.attention_mask = opt.attention_mask;
            o2.clip_skip = k;
            const ClipTextOutput o = m.forward_text(ids, o2);
            CHECK(o.hidden_states.empty());
            expect_output(o.prompt_embeds, name, model);
            expect_output(o.last_hidden_state, p + "last_hidden_state", model);
            expect_output(m.text_model->encode(ids, k, opt.attention_mask), name, model);
        }
        expect_output(m.text_model->encode(ids, 0, opt.attention_mask), p + "last_hidden_state", model);
    }
}

// loss = Σ last·w_last + Σ pooled·w_pool (+ Σ text_embeds·w_embeds); every parameter gradient by name.
// `dev`: the device `m` lives on.
template <class M>
void check_grads(const std::string& model, M& m, bool with_projection, T::Device dev = T::Device::cpu()) {
    auto w = [&](const std::string& which) { return fixtures().get(model + ".grad_w." + which).to(dev); };
    const Tensor ids = fixtures().get(model + ".ids");
    ClipTextOptions opt;
    if (record().at("models").at(model).at("grad_with_mask").get<bool>())
        opt.attention_mask = fixtures().get(model + ".attention_mask");
    m.train();
    m.zero_grad();
    const ClipTextOutput out = m.forward_text(ids, opt);
    Tensor loss = T::add(T::sum(T::mul(out.last_hidden_state, w("last"))), T::sum(T::mul(out.pooled_output, w("pool"))));
    if (with_projection) loss = T::add(loss, T::sum(T::mul(out.text_embeds, w("embeds"))));
    loss.backward();
    const auto params = m.named_parameters();
    CHECK(params.size() == fixtures().names_with_prefix(model + ".grad.").size());
    for (const auto& [key, p] : params) {
        INFO(model << ".grad." << key);
        REQUIRE(p.grad().defined());
        CXR_EXPECT_CLOSE(p.grad(), fixtures().get(model + ".grad." + key), tol(model, "grads", "atol"),
                         tol(model, "grads", "rtol"));
    }
}

std::map<std::string, Shape> shapes_of(const cxr::nn::Module& m) {
    std::map<std::string, Shape> r;
    for (const auto& [k, v] : m.state_dict()) r[k] = v.sizes();
    return r;
}

// The listing `mine` (a module's state dict or clip_text_state_shapes) equals the record's list exactly.
void check_keys(const std::map<std::string, Shape>& mine, const json& ref, const std::string& what) {
    std::vector<std::string> missing, extra, wrong;
    for (auto it = ref.begin(); it != ref.end(); ++it) {
        auto f = mine.find(it.key());
        if (f == mine.end()) missing.push_back(it.key());
        else if (f->second != it.value().get<Shape>()) wrong.push_back(it.key());
    }
    for (const auto& [k, s] : mine)
        if (!ref.contains(k)) extra.push_back(k);
    INFO(what << ": " << ref.size() << " reference keys, " << mine.size() << " cxr keys");
    for (const auto& k : missing) UNSCOPED_INFO("missing in cxr: " << k);
    for (const auto& k : extra) UNSCOPED_INFO("not in transformers: " << k);
    for (const auto& k : wrong) UNSCOPED_INFO("shape differs: " << k << " cxr " << T::shape_str(mine.at(k)));
    CHECK(missing.empty());
    CHECK(extra.empty());
    CHECK(wrong.empty());
}

// Runs fn and checks that it throws cxr::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& fn, const std::vector<std::string>& parts) {
    try {
        fn();
        FAIL("no error thrown (expected one mentioning '" << parts.front() << "')");
    } catch (const cxr::Error& e) {
        const std::string msg = e.what();
        for (const auto& p : parts) {
            INFO("message: " << msg);
            CHECK(msg.find(p) != std::string::npos);
        }
    }
}

Tensor ids_of(const std::vector<int64_t>& v, const Shape& shape) { return T::from_vector(v, shape); }

}  // namespace

TEST_CASE("CLIP text (quick_gelu, legacy pooling): outputs equal transformers'", "[cpu][clip_text]") {
    auto m = load_model<ClipTextModel>("quick");
    CHECK(m->config().eos_token_id == 2);
    check_outputs("quick", *m, false);
    // Module::forward is last_hidden_state
    T::NoGradGuard ng;
    expect_output(m->forward(fixtures().get("quick.ids")), "quick.nomask.last_hidden_state", "quick");
    // an all-ones attention mask is the causal mask alone
    const Tensor ids = fixtures().get("quick.ids");
    expect_output(m->encode(ids, 0, T::ones(ids.sizes(), DType::i64)), "quick.nomask.last_hidden_state", "quick");
}

TEST_CASE("CLIP text (gelu, with projection, first-eos pooling): outputs equal transformers'", "[cpu][clip_text]") {
    auto m = load_model<ClipTextModelWithProjection>("gelu");
    CHECK(m->config().eos_token_id == 190);
    CHECK(m->config().layer_norm_eps == 1e-6);
    check_outputs("gelu", *m, true);
    T::NoGradGuard ng;
    expect_output(m->forward(fixtures().get("gelu.ids")), "gelu.nomask.text_embeds", "gelu");
}

TEST_CASE("CLIP text: every parameter gradient equals transformers'", "[cpu][clip_text]") {
    {
        auto m = load_model<ClipTextModel>("quick");
        check_grads("quick", *m, false);
    }
    {
        auto m = load_model<ClipTextModelWithProjection>("gelu");
        check_grads("gelu", *m, true);
    }
}

TEST_CASE("CLIP text: module keys equal the checkpoint keys of transformers' models", "[cpu][clip_text]") {
    const json& models = record().at("models");
    check_keys(shapes_of(ClipTextModel(config_of("quick"))), models.at("quick").at("keys"), "quick");
    check_keys(shapes_of(ClipTextModelWithProjection(config_of("gelu"))), models.at("gelu").at("keys"), "gelu");
    // the listing without a model equals the built modules
    check_keys(clip_text_state_shapes(config_of("quick")), models.at("quick").at("keys"), "quick listing");
    check_keys(clip_text_state_shapes(config_of("gelu"), true), models.at("gelu").at("keys"), "gelu listing");
    CHECK(clip_text_state_shapes(ClipTextConfig::tiny(), true) ==
          shapes_of(ClipTextModelWithProjection(ClipTextConfig::tiny())));
    // the tiny preset builds and runs
    ClipTextModel tiny(ClipTextConfig::tiny());
    CHECK(tiny.num_parameters() == ClipTextConfig::tiny().num_parameters());
    T::NoGradGuard ng;
    const Tensor h = tiny.forward(ids_of({998, 5, 6, 999, 999}, {1, 5}));
    CHECK(h.sizes() == Shape{1, 5, 32});
}

// Builds the full-size presets (123M and 340M parameters: ~0.5 GB and ~1.4 GB of float32 with their random init;
// 2.7 GB peak; built under SkipRandomInit, which skips drawing the ~30 s of random init), hence [slow]; the [cpu] test below checks the same lists through
// clip_text_state_shapes, which the test above proves equal to the built modules.
TEST_CASE("CLIP text: sd15()/sd21() presets have the real models' keys, shapes and parameter counts",
          "[cpu][clip_text][slow]") {
    for (const std::string name : {"sd15", "sd21"}) {
        const ClipTextConfig c = name == "sd15" ? ClipTextConfig::sd15() : ClipTextConfig::sd21();
        const json& ref = record().at("full_size").at(name);
        cxr::nn::init::SkipRandomInit skip;  // only the structure is checked: no need to draw 460M numbers
        ClipTextModel m(c);
        INFO(name);
        CHECK(m.num_parameters() == ref.at("num_parameters").get<int64_t>());
        check_keys(shapes_of(m), ref.at("keys"), name);
    }
}

TEST_CASE("CLIP text: sd15()/sd21() presets list the real models' keys, shapes and parameter counts",
          "[cpu][clip_text]") {
    // the literal counts of the released text encoders, the formula, and transformers' meta-device count agree
    CHECK(ClipTextConfig::sd15().num_parameters() == 123060480);
    CHECK(ClipTextConfig::sd21().num_parameters() == 340387840);
    for (const std::string name : {"sd15", "sd21"}) {
        const ClipTextConfig c = name == "sd15" ? ClipTextConfig::sd15() : ClipTextConfig::sd21();
        const json& ref = record().at("full_size").at(name);
        INFO(name);
        CHECK(c.num_parameters() == ref.at("num_parameters").get<int64_t>());
        const json& rc = ref.at("config");
        CHECK(c.vocab_size == rc.at("vocab_size").get<int64_t>());
        CHECK(c.hidden_size == rc.at("hidden_size").get<int64_t>());
        CHECK(c.intermediate_size == rc.at("intermediate_size").get<int64_t>());
        CHECK(c.num_hidden_layers == rc.at("num_hidden_layers").get<int64_t>());
        CHECK(c.num_attention_heads == rc.at("num_attention_heads").get<int64_t>());
        CHECK(c.max_position_embeddings == rc.at("max_position_embeddings").get<int64_t>());
        CHECK(c.hidden_act == rc.at("hidden_act").get<std::string>());
        CHECK(c.eos_token_id == rc.at("eos_token_id").get<int64_t>());
        // the key count: 2 embeddings + 16 per layer + 2 final norm
        CHECK(static_cast<int64_t>(ref.at("keys").size()) == 4 + 16 * c.num_hidden_layers);
        const auto listing = clip_text_state_shapes(c);
        check_keys(listing, ref.at("keys"), name + " listing");
        int64_t count = 0;
        for (const auto& [k, s] : listing) count += T::shape_numel(s);
        CHECK(count == c.num_parameters());
    }
}

TEST_CASE("CLIP text: transformers-5 keys without 'text_model.' and the position_ids extra load", "[cpu][clip_text]") {
    const StateDict sd = fixture_weights("quick");
    StateDict bare;
    for (const auto& [k, v] : sd) bare[k.substr(std::string("text_model.").size())] = v;
    ClipTextModel m(config_of("quick"));
    {
        cxr::nn::LoadOptions lenient;
        lenient.strict = false;
        const auto report = m.load_state_dict(bare, lenient);
        CHECK_FALSE(report.ok());  // the un-prefixed dictionary does not load as it is
    }
    StateDict fixed = normalize_clip_text_keys(bare);
    fixed["text_model.embeddings.position_ids"] = T::arange(16).reshape({1, 16});  // as older checkpoints hold
    const auto report = m.load_state_dict(fixed);
    INFO(report.str());
    CHECK(report.ok());
    CHECK(report.ignored == std::vector<std::string>{"text_model.embeddings.position_ids"});
    CHECK(normalize_clip_text_keys(sd).size() == sd.size());
    T::NoGradGuard ng;
    expect_output(m.forward(fixtures().get("quick.ids")), "quick.nomask.last_hidden_state", "quick");
}

TEST_CASE("CLIP text: pooling positions follow transformers' rule", "[cpu][clip_text]") {
    // legacy (eos_token_id == 2): first position of the largest id
    const Tensor a = ids_of({49406, 320, 49407, 49407, 49406, 49407, 0, 0}, {2, 4});
    CHECK(clip_pooling_positions(a, 2) == std::vector<int64_t>{2, 1});
    // new style: first position equal to eos, 0 when absent
    const Tensor b = ids_of({9, 7, 5, 7, 1, 2, 3, 4}, {2, 4});
    CHECK(clip_pooling_positions(b, 7) == std::vector<int64_t>{1, 0});
    CHECK(clip_pooling_positions(b.to(DType::i32), 7) == std::vector<int64_t>{1, 0});
}

TEST_CASE("CLIP text: bad inputs throw errors naming what is wrong", "[cpu][clip_text]") {
    ClipTextModel m(config_of("quick"));  // V 256, P 16, N 3
    T::NoGradGuard ng;
    expect_error([&] { m.forward(ids_of({254, 300, 255}, {1, 3})); }, {"token id 300", "[0, 1]", "[0, 256)"});
    expect_error([&] { m.forward(ids_of({254, 5, -1, 255}, {2, 2})); }, {"token id -1", "[1, 0]"});
    expect_error([&] { m.forward(T::zeros({1, 17}, DType::i64)); }, {"sequence length 17", "max_position_embeddings 16"});
    expect_error([&] { m.forward(T::zeros({4}, DType::i64)); }, {"[B, L]", "[4]"});
    expect_error([&] { m.forward(T::zeros({1, 4}, DType::f32)); }, {"i64 or i32", "f32"});
    const Tensor ids = ids_of({254, 5, 255}, {1, 3});
    expect_error([&] { m.encode(ids, 0, T::ones({1, 4}, DType::i64)); }, {"attention_mask", "[1, 3]", "[1, 4]"});
    expect_error([&] { m.encode(ids, 4); }, {"clip_skip", "[0, 3]", "4"});
    expect_error([&] { m.encode(ids, -1); }, {"clip_skip"});
    ClipTextOptions o;
    o.clip_skip = 5;
    expect_error([&] { m.forward_text(ids, o); }, {"clip_skip", "5"});
    // i32 ids work like i64
    CXR_EXPECT_CLOSE(m.forward(ids.to(DType::i32)), m.forward(ids), 0, 0);
    // clip_skip = N: the embeddings through the final LayerNorm
    CXR_EXPECT_CLOSE(m.encode(ids, 3), m.text_model->final_layer_norm->forward(m.text_model->embeddings->forward(ids)),
                     1e-6, 1e-6);
}

TEST_CASE("CLIP text config: from_json, presets, errors naming the key", "[cpu][clip_text]") {
    // a text_encoder/config.json as diffusers' SD 1.x folders hold it (unknown keys ignored)
    const std::string sd15_json = R"({
      "_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"],
      "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
      "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072,
      "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
      "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768,
      "torch_dtype": "float32", "transformers_version": "4.22.0.dev0", "vocab_size": 49408})";
    const ClipTextConfig a = ClipTextConfig::from_json(sd15_json);
    const ClipTextConfig s = ClipTextConfig::sd15();
    CHECK(a.to_json() == s.to_json());
    // round trip
    const ClipTextConfig s21 = ClipTextConfig::sd21();
    CHECK(ClipTextConfig::from_json(s21.to_json()).to_json() == s21.to_json());
    CHECK(s21.head_dim() == 64);
    // defaults are transformers' CLIPTextConfig defaults
    const ClipTextConfig d = ClipTextConfig::from_json("{}");
    CHECK(d.hidden_size == 512);
    CHECK(d.num_attention_heads == 8);
    CHECK(d.eos_token_id == 49407);
    CHECK(d.hidden_act == "quick_gelu");
    // a full CLIPModel config: the nested text_config (projection_dim from the top level when absent there)
    const ClipTextConfig n = ClipTextConfig::from_json(
            R"({"projection_dim": 64, "text_config": {"hidden_size": 48, "num_attention_heads": 4, "vocab_size": 100,
                "eos_token_id": 99, "bos_token_id": 98}, "vision_config": {"hidden_size": 7}})");
    CHECK(n.hidden_size == 48);
    CHECK(n.projection_dim == 64);
    CHECK(n.vocab_size == 100);
    // null bos/pad (transformers allows None)
    CHECK(ClipTextConfig::from_json(R"({"pad_token_id": null})").pad_token_id == -1);

    expect_error([] { ClipTextConfig::from_json(R"({"hidden_size": "768"})", "te/config.json"); },
                 {"te/config.json", "\"hidden_size\"", "integer"});
    expect_error([] { ClipTextConfig::from_json(R"({"num_hidden_layers": 2.5})"); }, {"\"num_hidden_layers\"", "integer"});
    expect_error([] { ClipTextConfig::from_json(R"({"layer_norm_eps": "x"})"); }, {"\"layer_norm_eps\"", "number"});
    expect_error([] { ClipTextConfig::from_json(R"({"hidden_act": 3})"); }, {"\"hidden_act\"", "string"});
    expect_error([] { ClipTextConfig::from_json(R"({"hidden_act": "mish"})"); }, {"hidden_act 'mish'"});
    expect_error([] { ClipTextConfig::from_json(R"({"hidden_size": 100, "num_attention_heads": 8})", "te.json"); },
                 {"te.json", "hidden_size 100", "num_attention_heads 8"});
    expect_error([] { ClipTextConfig::from_json(R"({"vocab_size": 0})"); }, {"vocab_size"});
    expect_error([] { ClipTextConfig::from_json(R"({"max_position_embeddings": -3})"); }, {"max_position_embeddings"});
    expect_error([] { ClipTextConfig::from_json(R"({"layer_norm_eps": 0})"); }, {"layer_norm_eps"});
    expect_error([] { ClipTextConfig::from_json(R"({"attention_dropout": 0.1})"); }, {"attention_dropout", "not supported"});
    expect_error([] { ClipTextConfig::from_json(R"({"eos_token_id": 49408})"); }, {"eos_token_id 49408"});
    expect_error([] { ClipTextConfig::from_json(R"({"eos_token_id": null})"); }, {"\"eos_token_id\""});
    expect_error([] { ClipTextConfig::from_json(R"({"text_config": 3})"); }, {"text_config"});
    expect_error([] { ClipTextConfig::from_json("{oops", "x.json"); }, {"x.json", "JSON"});
    expect_error([] { ClipTextConfig::from_json("[1, 2]"); }, {"object"});
    expect_error([] { ClipTextConfig::from_json_file("/nonexistent/config.json"); }, {"/nonexistent/config.json"});
    ClipTextConfig bad = ClipTextConfig::tiny();
    bad.num_hidden_layers = 0;
    expect_error([&] { ClipTextModel m(bad); }, {"num_hidden_layers"});

    cxr::testing::TempDir dir("clip_text_cfg");
    {
        std::ofstream out(dir / "config.json");
        out << sd15_json;
    }
    CHECK(ClipTextConfig::from_json_file(dir / "config.json").to_json() == s.to_json());
}

TEST_CASE("CLIP text: initialisation follows transformers' _init_weights", "[cpu][clip_text]") {
    ClipTextConfig c = ClipTextConfig::tiny();
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    T::Generator gen(7);
    ClipTextModelWithProjection m(c, &gen);
    // sample standard deviations against the formulas (D 64, N 2: q/k/v/fc2 D^-1/2 (2N)^-1/2 = 1/16,
    // out_proj D^-1/2 = 1/8, fc1 (2D)^-1/2 ≈ 0.0884, embeddings 0.02, projection 1/8); biases 0, norms 1/0
    auto std_of = [](const Tensor& t) { return T::std(t).item(); };
    auto& l0 = *m.text_model->encoder->layer(0);
    CHECK(std_of(m.text_model->embeddings->token_embedding->weight) == Approx(0.02).epsilon(0.05));
    CHECK(std_of(l0.self_attn->q_proj->weight) == Approx(1.0 / 16).epsilon(0.1));
    CHECK(std_of(l0.self_attn->out_proj->weight) == Approx(1.0 / 8).epsilon(0.1));
    CHECK(std_of(l0.mlp->fc1->weight) == Approx(std::pow(128.0, -0.5)).epsilon(0.1));
    CHECK(std_of(l0.mlp->fc2->weight) == Approx(1.0 / 16).epsilon(0.1));
    CHECK(std_of(m.text_projection->weight) == Approx(1.0 / 8).epsilon(0.1));
    CHECK(T::amax(T::abs(l0.self_attn->k_proj->bias)).item() == 0.0);
    CHECK(T::amin(l0.layer_norm1->weight).item() == 1.0);
    CHECK(!m.text_projection->bias.defined());
}

TEST_CASE("CLIP text: one encoder layer passes an f64 gradient check (causal and padding masks)", "[cpu][clip_text]") {
    ClipTextConfig c = ClipTextConfig::tiny();
    c.hidden_size = 8;
    c.intermediate_size = 12;
    c.num_attention_heads = 2;
    c.hidden_act = "gelu";
    T::Generator gen(3);
    auto layer = std::make_shared<ClipEncoderLayer>(c, &gen);
    layer->to(DType::f64);
    {
        T::NoGradGuard ng;  // non-trivial norms and biases
        for (auto& [k, p] : layer->named_parameters()) p.copy_(T::add(p, T::mul(T::randn(p.sizes(), DType::f64, &gen), 0.3)));
    }
    // [1, 1, 3, 3] bool: the causal mask with key 1 padded (what ClipTextTransformer builds for mask [1, 0, 1])
    std::vector<uint8_t> mv = {1, 0, 0, 1, 0, 0, 1, 0, 1};
    const Tensor mask = T::from_blob_copy(mv.data(), {1, 1, 3, 3}, DType::boolean);
    for (bool with_mask : {false, true}) {
        INFO("mask " << with_mask);
        CXR_EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return layer->forward(in[0], with_mask ? mask : Tensor()); },
                             {cxr::testing::random_input({1, 3, 8}, 11).set_requires_grad(true)});
    }
}

TEST_CASE("CLIP text on the GPU: fixture outputs and gradients", "[gpu][clip_text]") {
    CXR_SKIP_WITHOUT_GPU();
    const T::Device gpu = T::Device::cuda(0);
    {
        auto m = load_model<ClipTextModel>("quick");
        m->to(gpu);
        check_outputs("quick", *m, false);
        check_grads("quick", *m, false, gpu);
    }
    {
        auto m = load_model<ClipTextModelWithProjection>("gelu");
        m->to(gpu);
        check_outputs("gelu", *m, true);
        check_grads("gelu", *m, true, gpu);
    }
}

// Head dim 32: without a padding mask the GPU takes the fused causal attention kernels (tensor/ops/attention.h),
// with one the composed path; both against the CPU (f32 against f32, several GEMMs: 1e-4).
TEST_CASE("CLIP text on the GPU: fused causal attention equals the CPU", "[gpu][clip_text]") {
    CXR_SKIP_WITHOUT_GPU();
    ClipTextConfig c = ClipTextConfig::tiny();
    c.vocab_size = 100;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_attention_heads = 2;
    c.max_position_embeddings = 16;
    c.bos_token_id = 98;
    c.eos_token_id = 99;
    c.pad_token_id = 0;
    T::Generator g1(5), g2(5);
    ClipTextModel cpu_model(c, &g1), gpu_model(c, &g2);
    gpu_model.to(T::Device::cuda(0));
    const Tensor ids = ids_of({98, 4, 5, 6, 99, 0, 0, 0, 98, 7, 8, 9, 10, 11, 12, 99}, {2, 8});
    const Tensor mask = ids_of({1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 8});
    for (bool with_mask : {false, true}) {
        INFO("attention mask " << with_mask);
        ClipTextOptions o;
        if (with_mask) o.attention_mask = mask;
        cpu_model.zero_grad();
        gpu_model.zero_grad();
        const ClipTextOutput a = cpu_model.forward_text(ids, o);
        const ClipTextOutput b = gpu_model.forward_text(ids, o);
        CXR_EXPECT_CLOSE(b.last_hidden_state, a.last_hidden_state, 1e-4, 1e-4);
        CXR_EXPECT_CLOSE(b.pooled_output, a.pooled_output, 1e-4, 1e-4);
        T::sum(T::mul(a.last_hidden_state, a.last_hidden_state)).backward();
        T::sum(T::mul(b.last_hidden_state, b.last_hidden_state)).backward();
        const auto pa = cpu_model.named_parameters();
        const auto pb = gpu_model.named_parameters();
        for (size_t i = 0; i < pa.size(); ++i) {
            INFO(pa[i].first);
            CXR_EXPECT_CLOSE(pb[i].second.grad(), pa[i].second.grad(), 1e-3, 1e-3);
        }
    }
}
