// Tests of the conditional UNet (diffusion/unet.h) and its spatial transformer (diffusion/transformer_2d.h) against
// diffusers' UNet2DConditionModel, through tests/fixtures/tools/make_unet_fixtures.py (tests/fixtures/unet.*):
//   - three tiny random models (sd1: SD 1.x blocks and conv projections, int64 timesteps [10, 999]; sd2: linear
//     projections, a per-block head list, an odd 9×7 sample that forces the upsample-size forwarding, a scalar
//     int timestep; misc: only_cross_attention, two transformer layers, no mid block, center_input_sample, 1×1
//     conv_in/conv_out, time_embedding_dim, flip_sin_to_cos off, freq_shift 1, a float timestep): each is built
//     from the config.json diffusers wrote (UNet2DConditionConfig::from_json), loads the fixture weights strictly
//     (every key, no extras), and its output and the gradients of sum(out · w) — with respect to the sample, the
//     context and (sd1, sd2) every parameter — are compared by name with diffusers' float64 results;
//   - the presets: sd15() / sd21_base() / sd21() / tiny() equal the configs diffusers resolves from the same
//     config.json values, and a default UNet2DConditionConfig equals diffusers' UNet2DConditionModel() defaults;
//     the SD presets' key sets equal diffusers' (built narrow so the test stays fast), tiny() has diffusers' exact
//     keys, shapes and parameter count, and ([slow]: 4 GB, built under SkipRandomInit) the full-size SD 1.5 / 2.1 models have
//     diffusers' exact keys, shapes and parameter counts (859,520,964 / 865,910,724);
//   - Transformer2DModel against central differences in f64 (input, context and two weights; conv and linear
//     projections, with and without only_cross_attention), independent of diffusers;
//   - config errors (unsupported keys and values named, list lengths, heads or groups that do not divide the
//     channels, wrong JSON types, bad JSON, a missing file) and input errors (wrong sample / context / timestep
//     shapes named); a [1] tensor, a 0-d tensor and a double timestep agree with the [B] form;
//   - integration: the UNet folder of the tiny diffusers pipeline (tests/fixtures/sd_tiny/unet, written by
//     make_sd_tiny_fixtures.py with save_pretrained) is read with from_json_file and its weights load strictly
//     (skipped visibly when that folder is absent).
//
// Tolerances (ours in f32 against the f64 reference rounded to f32; the values live in unet.json "tol"):
//   output: |a − b| <= 2e-5 + 1e-4·|ref|. The outputs are O(1) (|out| < 2). A float32 forward through ~40 layers
//     (convolutions, softmax attention, GroupNorm/LayerNorm) accumulates a few units of f32 rounding (6e-8) per
//     layer; measured max |error| 9e-7 (sd1), 5e-7 (sd2), 2e-7 (misc), so the bound leaves a margin of >20×.
//   gradients: per tensor, |a − b| <= 2e-5·max|ref| + 1e-4·|ref|. Parameter gradients span orders of magnitude
//     between tensors (the bias of the last conv vs. a query projection deep inside), so the absolute part scales
//     with each tensor's largest entry; measured max |error| / max|ref| over every gradient: 1.9e-6, a margin of
//     10×. (The backward adds as many rounding steps as the forward and sums over batch and pixels.)
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "diffusion/unet.h"
#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"
#include "tests/support/testing.h"

using namespace cxr::diffusion;
using cxr::nn::StateDict;
using cxr::tensor::DType;
using cxr::tensor::Shape;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;
using nlohmann::json;

using cxr::testing::error_of;

