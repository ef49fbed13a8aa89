// Tests of the Stable Diffusion VAE (diffusion/vae.h) against diffusers' AutoencoderKL and
// DiagonalGaussianDistribution, through tests/fixtures/vae.{safetensors,json} (tests/fixtures/tools/make_vae_fixtures.py;
// the script's docstring lists every tensor). The models are built from the config dictionaries diffusers wrote
// (so config parsing is part of every comparison):
//   - "rgb"  (8, 16), 1 layer, 4 groups, random weights stored: strict load, posterior mean/logvar/std/KL, decode of
//            the mode, the sampled forward with given noise, every parameter gradient of Σ recon·w + 0.01 Σ KL, the
//            SD latents, the batch limits, legacy attention keys;
//   - "gray" 1 channel, (8, 8, 16), 2 layers (SD's), formula weights, run in float64: outputs and gradient
//            projections to the float32 rounding of the references (an exact check of the structure);
//   - "lean" no quant convs, no mid attention, scaling 1.5 and shift 0.1: outputs and the latent helpers;
//   - "post" the posterior alone with log-variances beyond the clamp;
//   - the SD 1.x/2.x preset: every key and shape and the parameter count equal diffusers' (83,653,863);
//   - config errors and wrong input shapes, each message naming what is wrong.
// Tolerances are the ones recorded in vae.json per case, with their reason there (f32 against diffusers in float64
// for rgb and lean; float64 against float64-rounded-to-float32 for gray; the posterior's KL reaches 2e8).
#include "tests/support/testing.h"

#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "diffusion/vae.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::diffusion;
using cxr::nn::StateDict;
using cxr::tensor::DType;
using cxr::tensor::Shape;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;
using nlohmann::json;

