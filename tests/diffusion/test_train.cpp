// The diffusion training loss (diffusion/train.h): the loss against a hand computation in f64 (x_t, the ε / v
// target, the per-sample mean squared error and the min-SNR-γ weights written out element by element, with ᾱ in
// float32 as diffusers), gradients reaching every UNet parameter and no frozen VAE / text-encoder parameter,
// reproducible draws (noise, offset, timesteps), prompt dropout rates, a few optimizer steps overfitting one batch,
// and the errors. The reference is the formula itself (diffusers' train_text_to_image.py computes the same
// expression with torch ops); the UNet is a random tiny one with sd_tiny's config (tests/fixtures/sd_tiny).
#include "tests/support/testing.h"

#include <algorithm>
#include <cmath>

#include "diffusion/pipeline.h"
#include "diffusion/train.h"
#include "nn/optim.h"
#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

using namespace cxr;
using diffusion::PredictionType;
using tensor::DType;
using tensor::Tensor;

namespace {

const std::string kPipe = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny";

std::shared_ptr<diffusion::UNet2DConditionModel> tiny_unet(DType dtype, uint64_t seed = 1) {
    tensor::Generator gen(seed);
    auto unet = std::make_shared<diffusion::UNet2DConditionModel>(
        diffusion::UNet2DConditionConfig::from_json_file(kPipe + "/unet/config.json"), &gen);
    if (dtype != DType::f32) unet->to(dtype);
    return unet;
}

// sd_tiny's noise schedule (scaled_linear 0.00085..0.012) as a DDPM scheduler (training needs only the tables).
std::unique_ptr<diffusion::Scheduler> scheduler_with(PredictionType kind) {
    diffusion::SchedulerConfig c = diffusion::SchedulerConfig::from_file(kPipe + "/scheduler/scheduler_config.json",
                                                                         diffusion::SchedulerKind::ddpm);
    c.prediction_type = kind;
    return diffusion::make_scheduler(c);
}

// The loss of diffusion/train.h element by element in double (ᾱ, √ᾱ, √(1−ᾱ) and SNR in float32 as diffusers).
double hand_loss(diffusion::UNet2DConditionModel& unet, const diffusion::Scheduler& s, const Tensor& x0,
                 const Tensor& ctx, const std::vector<int64_t>& t, const Tensor& eps, double gamma) {
    const int64_t B = x0.size(0), E = x0.numel() / B;
    const std::vector<double> xv = x0.to_vector<double>(), ev = eps.to_vector<double>();
    std::vector<double> xt(xv.size()), target(xv.size());
    for (int64_t b = 0; b < B; ++b) {
        const float a = s.alphas_cumprod()[(size_t)t[(size_t)b]];
        const double sa = std::sqrt(a), sb = std::sqrt(1.0f - a);
        for (int64_t i = b * E; i < (b + 1) * E; ++i) {
            xt[(size_t)i] = sa * xv[(size_t)i] + sb * ev[(size_t)i];
            target[(size_t)i] = s.config().prediction_type == PredictionType::epsilon
                                    ? ev[(size_t)i]
                                    : sa * ev[(size_t)i] - sb * xv[(size_t)i];
        }
    }
    tensor::NoGradGuard ng;
    const Tensor pred = unet.forward(tensor::from_vector(xt, x0.shape()), tensor::from_vector(t, {B}), ctx);
    const std::vector<double> pv = pred.to_vector<double>();
    double loss = 0;
    for (int64_t b = 0; b < B; ++b) {
        double e = 0;
        for (int64_t i = b * E; i < (b + 1) * E; ++i) {
            const double d = pv[(size_t)i] - target[(size_t)i];
            e += d * d;
        }
        e /= (double)E;
        double w = 1.0;
        if (gamma > 0) {
            const float a = s.alphas_cumprod()[(size_t)t[(size_t)b]];
            const float r = std::sqrt(a) / std::sqrt(1.0f - a);
            const float snr = r * r;
            const float clipped = std::min(snr, (float)gamma);
            w = s.config().prediction_type == PredictionType::epsilon ? (double)(clipped / snr)
                                                                      : (double)(clipped / (snr + 1.0f));
        }
        loss += w * e / (double)B;
    }
    return loss;
}

}  // namespace