namespace {

const json& record() { return cxr::testing::fixture_record("unet"); }

const Fixtures& fixtures() {
    static const Fixtures fx("unet");
    return fx;
}

// The fixture weights of a case, keyed by diffusers' state-dict keys.
StateDict case_weights(const std::string& c) {
    StateDict sd;
    const std::string prefix = c + ".param.";
    for (const auto& name : fixtures().names_with_prefix(prefix)) sd[name.substr(prefix.size())] = fixtures().get(name);
    return sd;
}

std::shared_ptr<UNet2DConditionModel> load_case(const std::string& c) {
    const json& cfg = record().at("cases").at(c).at("config");
    auto model = std::make_shared<UNet2DConditionModel>(UNet2DConditionConfig::from_json(cfg.dump(), "unet.json:" + c));
    const StateDict sd = case_weights(c);
    cxr::nn::LoadReport report = model->load_state_dict(sd);  // strict
    INFO(report.str());
    REQUIRE(report.ok());
    REQUIRE(report.loaded.size() == sd.size());
    REQUIRE(model->num_parameters() == record().at("cases").at(c).at("num_parameters").get<int64_t>());
    model->eval();
    return model;
}

// |a − b| ≤ atol_rel_max · max|ref| + rtol · |ref| per element (the gradient rule of the header comment).
void check_grad(const json& tol, const std::string& name, const T::Tensor& got, const T::Tensor& ref) {
    INFO(name);
    REQUIRE(got.defined());
    REQUIRE(got.shape() == ref.shape());
    const double ref_max = T::amax(T::abs(T::cast(ref, DType::f64))).item();
    CXR_EXPECT_CLOSE(got, ref, tol.at("atol_rel_max").get<double>() * ref_max + 1e-12, tol.at("rtol").get<double>());
}

void run_case(const std::string& c) {
    const json& rec = record().at("cases").at(c);
    auto model = load_case(c);
    const Fixtures& fx = fixtures();
    T::Tensor sample = T::clone(fx.get(c + ".sample")).set_requires_grad(true);
    T::Tensor context = T::clone(fx.get(c + ".encoder_hidden_states")).set_requires_grad(true);
    const json& ts = rec.at("params").at("timestep");
    T::Tensor out;
    if (fx.has(c + ".timestep")) {
        out = model->forward(sample, fx.get(c + ".timestep"), context);  // an int64 [B] tensor
    } else if (ts.is_number_integer()) {
        // a Python int: diffusers makes it an int64 tensor; here a 0-d int64 tensor, broadcast to the batch
        out = model->forward(sample, T::full({}, ts.get<double>(), DType::i64), context);
    } else {
        out = model->forward(sample, ts.get<double>(), context);  // a Python float
    }
    const json& tol = rec.at("tol").at("out");
    {
        INFO(c << ".out");
        CXR_EXPECT_CLOSE(out, fx.get(c + ".out"), tol.at("atol").get<double>(), tol.at("rtol").get<double>());
    }
    T::sum(T::mul(out, fx.get(c + ".w"))).backward();
    const json& grad_tol = rec.at("tol").at("grad");
    check_grad(grad_tol, c + ".grad.sample", sample.grad(), fx.get(c + ".grad.sample"));
    check_grad(grad_tol, c + ".grad.encoder_hidden_states", context.grad(), fx.get(c + ".grad.encoder_hidden_states"));
    if (rec.at("params").at("parameter_gradients").get<bool>()) {
        int checked = 0;
        for (const auto& [key, p] : model->named_parameters()) {
            check_grad(grad_tol, c + ".grad." + key, p.grad(), fx.get(c + ".grad." + key));
            ++checked;
        }
        CHECK(checked == (int)model->named_parameters().size());
        CHECK(checked > 100);
    }
}

// The fields of two configs, compared one by one (so a failure names the field).
void check_same_config(const UNet2DConditionConfig& a, const UNet2DConditionConfig& b) {
    CHECK(a.sample_size == b.sample_size);
    CHECK(a.in_channels == b.in_channels);
    CHECK(a.out_channels == b.out_channels);
    CHECK(a.center_input_sample == b.center_input_sample);
    CHECK(a.flip_sin_to_cos == b.flip_sin_to_cos);
    CHECK(a.freq_shift == b.freq_shift);
    CHECK(a.down_block_types == b.down_block_types);
    CHECK(a.mid_block_type == b.mid_block_type);
    CHECK(a.up_block_types == b.up_block_types);
    CHECK(a.block_out_channels == b.block_out_channels);
    for (size_t i = 0; i < a.num_blocks(); ++i) {
        INFO("block " << i);
        CHECK(a.layers(i) == b.layers(i));
        CHECK(a.heads(i) == b.heads(i));
        CHECK(a.cross_dim(i) == b.cross_dim(i));
        CHECK(a.transformer_layers(i) == b.transformer_layers(i));
        CHECK(a.only_cross(i) == b.only_cross(i));
    }
    CHECK(a.downsample_padding == b.downsample_padding);
    CHECK(a.mid_block_scale_factor == b.mid_block_scale_factor);
    CHECK(a.dropout == b.dropout);
    CHECK(a.norm_num_groups == b.norm_num_groups);
    CHECK(a.norm_eps == b.norm_eps);
    CHECK(a.use_linear_projection == b.use_linear_projection);
    CHECK(a.upcast_attention == b.upcast_attention);
    CHECK(a.time_embed_dim() == b.time_embed_dim());
    CHECK(a.conv_in_kernel == b.conv_in_kernel);
    CHECK(a.conv_out_kernel == b.conv_out_kernel);
}

UNet2DConditionConfig preset(const std::string& name) {
    if (name == "sd15") return UNet2DConditionConfig::sd15();
    if (name == "sd21_base") return UNet2DConditionConfig::sd21_base();
    if (name == "tiny") return UNet2DConditionConfig::tiny();
    return UNet2DConditionConfig::sd21();
}

const json& preset_shapes(const std::string& name) {
    const json& presets = record().at("cases").at("presets");
    const json& shapes = presets.at(name).at("shapes");
    return shapes.is_string() ? presets.at("sd21").at("shapes") : shapes;  // sd21_base: "same as sd21"
}

// A small valid diffusers config to break one key at a time.
json small_config() {
    return json{{"_class_name", "UNet2DConditionModel"},
                {"block_out_channels", {8, 16}},
                {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
                {"layers_per_block", 1},
                {"norm_num_groups", 4},
                {"cross_attention_dim", 12},
                {"attention_head_dim", 2}};
}

}  // namespace

TEST_CASE("UNet2DConditionModel matches diffusers: SD 1.x style (conv projections, DownBlock2D/UpBlock2D)",
          "[cpu][unet]") {
    run_case("sd1");
}

TEST_CASE("UNet2DConditionModel matches diffusers: SD 2.x style (linear projections, head list, odd 9x7 sample)",
          "[cpu][unet]") {
    const json& p = record().at("cases").at("sd2").at("params");
    // 9×7 is not a multiple of 2^(upsamplers) = 2: the upsampler must resize 5×4 back to the skip's 9×7.
    REQUIRE(p.at("sample").at(2).get<int>() % 2 == 1);
    run_case("sd2");
}

TEST_CASE("UNet2DConditionModel matches diffusers: only_cross_attention, 2 transformer layers, no mid block, ...",
          "[cpu][unet]") {
    auto model = load_case("misc");
    CHECK(model->mid_block == nullptr);
    CHECK(model->conv_in->kernel_size == T::Size2{1, 1});
    run_case("misc");
}

TEST_CASE("UNet presets equal the configs diffusers resolves from the published config.json values", "[cpu][unet]") {
    for (const std::string name : {"sd15", "sd21_base", "sd21", "tiny"}) {
        INFO(name);
        const json& rec = record().at("cases").at("presets").at(name);
        const UNet2DConditionConfig from_diffusers = UNet2DConditionConfig::from_json(rec.at("config").dump(), name);
        check_same_config(preset(name), from_diffusers);
    }
    CHECK(record().at("cases").at("presets").at("sd15").at("num_parameters").get<int64_t>() == 859520964);
    CHECK(record().at("cases").at("presets").at("sd21").at("num_parameters").get<int64_t>() == 865910724);
    CHECK(UNet2DConditionConfig::sd15().time_embed_dim() == 1280);
}

TEST_CASE("UNet2DConditionConfig defaults are diffusers' UNet2DConditionModel() defaults", "[cpu][unet]") {
    const UNet2DConditionConfig ours;
    check_same_config(ours, UNet2DConditionConfig::from_json(record().at("cases").at("defaults").at("config").dump()));
    check_same_config(ours, UNet2DConditionConfig::from_json("{}"));
    CHECK(ours.cross_dim(0) == 1280);
}

TEST_CASE("UNet presets have diffusers' state-dict keys (narrow build)", "[cpu][unet]") {
    // The key names depend on the block structure only; the presets are built with narrow channels (same block
    // types, layers, transformer depth and projection kind) so the check takes milliseconds. Shapes and counts at
    // full width are the [slow] test below.
    for (const std::string name : {"sd15", "sd21_base", "sd21"}) {
        INFO(name);
        UNet2DConditionConfig c = preset(name);
        c.block_out_channels = {8, 16, 32, 32};  // the ratios of 320, 640, 1280, 1280 (same shortcuts)
        c.norm_num_groups = 4;
        c.num_attention_heads = {2};
        c.cross_attention_dim = {8};
        auto model = std::make_shared<UNet2DConditionModel>(c);
        std::set<std::string> ours, theirs;
        for (const auto& [key, v] : model->state_dict()) ours.insert(key);
        for (const auto& [key, v] : preset_shapes(name).items()) theirs.insert(key);
        std::vector<std::string> missing, extra;
        std::set_difference(theirs.begin(), theirs.end(), ours.begin(), ours.end(), std::back_inserter(missing));
        std::set_difference(ours.begin(), ours.end(), theirs.begin(), theirs.end(), std::back_inserter(extra));
        INFO("missing: " << (missing.empty() ? "" : missing[0]) << " (" << missing.size() << "), extra: "
                         << (extra.empty() ? "" : extra[0]) << " (" << extra.size() << ")");
        CHECK(missing.empty());
        CHECK(extra.empty());
        CHECK(ours.size() == 686);
        // proj_in is a 1×1 convolution in SD 1.x and a Linear in SD 2.x
        const auto w = model->state_dict().at("down_blocks.0.attentions.0.proj_in.weight");
        CHECK(w.dim() == (name == "sd15" ? 4 : 2));
        CHECK(model->default_overall_up_factor() == 8);
    }
}

TEST_CASE("UNet2DConditionConfig::tiny has diffusers' keys, shapes and parameter count", "[cpu][unet]") {
    const json& rec = record().at("cases").at("presets").at("tiny");
    auto model = std::make_shared<UNet2DConditionModel>(UNet2DConditionConfig::tiny());
    CHECK(model->num_parameters() == rec.at("num_parameters").get<int64_t>());
    const StateDict sd = model->state_dict();
    CHECK(sd.size() == rec.at("num_keys").get<size_t>());
    for (const auto& [key, shape] : rec.at("shapes").items()) {
        INFO(key);
        auto it = sd.find(key);
        REQUIRE(it != sd.end());
        CHECK(it->second.shape() == shape.get<Shape>());
    }
}

TEST_CASE("UNet presets at full size: diffusers' keys, shapes and parameter counts", "[cpu][unet][slow]") {
    for (const std::string name : {"sd15", "sd21"}) {
        INFO(name);
        const json& rec = record().at("cases").at("presets").at(name);
        cxr::nn::init::SkipRandomInit skip;  // only the structure is checked: no need to draw 860M numbers
        auto model = std::make_shared<UNet2DConditionModel>(preset(name));
        CHECK(model->num_parameters() == rec.at("num_parameters").get<int64_t>());
        const StateDict sd = model->state_dict();
        CHECK(sd.size() == rec.at("num_keys").get<size_t>());
        for (const auto& [key, shape] : preset_shapes(name).items()) {
            INFO(key);
            auto it = sd.find(key);
            REQUIRE(it != sd.end());
            CHECK(it->second.shape() == shape.get<Shape>());
        }
    }
}

TEST_CASE("UNet2DConditionConfig::from_json rejects what it does not build, naming the key and value",
          "[cpu][unet]") {
    auto err = [](const json& j) { return error_of([&] { UNet2DConditionConfig::from_json(j.dump(), "test.json"); }); };
    // the baseline parses, and unknown keys are ignored
    json ok = small_config();
    ok["some_future_key"] = {1, 2, 3};
    ok["resnet_skip_time_act"] = true;
    const UNet2DConditionConfig c = UNet2DConditionConfig::from_json(ok.dump());
    CHECK(c.heads(0) == 2);
    CHECK(c.heads(1) == 2);

    auto with = [](const char* key, const json& value) {
        json j = small_config();
        j[key] = value;
        return j;
    };
    using Catch::Matchers::Contains;
    CHECK_THAT(err(with("down_block_types", {"CrossAttnDownBlock2D", "AttnDownBlock2D"})),
               Contains("down_block_types[1]") && Contains("AttnDownBlock2D"));
    CHECK_THAT(err(with("up_block_types", {"UpBlock2D", "SimpleCrossAttnUpBlock2D"})),
               Contains("up_block_types[1]") && Contains("SimpleCrossAttnUpBlock2D"));
    CHECK_THAT(err(with("mid_block_type", "UNetMidBlock2DSimpleCrossAttn")),
               Contains("mid_block_type") && Contains("UNetMidBlock2DSimpleCrossAttn"));
    CHECK_THAT(err(with("class_embed_type", "timestep")), Contains("class_embed_type") && Contains("timestep"));
    CHECK_THAT(err(with("num_class_embeds", 10)), Contains("num_class_embeds"));
    CHECK_THAT(err(with("addition_embed_type", "text_time")), Contains("addition_embed_type") && Contains("text_time"));
    CHECK_THAT(err(with("resnet_time_scale_shift", "scale_shift")),
               Contains("resnet_time_scale_shift") && Contains("scale_shift"));
    CHECK_THAT(err(with("time_embedding_type", "fourier")), Contains("time_embedding_type") && Contains("fourier"));
    CHECK_THAT(err(with("num_attention_heads", 8)), Contains("num_attention_heads"));
    CHECK_THAT(err(with("dual_cross_attention", true)), Contains("dual_cross_attention"));
    CHECK_THAT(err(with("act_fn", "gelu")), Contains("act_fn") && Contains("gelu"));
    CHECK_THAT(err(with("transformer_layers_per_block", {{1, 2}, {1, 1}})), Contains("transformer_layers_per_block"));
    CHECK_THAT(err(with("_class_name", "UNet2DModel")), Contains("UNet2DModel"));
    CHECK_THAT(err(with("norm_num_groups", nullptr)), Contains("norm_num_groups"));
    // list lengths
    CHECK_THAT(err(with("block_out_channels", {8, 16, 32})), Contains("down_block_types") && Contains("3"));
    CHECK_THAT(err(with("up_block_types", {"UpBlock2D"})), Contains("up_block_types"));
    CHECK_THAT(err(with("attention_head_dim", {2, 2, 2})), Contains("attention_head_dim") && Contains("3 entries"));
    CHECK_THAT(err(with("layers_per_block", {1, 1, 1})), Contains("layers_per_block"));
    CHECK_THAT(err(with("cross_attention_dim", {12, 12, 12})), Contains("cross_attention_dim"));
    // arithmetic
    CHECK_THAT(err(with("attention_head_dim", 3)), Contains("not divisible into") && Contains("heads"));
    CHECK_THAT(err(with("norm_num_groups", 3)), Contains("norm_num_groups"));
    CHECK_THAT(err(with("conv_in_kernel", 2)), Contains("conv_in_kernel"));
    // types and files
    CHECK_THAT(err(with("layers_per_block", "two")), Contains("layers_per_block") && Contains("integer"));
    CHECK_THAT(error_of([] { UNet2DConditionConfig::from_json("{not json", "broken.json"); }),
               Contains("broken.json") && Contains("JSON"));
    CHECK_THAT(error_of([] { UNet2DConditionConfig::from_json_file("/nonexistent/unet/config.json"); }),
               Contains("/nonexistent/unet/config.json"));
    // the same checks guard configs built in code
    UNet2DConditionConfig bad = UNet2DConditionConfig::tiny();
    bad.down_block_types[0] = "KDownBlock2D";
    CHECK_THAT(error_of([&] { UNet2DConditionModel m(bad); }), Contains("KDownBlock2D"));
}

TEST_CASE("UNet2DConditionModel names wrong input shapes", "[cpu][unet]") {
    auto model = load_case("sd1");  // in 4, cross_attention_dim 10
    const T::Tensor x = T::zeros({2, 4, 8, 6});
    const T::Tensor ctx = T::zeros({2, 5, 10});
    const T::Tensor t = T::full({2}, 10.0, DType::i64);
    using Catch::Matchers::Contains;
    CHECK_THAT(error_of([&] { model->forward(T::zeros({2, 3, 8, 6}), t, ctx); }),
               Contains("sample") && Contains("[2, 3, 8, 6]"));
    CHECK_THAT(error_of([&] { model->forward(T::zeros({4, 8, 6}), t, ctx); }), Contains("sample"));
    CHECK_THAT(error_of([&] { model->forward(x, t, T::zeros({2, 5, 7})); }),
               Contains("encoder_hidden_states") && Contains("10"));
    CHECK_THAT(error_of([&] { model->forward(x, t, T::zeros({1, 5, 10})); }), Contains("encoder_hidden_states"));
    CHECK_THAT(error_of([&] { model->forward(x, t, T::zeros({5, 10})); }), Contains("encoder_hidden_states"));
    CHECK_THAT(error_of([&] { model->forward(x, t, T::Tensor()); }), Contains("encoder_hidden_states"));
    CHECK_THAT(error_of([&] { model->forward(x, T::full({3}, 10.0, DType::i64), ctx); }), Contains("timestep"));
    CHECK_THAT(error_of([&] { model->forward(x, T::full({2, 1}, 10.0, DType::i64), ctx); }), Contains("timestep"));
    CHECK_THAT(error_of([&] { model->forward(x); }), Contains("timestep"));
    // a [1] timestep, a 0-d one and a double broadcast to the batch and agree exactly with the [B] form
    cxr::tensor::NoGradGuard ng;
    const T::Tensor a = model->forward(x, T::full({1}, 10.0, DType::i64), ctx);
    const T::Tensor b = model->forward(x, 10.0, ctx);
    const T::Tensor d = model->forward(x, T::full({}, 10.0, DType::f32), ctx);
    const T::Tensor c = model->forward(x, t, ctx);
    CXR_EXPECT_CLOSE(a, c, 0.0, 0.0);
    CXR_EXPECT_CLOSE(b, c, 0.0, 0.0);
    CXR_EXPECT_CLOSE(d, c, 0.0, 0.0);
}

TEST_CASE("UNet2DConditionModel reads a diffusers unet/ folder (the tiny pipeline fixture)", "[cpu][unet]") {
    const std::string dir = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny/unet";
    if (!std::filesystem::exists(dir + "/config.json") ||
        !std::filesystem::exists(dir + "/diffusion_pytorch_model.safetensors"))
        CXR_SKIP("tests/fixtures/sd_tiny/unet not present (run tests/fixtures/tools/make_sd_tiny_fixtures.py)");
    const UNet2DConditionConfig c = UNet2DConditionConfig::from_json_file(dir + "/config.json");
    auto model = std::make_shared<UNet2DConditionModel>(c);
    const T::TensorFile weights = T::load_tensor_file(dir + "/diffusion_pytorch_model.safetensors");
    StateDict sd(weights.tensors.begin(), weights.tensors.end());
    cxr::nn::LoadReport report = model->load_state_dict(sd);
    INFO(report.str());
    CHECK(report.ok());
    CHECK(report.loaded.size() == sd.size());
}

TEST_CASE("Transformer2DModel gradients agree with finite differences in f64", "[cpu][unet]") {
    // Independent of diffusers: central differences of sum(out · w) with respect to the input, the context and two
    // weights (perturbed in place), for both projection kinds, with and without only_cross_attention.
    for (const bool linear : {false, true}) {
        for (const bool only_cross : {false, true}) {
            INFO("use_linear_projection " << linear << ", only_cross_attention " << only_cross);
            Transformer2DModel::Options o;
            o.num_layers = only_cross ? 2 : 1;
            o.norm_num_groups = 2;
            o.cross_attention_dim = 3;
            o.use_linear_projection = linear;
            o.only_cross_attention = only_cross;
            auto model = std::make_shared<Transformer2DModel>(2, 2, 4, o);
            model->to(DType::f64);
            const StateDict sd = model->state_dict();
            REQUIRE(sd.count("transformer_blocks.0.attn1.to_k.weight"));
            CHECK(sd.at("transformer_blocks.0.attn1.to_k.weight").size(1) == (only_cross ? 3 : 4));
            std::vector<T::Tensor> inputs{cxr::testing::random_input({2, 4, 2, 3}, 11).set_requires_grad(true),
                                          cxr::testing::random_input({2, 2, 3}, 12).set_requires_grad(true),
                                          model->state_dict().at("proj_in.weight"),
                                          model->state_dict().at("transformer_blocks.0.attn2.to_k.weight")};
            // the state-dict entries are detached views of the parameters: use the parameters themselves
            for (const auto& [key, p] : model->named_parameters()) {
                if (key == "proj_in.weight") inputs[2] = p;
                if (key == "transformer_blocks.0.attn2.to_k.weight") inputs[3] = p;
            }
            auto fn = [&](const std::vector<T::Tensor>& in) { return model->forward(in[0], in[1]); };
            CXR_EXPECT_GRADCHECK(fn, inputs, 1e-6, 1e-7, 1e-5);
        }
    }
    Transformer2DModel::Options o;
    o.norm_num_groups = 2;
    o.cross_attention_dim = 3;
    auto model = std::make_shared<Transformer2DModel>(2, 2, 4, o);
    using Catch::Matchers::Contains;
    CHECK_THAT(error_of([&] { model->forward(T::zeros({1, 6, 2, 2}), T::zeros({1, 2, 3})); }),
               Contains("Transformer2DModel") && Contains("[1, 6, 2, 2]"));
    CHECK_THAT(error_of([&] { model->forward(T::zeros({1, 4, 2, 2}), T::Tensor()); }), Contains("context"));
    CHECK_THAT(error_of([&] { model->forward(T::zeros({1, 4, 2, 2}), T::zeros({1, 2, 5})); }), Contains("context"));
    o.norm_num_groups = 3;
    CHECK_THAT(error_of([&] { Transformer2DModel bad(2, 2, 4, o); }), Contains("4 channels") && Contains("3 groups"));
}

TEST_CASE("UNet2DConditionConfig::tiny builds and runs on odd sizes", "[cpu][unet]") {
    auto model = std::make_shared<UNet2DConditionModel>(UNet2DConditionConfig::tiny());
    model->eval();
    cxr::tensor::NoGradGuard ng;
    const T::Tensor x = T::randn({1, 4, 7, 5});
    const T::Tensor y = model->forward(x, 500.0, T::randn({1, 3, 32}));
    CHECK(y.shape() == Shape{1, 4, 7, 5});
    CHECK(std::isfinite(T::sum(T::abs(y)).item()));
}