namespace {

const json& record() { return cxr::testing::fixture_record("vae"); }

const Fixtures& fixtures() {
    static const Fixtures fx("vae");
    return fx;
}

const json& case_record(const std::string& name) { return record().at("cases").at(name); }
double tol(const std::string& name, const char* key) { return case_record(name).at("tol").at(key).get<double>(); }

std::shared_ptr<AutoencoderKL> model_of_case(const std::string& name) {
    return std::make_shared<AutoencoderKL>(AutoencoderKLConfig::from_json(case_record(name).at("config")));
}

// The "rgb" model with diffusers' random weights, loaded strictly.
std::shared_ptr<AutoencoderKL> rgb_model() {
    auto m = model_of_case("rgb");
    StateDict sd;
    for (const auto& name : fixtures().names_with_prefix("rgb.w.")) sd[name.substr(6)] = fixtures().get(name);
    const auto report = m->load_weights(sd);
    REQUIRE(report.ok());
    REQUIRE(report.loaded.size() == sd.size());
    return m;
}

// The weight formula of make_vae_fixtures.py: floating state-dict entries in sorted key order (k = position),
// s = sin(0.37 i + k) with i the flat index; 1-D "weight" 1 + 0.1 s, other 1-D 0.1 s, ≥ 2-D s·sqrt(3 / fan_in).
void formula_fill(cxr::nn::Module& m) {
    T::NoGradGuard ng;
    int64_t k = 0;
    for (const auto& [key, t] : m.state_dict()) {
        const std::string leaf = key.substr(key.rfind('.') + 1);
        const int64_t n = t.numel();
        std::vector<double> v(static_cast<size_t>(n));
        const double scale = t.dim() >= 2 ? std::sqrt(3.0 / static_cast<double>(n / t.size(0))) : 0.0;
        for (int64_t i = 0; i < n; ++i) {
            const double s = std::sin(0.37 * static_cast<double>(i) + static_cast<double>(k));
            v[static_cast<size_t>(i)] = t.dim() >= 2 ? s * scale : (leaf == "weight" ? 1 + 0.1 * s : 0.1 * s);
        }
        T::copy_into(t, T::from_vector(v, t.sizes()).to(t.dtype()));
        ++k;
    }
}

void expect_close(const std::string& what, const T::Tensor& actual, const T::Tensor& expected, double atol,
                  double rtol) {
    INFO(what);
    REQUIRE(actual.sizes() == expected.sizes());
    CXR_EXPECT_CLOSE(actual, expected, atol, rtol);
}

// Runs fn and checks that it throws cxr::Error whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<const char*> parts) {
    try {
        fn();
        FAIL("no cxr::Error was thrown");
    } catch (const cxr::Error& e) {
        const std::string msg = e.what();
        INFO("message: " << msg);
        for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("AutoencoderKL config: presets equal diffusers' configs and round-trip through JSON", "[cpu][vae]") {
    const AutoencoderKLConfig sd = AutoencoderKLConfig::sd();
    const json sd_json = record().at("sd").at("config");
    CHECK(AutoencoderKLConfig::from_json(sd_json).to_json() == sd.to_json());
    CHECK(AutoencoderKLConfig::from_json(case_record("rgb").at("config")).to_json() ==
          AutoencoderKLConfig::tiny().to_json());
    // every key diffusers writes is written back with the same value
    const json mine = sd.to_json();
    for (auto it = sd_json.begin(); it != sd_json.end(); ++it) {
        if (it.key() == "_diffusers_version") continue;
        INFO(it.key());
        REQUIRE(mine.contains(it.key()));
        CHECK(mine.at(it.key()) == it.value());
    }
    CHECK(sd.downscale_factor() == 8);
    CHECK(AutoencoderKLConfig::tiny().downscale_factor() == 2);
    const auto lean = AutoencoderKLConfig::from_json(case_record("lean").at("config"));
    REQUIRE(lean.shift_factor.has_value());
    CHECK(*lean.shift_factor == Approx(0.1));
    CHECK(lean.scaling_factor == Approx(1.5));
    CHECK(!lean.use_quant_conv);
    CHECK(!lean.use_post_quant_conv);
    CHECK(!lean.mid_block_add_attention);
    CHECK(AutoencoderKLConfig::from_json(lean.to_json()).to_json() == lean.to_json());
    // missing keys take diffusers' defaults; unknown keys are ignored; "swish" is SiLU; [h, w] sample sizes keep h
    const auto defaults = AutoencoderKLConfig::from_json(json{{"some_future_key", 3}, {"act_fn", "swish"},
                                                               {"sample_size", {64, 64}}});
    CHECK(defaults.block_out_channels == std::vector<int64_t>{64});
    CHECK(defaults.layers_per_block == 1);
    CHECK(defaults.norm_num_groups == 32);
    CHECK(defaults.sample_size == 64);
    CHECK(defaults.scaling_factor == Approx(0.18215));
}

TEST_CASE("AutoencoderKL sd() preset: every state-dict key, shape and the parameter count equal diffusers'",
          "[cpu][vae]") {
    const json& ref = record().at("sd");
    AutoencoderKL model(AutoencoderKLConfig::sd());
    CHECK(model.num_parameters() == 83653863);
    CHECK(model.num_parameters() == ref.at("num_parameters").get<int64_t>());
    const StateDict sd = model.state_dict();
    const json& keys = ref.at("keys");
    std::vector<std::string> missing, extra, wrong;
    for (auto it = keys.begin(); it != keys.end(); ++it) {
        auto f = sd.find(it.key());
        if (f == sd.end()) missing.push_back(it.key());
        else if (f->second.sizes() != it.value().get<Shape>()) wrong.push_back(it.key());
    }
    for (const auto& [k, v] : sd)
        if (!keys.contains(k)) extra.push_back(k);
    for (const auto& k : missing) UNSCOPED_INFO("missing in cxr: " << k);
    for (const auto& k : extra) UNSCOPED_INFO("not in diffusers: " << k);
    for (const auto& k : wrong) UNSCOPED_INFO("shape differs: " << k);
    CHECK(sd.size() == keys.size());
    CHECK(missing.empty());
    CHECK(extra.empty());
    CHECK(wrong.empty());
}

TEST_CASE("AutoencoderKL (rgb) matches diffusers: posterior, decode of the mode, sampled forward, SD latents",
          "[cpu][vae]") {
    const auto& fx = fixtures();
    auto model = rgb_model();
    CHECK(model->num_parameters() == case_record("rgb").at("num_parameters").get<int64_t>());
    model->eval();
    T::NoGradGuard ng;
    const double atol = tol("rgb", "atol"), rtol = tol("rgb", "rtol");
    const T::Tensor x = fx.get("rgb.x");  // [2, 3, 16, 16]
    const DiagonalGaussian post = model->encode(x);
    expect_close("rgb.mean", post.mean, fx.get("rgb.mean"), atol, rtol);
    expect_close("rgb.logvar", post.logvar, fx.get("rgb.logvar"), atol, rtol);
    expect_close("rgb.std", post.std, fx.get("rgb.std"), atol, rtol);
    expect_close("rgb.kl", post.kl(), fx.get("rgb.kl"), atol, rtol);
    expect_close("rgb.decode_mode", model->decode(post.mode()), fx.get("rgb.decode_mode"), atol, rtol);
    expect_close("rgb.decode_mode via forward", model->forward(x), fx.get("rgb.decode_mode"), atol, rtol);
    expect_close("rgb.recon", model->forward_with_noise(x, fx.get("rgb.noise")), fx.get("rgb.recon"), atol, rtol);
    expect_close("rgb.latents", model->images_to_latents(x), fx.get("rgb.latents"), atol * 0.2, rtol);
    // the image the SD pipeline decodes from those latents is the decode of the mode
    expect_close("latents_to_images", model->latents_to_images(fx.get("rgb.latents")), fx.get("rgb.decode_mode"),
                 atol, rtol);
}

TEST_CASE("AutoencoderKL (rgb) parameter gradients of Σ recon·w + 0.01·Σ KL match diffusers", "[cpu][vae]") {
    const auto& fx = fixtures();
    auto model = rgb_model();
    model->train();
    const DiagonalGaussian post = model->encode(fx.get("rgb.x"));
    const T::Tensor recon = model->decode(post.sample(fx.get("rgb.noise")));  // [2, 3, 16, 16]
    expect_close("rgb.recon (train mode)", recon, fx.get("rgb.recon"), tol("rgb", "atol"), tol("rgb", "rtol"));
    const T::Tensor loss = T::add(T::sum(T::mul(recon, fx.get("rgb.w_loss"))), T::mul(T::sum(post.kl()), 0.01));
    loss.backward();
    const auto params = model->named_parameters();
    CHECK(params.size() == fx.names_with_prefix("rgb.grad.").size());
    for (const auto& [key, p] : params) {
        INFO("rgb.grad." << key);
        REQUIRE(p.grad().defined());
        expect_close("rgb.grad." + key, p.grad(), fx.get("rgb.grad." + key), tol("rgb", "grad_atol"),
                     tol("rgb", "grad_rtol"));
    }
}

TEST_CASE("AutoencoderKL (gray: 1 channel, 3 blocks, 2 layers) in float64 matches diffusers, with gradient projections",
          "[cpu][vae]") {
    const auto& fx = fixtures();
    auto model = model_of_case("gray");
    CHECK(model->num_parameters() == case_record("gray").at("num_parameters").get<int64_t>());
    formula_fill(*model);   // float32 values, as the script's
    model->to(DType::f64);  // run in float64 like the reference: agreement to the float32 rounding of the fixture
    const double atol = tol("gray", "atol"), rtol = tol("gray", "rtol");
    const DiagonalGaussian post = model->encode(fx.get("gray.x").to(DType::f64));  // [1, 4, 4, 4]
    expect_close("gray.mean", post.mean, fx.get("gray.mean"), atol, rtol);
    expect_close("gray.logvar", post.logvar, fx.get("gray.logvar"), atol, rtol);
    const T::Tensor dec = model->decode(post.mode());  // [1, 1, 16, 16]
    expect_close("gray.decode_mode", dec, fx.get("gray.decode_mode"), atol, rtol);
    // loss = Σ dec · w, w[n] = cos(0.5 n); per parameter (sorted keys, position k) [Σ g, Σ g·p], p[i] = cos(0.91 i + k)
    std::vector<double> wv(static_cast<size_t>(dec.numel()));
    for (size_t i = 0; i < wv.size(); ++i) wv[i] = std::cos(0.5 * static_cast<double>(i));
    T::sum(T::mul(dec, T::from_vector(wv, dec.sizes()))).backward();
    std::map<std::string, T::Tensor> params;
    for (const auto& [k, p] : model->named_parameters()) params[k] = p;
    CHECK(params.size() == fx.names_with_prefix("gray.gsum.").size());
    int64_t k = 0;
    for (const auto& [key, p] : params) {
        REQUIRE(p.grad().defined());
        const T::Tensor g = p.grad().to(DType::f64).contiguous();
        std::vector<double> pv(static_cast<size_t>(g.numel()));
        for (size_t i = 0; i < pv.size(); ++i) pv[i] = std::cos(0.91 * static_cast<double>(i) + static_cast<double>(k));
        const T::Tensor summary = T::stack({T::sum(g), T::sum(T::mul(g, T::from_vector(pv, g.sizes())))}, 0);
        expect_close("gray.gsum." + key, summary, fx.get("gray.gsum." + key), tol("gray", "grad_atol"),
                     tol("gray", "grad_rtol"));
        ++k;
    }
}

TEST_CASE("AutoencoderKL (lean: no quant convs, no mid attention, shift factor) matches diffusers; latent helpers",
          "[cpu][vae]") {
    const auto& fx = fixtures();
    auto model = model_of_case("lean");
    CHECK(model->num_parameters() == case_record("lean").at("num_parameters").get<int64_t>());
    CHECK(model->quant_conv == nullptr);
    CHECK(model->post_quant_conv == nullptr);
    for (const auto& [key, t] : model->state_dict()) {
        INFO(key);
        CHECK(key.find("attentions") == std::string::npos);
        CHECK(key.find("quant_conv") == std::string::npos);
    }
    formula_fill(*model);
    T::NoGradGuard ng;
    const double atol = tol("lean", "atol"), rtol = tol("lean", "rtol");
    const T::Tensor x = fx.get("lean.x");
    const DiagonalGaussian post = model->encode(x);
    expect_close("lean.mean", post.mean, fx.get("lean.mean"), atol, rtol);
    expect_close("lean.logvar", post.logvar, fx.get("lean.logvar"), atol, rtol);
    expect_close("lean.decode_mode", model->decode(post.mode()), fx.get("lean.decode_mode"), atol, rtol);
    // latents = (mode − shift) · scaling;  images = decode(latents / scaling + shift)
    expect_close("lean.latents", model->images_to_latents(x), fx.get("lean.latents"), atol, rtol);
    expect_close("lean.image", model->latents_to_images(fx.get("lean.latents_in")), fx.get("lean.image"), atol, rtol);
    expect_close("unscale_latents inverts scale_latents", model->unscale_latents(model->scale_latents(post.mean)),
                 post.mean, 1e-5, 1e-6);
    // a sampled latent draws its noise from the generator: the same seed gives mean + std·ε with the same ε
    T::Generator g1(42), g2(42);
    const T::Tensor sampled = model->images_to_latents(x, /*sample=*/true, &g1);
    const T::Tensor eps = T::randn(post.mean.sizes(), T::Options(DType::f32), &g2);
    expect_close("sampled latents", sampled, model->scale_latents(post.sample(eps)), 1e-5, 1e-5);
}

TEST_CASE("DiagonalGaussian matches diffusers' DiagonalGaussianDistribution (clamp, KL, NLL, sample)", "[cpu][vae]") {
    const auto& fx = fixtures();
    const double atol = tol("post", "atol"), rtol = tol("post", "rtol");
    const DiagonalGaussian d(fx.get("post.params"));  // [2, 6, 3, 3]
    const DiagonalGaussian o(fx.get("post.other_params"));
    expect_close("post.mean", d.mean, fx.get("post.mean"), atol, rtol);
    expect_close("post.logvar (clamped to [−30, 20])", d.logvar, fx.get("post.logvar"), atol, rtol);
    expect_close("post.std", d.std, fx.get("post.std"), atol, rtol);
    expect_close("post.var", d.var, fx.get("post.var"), atol, rtol);
    expect_close("post.kl", d.kl(), fx.get("post.kl"), atol, rtol);
    expect_close("post.kl_other", d.kl(o), fx.get("post.kl_other"), atol, rtol);
    const T::Tensor s = d.sample(fx.get("post.noise"));
    expect_close("post.sample", s, fx.get("post.sample"), atol, rtol);
    {
        // The NLL of a sample is ill-conditioned in float32 where σ = e^(−15): mean + σ·ε rounds σ·ε away, so (as
        // the reference) it is computed in float64 from the same parameters and noise.
        const DiagonalGaussian d64(fx.get("post.params").to(DType::f64));
        expect_close("post.nll", d64.nll(d64.sample(fx.get("post.noise").to(DType::f64))), fx.get("post.nll"), atol,
                     rtol);
    }
    expect_close("mode", d.mode(), fx.get("post.mean"), 0, 0);
    CHECK(T::amax(d.logvar).item() == 20.0);
    CHECK(T::amin(d.logvar).item() == -30.0);
    // sample(gen): reproducible from the seed, and mean + std·ε for the generator's ε
    T::Generator g1(3), g2(3), g3(4);
    const T::Tensor a = d.sample(&g1);
    expect_close("sample(gen) = mean + std·randn(gen)", a,
                 d.sample(T::randn(d.mean.sizes(), T::Options(DType::f32), &g2)), 0, 0);
    CHECK(T::amax(T::abs(T::sub(a, d.sample(&g3)))).item() > 0.0);
}

TEST_CASE("AutoencoderKL gradients flow through the clamp and the sample: f64 gradient check of the posterior",
          "[cpu][vae]") {
    // mean + e^(logvar/2)·ε and the KL, on moments inside the clamp range, against central differences in f64
    const T::Tensor noise = cxr::testing::random_input({2, 2, 2, 2}, 11);
    CXR_EXPECT_GRADCHECK(
            [&](const std::vector<T::Tensor>& in) {
                DiagonalGaussian d(in[0]);
                return T::cat({T::flatten(d.sample(noise)), d.kl(), d.nll(T::mul(noise, 0.5))}, 0);
            },
            {cxr::testing::random_input({2, 4, 2, 2}, 12, -2.0, 2.0).set_requires_grad(true)});
}

TEST_CASE("AutoencoderKL loads legacy attention keys (query/key/value/proj_attn) after renaming", "[cpu][vae]") {
    const auto& fx = fixtures();
    StateDict legacy;
    int renamed = 0;
    const std::vector<std::pair<std::string, std::string>> to_legacy = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (const auto& name : fx.names_with_prefix("rgb.w.")) {
        std::string key = name.substr(6);
        for (const auto& [from, to] : to_legacy) {
            const size_t at = key.find(from);
            if (at != std::string::npos && key.find("attentions.") != std::string::npos) {
                key.replace(at, from.size(), to);
                ++renamed;
            }
        }
        legacy[key] = fx.get(name);
    }
    CHECK(renamed == 16);  // 4 projections × weight and bias × encoder and decoder mid blocks
    {
        // a plain strict load refuses them, naming the keys
        auto model = model_of_case("rgb");
        expect_error([&] { model->load_state_dict(legacy); }, {"encoder.mid_block.attentions.0.query.weight",
                                                                "decoder.mid_block.attentions.0.to_q.weight"});
    }
    auto model = model_of_case("rgb");
    const auto report = model->load_weights(legacy);
    CHECK(report.ok());
    CHECK(report.loaded.size() == legacy.size());
    T::NoGradGuard ng;
    expect_close("decode_mode after a legacy load", model->forward(fx.get("rgb.x")), fx.get("rgb.decode_mode"),
                 tol("rgb", "atol"), tol("rgb", "rtol"));
}

TEST_CASE("AutoencoderKL strict load names missing, unexpected and mis-shaped keys", "[cpu][vae]") {
    auto model = AutoencoderKL(AutoencoderKLConfig::tiny()).state_dict();
    StateDict sd = model;
    sd.erase("decoder.conv_out.bias");
    sd["encoder.extra.weight"] = T::zeros({1});
    sd["quant_conv.weight"] = T::zeros({8, 8, 3, 3});
    AutoencoderKL target(AutoencoderKLConfig::tiny());
    expect_error([&] { target.load_weights(sd); },
                 {"decoder.conv_out.bias", "encoder.extra.weight", "quant_conv.weight"});
}

TEST_CASE("AutoencoderKL batch limits: encoding and decoding image by image give the same result", "[cpu][vae]") {
    const auto& fx = fixtures();
    auto model = rgb_model();
    model->encode_batch_limit = 1;
    model->decode_batch_limit = 1;
    const double atol = tol("rgb", "atol"), rtol = tol("rgb", "rtol");
    const T::Tensor x = fx.get("rgb.x");
    const DiagonalGaussian post = model->encode(x);
    expect_close("rgb.mean (one image at a time)", post.mean, fx.get("rgb.mean"), atol, rtol);
    const T::Tensor recon = model->decode(post.sample(fx.get("rgb.noise")));
    expect_close("rgb.recon (one image at a time)", recon, fx.get("rgb.recon"), atol, rtol);
    // gradients still reach the weights through the slices
    T::sum(recon).backward();
    CHECK(model->encoder->conv_in->weight.grad().defined());
    CHECK(model->decoder->conv_out->weight.grad().defined());
}

TEST_CASE("AutoencoderKL config errors name the key", "[cpu][vae]") {
    const json base = AutoencoderKLConfig::tiny().to_json();
    auto with = [&](const std::string& key, const json& value) {
        json j = base;
        j[key] = value;
        return j;
    };
    expect_error([&] { AutoencoderKLConfig::from_json(with("_class_name", "UNet2DConditionModel")); }, {"_class_name"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("in_channels", "three")); }, {"in_channels", "integer"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("in_channels", 0)); }, {"in_channels", "positive"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("latent_channels", -4)); }, {"latent_channels"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("block_out_channels", json::array())); },
                 {"block_out_channels", "empty"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("block_out_channels", {8, 18})); },
                 {"block_out_channels", "18", "norm_num_groups"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("block_out_channels", {8, 16, 16})); },
                 {"down_block_types", "block_out_channels"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("down_block_types", {"DownEncoderBlock2D", "AttnDownEncoderBlock2D"})); },
                 {"down_block_types", "AttnDownEncoderBlock2D"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("up_block_types", {"UpDecoderBlock2D", "AttnUpDecoderBlock2D"})); },
                 {"up_block_types", "AttnUpDecoderBlock2D"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("act_fn", "gelu")); }, {"act_fn", "gelu"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("layers_per_block", 0)); }, {"layers_per_block"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("norm_num_groups", 0)); }, {"norm_num_groups"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("scaling_factor", 0.0)); }, {"scaling_factor"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("scaling_factor", "0.18")); }, {"scaling_factor", "number"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("shift_factor", "none")); }, {"shift_factor"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("use_quant_conv", 1)); }, {"use_quant_conv", "true or false"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("latents_mean", {0.1, 0.2, 0.3, 0.4})); }, {"latents_mean"});
    expect_error([&] { AutoencoderKLConfig::from_json(with("block_out_channels", {8, "16"})); },
                 {"block_out_channels", "integers"});
    expect_error([&] { AutoencoderKLConfig::from_json(json::array()); }, {"JSON object"});
    // the constructor validates a config built in code
    AutoencoderKLConfig bad = AutoencoderKLConfig::tiny();
    bad.norm_num_groups = 3;
    expect_error([&] { AutoencoderKL m(bad); }, {"norm_num_groups"});
}