TEST_CASE("diffusion_loss equals the hand computation in f64 (epsilon, v, min-SNR)", "[cpu][diffusion][train]") {
    auto unet = tiny_unet(DType::f64);
    tensor::Generator g(7);
    const tensor::Options f64(DType::f64);
    const Tensor x0 = tensor::randn({2, 4, 8, 8}, f64, &g);
    const Tensor eps = tensor::randn({2, 4, 8, 8}, f64, &g);
    const Tensor ctx = tensor::randn({2, 5, 16}, f64, &g);
    const std::vector<int64_t> t = {10, 700};
    const Tensor ts = tensor::from_vector(t, {2});
    for (PredictionType kind : {PredictionType::epsilon, PredictionType::v_prediction}) {
        auto s = scheduler_with(kind);
        for (double gamma : {0.0, 5.0}) {
            INFO("prediction " << (kind == PredictionType::epsilon ? "epsilon" : "v") << ", gamma " << gamma);
            diffusion::DiffusionLossOptions o;
            o.min_snr_gamma = gamma;
            const auto r = diffusion::diffusion_loss(*unet, *s, x0, ctx, ts, eps, o);
            const double want = hand_loss(*unet, *s, x0, ctx, t, eps, gamma);
            REQUIRE(r.loss.dim() == 0);
            // f64 throughout except the float32 weights (exact in both): 1e-12 relative.
            CHECK(std::abs(r.loss.item() - want) <= 1e-12 * std::abs(want));
            CHECK(r.per_sample.shape() == tensor::Shape{2});
            if (gamma == 0) CXR_EXPECT_CLOSE(r.weights, tensor::ones({2}, f64), 0, 0);
        }
    }
    // Without weighting the loss is the mean over every element (F.mse_loss).
    auto s = scheduler_with(PredictionType::epsilon);
    const auto r = diffusion::diffusion_loss(*unet, *s, x0, ctx, ts, eps);
    tensor::NoGradGuard ng;
    const Tensor pred = unet->forward(r.noisy, ts, ctx);
    CHECK(std::abs(tensor::mean(tensor::square(pred - eps)).item() - r.loss.item()) <= 1e-14);
}

TEST_CASE("min-SNR weights: min(SNR, γ)/SNR for epsilon, min(SNR, γ)/(SNR+1) for v", "[cpu][diffusion][train]") {
    auto eps_s = scheduler_with(PredictionType::epsilon);
    auto v_s = scheduler_with(PredictionType::v_prediction);
    const Tensor t = tensor::from_vector(std::vector<int64_t>{0, 100, 500, 999}, {4});
    const std::vector<float> we = diffusion::min_snr_weights(*eps_s, t, 5.0).to_vector<float>();
    const std::vector<float> wv = diffusion::min_snr_weights(*v_s, t, 5.0).to_vector<float>();
    for (size_t i = 0; i < 4; ++i) {
        const double snr = eps_s->snr(std::vector<int64_t>{0, 100, 500, 999}[i]);
        INFO("t index " << i << " SNR " << snr);
        CHECK(we[i] == Approx(std::min(snr, 5.0) / snr).epsilon(1e-6));
        CHECK(wv[i] == Approx(std::min(snr, 5.0) / (snr + 1)).epsilon(1e-6));
        if (snr <= 5.0) CHECK(we[i] == 1.0f);  // noisy timesteps keep full weight
        else CHECK(we[i] < 1.0f);              // clean timesteps are down-weighted
        CHECK(wv[i] < 1.0f);
    }
    CHECK_THROWS_WITH(diffusion::min_snr_weights(*eps_s, t, 0.0), Catch::Contains("gamma must be > 0"));
}