TEST_CASE("AutoencoderKL rejects wrong input shapes, naming what was expected", "[cpu][vae]") {
    AutoencoderKL model(AutoencoderKLConfig::tiny());  // 3 channels, 4 latent channels, f = 2
    T::NoGradGuard ng;
    expect_error([&] { model.encode(T::zeros({3, 16, 16})); }, {"encode", "[N, 3, H, W]", "[3, 16, 16]"});
    expect_error([&] { model.encode(T::zeros({1, 1, 16, 16})); }, {"encode", "[N, 3, H, W]", "[1, 1, 16, 16]"});
    expect_error([&] { model.encode(T::zeros({1, 3, 15, 16})); }, {"15x16", "multiple of 2"});
    expect_error([&] { model.decode(T::zeros({1, 3, 8, 8})); }, {"decode", "[N, 4, h, w]", "[1, 3, 8, 8]"});
    expect_error([&] { model.decode(T::zeros({4, 8, 8})); }, {"decode", "[4, 8, 8]"});
    expect_error([&] { DiagonalGaussian d(T::zeros({1, 3, 2, 2})); }, {"DiagonalGaussian", "[1, 3, 2, 2]"});
    const DiagonalGaussian d(T::zeros({1, 8, 2, 2}));
    expect_error([&] { d.sample(T::zeros({1, 8, 2, 2})); }, {"noise", "[1, 4, 2, 2]", "[1, 8, 2, 2]"});
    expect_error([&] { d.nll(T::zeros({1, 4, 2, 3})); }, {"nll", "[1, 4, 2, 3]"});
    // shapes of a valid call
    const DiagonalGaussian post = model.encode(T::zeros({2, 3, 8, 12}));
    CHECK(post.mean.sizes() == Shape{2, 4, 4, 6});
    CHECK(model.decode(post.mean).sizes() == Shape{2, 3, 8, 12});
}

TEST_CASE("Image range helpers: [0, 1] <-> [−1, 1] as diffusers' VaeImageProcessor", "[cpu][vae]") {
    const T::Tensor x01 = T::from_vector(std::vector<float>{0.f, 0.25f, 0.5f, 1.f}, {1, 1, 2, 2});
    const T::Tensor x = normalize_images(x01);
    CXR_EXPECT_CLOSE(x, T::from_vector(std::vector<float>{-1.f, -0.5f, 0.f, 1.f}, {1, 1, 2, 2}), 0, 0);
    CXR_EXPECT_CLOSE(denormalize_images(x), x01, 0, 0);
    // values outside [−1, 1] (a decoder's overshoot) are clamped to [0, 1]
    const T::Tensor over = T::from_vector(std::vector<float>{-1.5f, 1.2f}, {2});
    CXR_EXPECT_CLOSE(denormalize_images(over), T::from_vector(std::vector<float>{0.f, 1.f}, {2}), 0, 0);
}