TEST_CASE("diffusion_loss: gradients reach every UNet parameter and no frozen VAE/text-encoder one",
          "[cpu][diffusion][train]") {
    auto pipe = diffusion::StableDiffusionPipeline::load(kPipe);
    pipe.vae->freeze();
    pipe.vae->eval();
    pipe.text_encoder->freeze();
    pipe.unet->unfreeze();  // the pipeline loads for inference (frozen)
    pipe.unet->train();
    tensor::Generator g(3);
    const Tensor images = tensor::rand({2, 1, 16, 16}, {}, &g);  // gray, repeated to 3 channels
    const Tensor latents = diffusion::images_to_training_latents(*pipe.vae, images, true, &g);
    REQUIRE(latents.shape() == tensor::Shape{2, 4, 8, 8});
    CHECK_FALSE(latents.requires_grad());
    const Tensor ctx = pipe.encode_prompts({"a chest x-ray", ""});  // [2, 77, 16]
    auto s = pipe.make_scheduler();
    const auto d = diffusion::draw_training_noise(latents, s->num_train_timesteps(), g);
    const auto r = diffusion::diffusion_loss(*pipe.unet, *s, latents, ctx, d.timesteps, d.noise);
    r.loss.backward();
    int64_t with_grad = 0;
    for (const auto& [name, p] : pipe.unet->named_parameters()) {
        INFO(name);
        const Tensor gr = p.grad();
        REQUIRE(gr.defined());
        CHECK(tensor::amax(tensor::abs(gr)).item() > 0);
        ++with_grad;
    }
    CHECK(with_grad == (int64_t)pipe.unet->parameters().size());
    for (const auto& [name, p] : pipe.vae->named_parameters()) {
        INFO(name);
        CHECK_FALSE(p.grad().defined());
    }
    for (const auto& [name, p] : pipe.text_encoder->named_parameters()) {
        INFO(name);
        CHECK_FALSE(p.grad().defined());
    }
}

TEST_CASE("draw_training_noise is reproducible; noise offset adds a per-channel constant", "[cpu][diffusion][train]") {
    const Tensor like32 = tensor::zeros({3, 4, 8, 8});
    const Tensor like64 = tensor::zeros({3, 4, 8, 8}, tensor::Options(DType::f64));
    tensor::Generator a(5), b(5), c(5);
    const auto d1 = diffusion::draw_training_noise(like32, 1000, a);
    const auto d2 = diffusion::draw_training_noise(like64, 1000, b);
    CHECK(d2.noise.dtype() == DType::f64);
    CXR_EXPECT_CLOSE(d2.noise, d1.noise.to(DType::f64), 0, 0);  // drawn in f32 either way
    CHECK(d1.timesteps.dtype() == DType::i64);
    for (int64_t t : d1.timesteps.to_vector<int64_t>()) CHECK((t >= 0 && t < 1000));
    const auto d3 = diffusion::draw_training_noise(like32, 1000, c, 0.1);
    // ε is the same first draw; the offset o·randn([B, C, 1, 1]) is constant over h, w.
    const Tensor diff = d3.noise - d1.noise;  // [3, 4, 8, 8]
    const Tensor spread = tensor::amax(diff, {2, 3}) - tensor::amin(diff, {2, 3});
    CHECK(tensor::amax(spread).item() < 1e-6);
    CHECK(tensor::amax(tensor::abs(diff)).item() > 1e-3);
    CHECK(tensor::amax(tensor::abs(diff)).item() < 0.6);  // 0.1 · |N(0,1)| over 12 draws
    CHECK_THROWS_WITH(diffusion::draw_training_noise(tensor::zeros({4, 8}), 1000, a),
                      Catch::Contains("latents must be [B, C, h, w]"));
}

TEST_CASE("prompt_dropout replaces prompts by \"\" with probability p", "[cpu][diffusion][train]") {
    std::vector<std::string> prompts(4000, "a prompt");
    tensor::Generator g0(1), g1(1), g2(9), g3(9);
    std::vector<bool> dropped;
    auto none = diffusion::prompt_dropout(prompts, 0.0, g0, &dropped);
    CHECK(std::count(none.begin(), none.end(), "") == 0);
    auto all = diffusion::prompt_dropout(prompts, 1.0, g1);
    CHECK(std::count(all.begin(), all.end(), "") == 4000);
    auto some = diffusion::prompt_dropout(prompts, 0.1, g2, &dropped);
    const auto n = std::count(some.begin(), some.end(), "");
    CHECK(n > 330);  // 400 ± 4.3 σ (σ = √(4000·0.1·0.9) ≈ 19)
    CHECK(n < 470);
    CHECK(std::count(dropped.begin(), dropped.end(), true) == n);
    CHECK(diffusion::prompt_dropout(prompts, 0.1, g3) == some);  // same generator state, same choice
    CHECK_THROWS_WITH(diffusion::prompt_dropout(prompts, 1.5, g0), Catch::Contains("p must be in [0, 1]"));
}

TEST_CASE("a few AdamW steps lower the loss on one fixed batch", "[cpu][diffusion][train]") {
    auto unet = tiny_unet(DType::f32, 2);
    unet->train();
    auto s = scheduler_with(PredictionType::epsilon);
    tensor::Generator g(11);
    const Tensor x0 = tensor::randn({2, 4, 8, 8}, {}, &g);
    const Tensor ctx = tensor::randn({2, 7, 16}, {}, &g);
    const auto d = diffusion::draw_training_noise(x0, 1000, g);
    nn::AdamOptions o;
    o.lr = 2e-3;
    nn::Adam opt(unet->parameters(), o, true);
    std::vector<double> losses;
    for (int i = 0; i < 25; ++i) {
        opt.zero_grad();
        const auto r = diffusion::diffusion_loss(*unet, *s, x0, ctx, d.timesteps, d.noise);
        r.loss.backward();
        opt.step();
        losses.push_back(r.loss.item());
    }
    INFO("first " << losses.front() << ", last " << losses.back());
    CHECK(losses.back() < 0.7 * losses.front());
}

TEST_CASE("diffusion_loss and images_to_training_latents: errors name the bad input", "[cpu][diffusion][train]") {
    auto unet = tiny_unet(DType::f32);
    auto s = scheduler_with(PredictionType::epsilon);
    const Tensor x0 = tensor::zeros({2, 4, 8, 8}), ctx = tensor::zeros({2, 5, 16});
    const Tensor t = tensor::from_vector(std::vector<int64_t>{1, 2}, {2});
    const Tensor x3 = tensor::zeros({2, 3, 8, 8});
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x3, ctx, t, x3),
                      Catch::Contains("latents have 3 channels but the UNet takes 4"));
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x0, ctx, t, tensor::zeros({2, 4, 4, 4})),
                      Catch::Contains("noise must have the latents' shape"));
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x0, tensor::zeros({3, 5, 16}), t, x0),
                      Catch::Contains("text embeddings must be [B = 2"));
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x0, ctx, tensor::zeros({2}), x0),
                      Catch::Contains("timesteps must be an integer tensor"));
    const Tensor t_out = tensor::from_vector(std::vector<int64_t>{1, 1000}, {2});
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x0, ctx, t_out, x0),
                      Catch::Contains("outside [0, 1000)"));
    auto sample_s = scheduler_with(PredictionType::sample);
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *sample_s, x0, ctx, t, x0),
                      Catch::Contains("prediction_type \"sample\" is not supported"));
    diffusion::DiffusionLossOptions bad;
    bad.min_snr_gamma = -1;
    CHECK_THROWS_WITH(diffusion::diffusion_loss(*unet, *s, x0, ctx, t, x0, bad), Catch::Contains("min_snr_gamma"));

    tensor::Generator g(1);
    diffusion::AutoencoderKL vae(diffusion::AutoencoderKLConfig::tiny(), &g);
    const int64_t f = int64_t(1) << (vae.config.block_out_channels.size() - 1);
    CHECK_THROWS_WITH(diffusion::images_to_training_latents(vae, tensor::zeros({1, 1, 4 * f + 1, 4 * f})),
                      Catch::Contains("not a multiple of the VAE factor"));
    CHECK_THROWS_WITH(diffusion::images_to_training_latents(vae, tensor::zeros({1, 2, 4 * f, 4 * f})),
                      Catch::Contains("images have 2 channels"));
}
