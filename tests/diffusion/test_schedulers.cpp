// Tests of the diffusion schedulers and the sampling loop (diffusion/schedulers.h, diffusion/sampling.h) against
// fixtures written by huggingface diffusers itself (tests/fixtures/tools/make_scheduler_fixtures.py ->
// tests/fixtures/schedulers.safetensors + schedulers.json; the JSON holds each scheduler's full config as diffusers
// reports it, which is also what these tests parse):
//   - betas and alphas_cumprod bit-exact (linear, scaled_linear, squaredcos_cap_v2, N = 1000 and 777);
//   - set_timesteps(n) for every n = 1..N equal to diffusers' list (checksums) for DDPM, DDIM, PNDM (PLMS and PRK)
//     and DPM-Solver (linspace / leading / trailing, with and without lambda_min_clipped), and the explicit lists;
//   - every step of 20 scheduler runs (x_t -> x_t' and the predicted x0) within the recorded tolerance (1e-5),
//     feeding diffusers' own sample of each step and, for the stochastic steps, the noise diffusers used;
//   - the whole loop of sample() (no guidance) on the deterministic runs, and with classifier-free guidance
//     (g = 7.5, with and without guidance_rescale) against StableDiffusionPipeline's combination;
//   - add_noise, get_velocity and compute_snr;
//   - config parsing (unknown keys ignored, class defaults, kind override, Python's -Infinity), and errors: bad
//     config values naming the key, n > N, step before set_timesteps, shapes, missing noise or conditioning;
//   - history reset by set_timesteps and reproducible noise from Philox generators (one per image).
// The mock models are defined identically in the fixture tool: mock(x, t) = x·(0.3 cos(t/137)) + 0.05 sin(x + t/50).
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "diffusion/sampling.h"
#include "diffusion/schedulers.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"
#include "tests/support/testing.h"

using namespace cxr::diffusion;
using cxr::tensor::Tensor;
using Catch::Contains;
using json = nlohmann::json;
namespace T = cxr::tensor;

namespace {

const json& record() { return cxr::testing::fixture_record("schedulers"); }

const cxr::testing::Fixtures& fx() {
    static const cxr::testing::Fixtures f("schedulers");
    return f;
}

// Cases of the JSON record whose name starts with `prefix`.
std::vector<std::string> cases(const std::string& prefix) {
    std::vector<std::string> out;
    for (auto it = record()["cases"].begin(); it != record()["cases"].end(); ++it)
        if (it.key().rfind(prefix, 0) == 0) out.push_back(it.key());
    return out;
}
const json& params(const std::string& c) { return record()["cases"][c]["params"]; }
double tol(const std::string& c, const char* which) { return record()["cases"][c]["tol"][which].get<double>(); }

std::vector<int64_t> ints(const Tensor& t) { return t.to_vector<int64_t>(); }

// The mock denoisers of the fixture tool.
Tensor mock(const Tensor& x, int64_t t) {
    return x * (0.3 * std::cos((double)t / 137.0)) + T::sin(x + (double)t / 50.0) * 0.05;
}
Tensor column(const Tensor& e, int64_t k) { return e.narrow(1, k, 1).reshape({e.size(0), 1, 1, 1}); }  // [B,1,1,1]
Tensor mock_cond(const Tensor& x, int64_t t, const Tensor& e) {
    return mock(x, t) + (column(e, 0) * 0.2) * x + T::sin(x * column(e, 1) + column(e, 2)) * 0.1;
}

// diffusers-style checksum of a timestep list (see the fixture tool).
int64_t checksum(const std::vector<int64_t>& ts) {
    int64_t s = 0;
    for (size_t i = 0; i < ts.size(); ++i) s += (int64_t)(i + 1) * (ts[i] + 7);
    return (s + 1000003 * (int64_t)ts.size()) % 2147483647;
}

std::unique_ptr<Scheduler> scheduler_of(const std::string& c) {
    return make_scheduler(SchedulerConfig::from_json(params(c)["config"]));
}

}  // namespace

TEST_CASE("scheduler tables equal diffusers' betas and alphas_cumprod bit for bit", "[cpu][schedulers]") {
    auto names = cases("table.");
    REQUIRE(names.size() == 5);
    for (const auto& c : names) {
        INFO(c);
        SchedulerConfig cfg = SchedulerConfig::from_json(params(c)["config"]);
        const auto betas = compute_betas(cfg);
        const auto ac = compute_alphas_cumprod(betas);
        const int64_t n = cfg.num_train_timesteps;
        CXR_EXPECT_CLOSE(T::from_vector(betas, {n}), fx().get(c + ".betas"), 0.0, 0.0);
        CXR_EXPECT_CLOSE(T::from_vector(ac, {n}), fx().get(c + ".alphas_cumprod"), 0.0, 0.0);
    }
}

TEST_CASE("set_timesteps(n) gives diffusers' list for every n = 1..N", "[cpu][schedulers]") {
    auto names = cases("sweep.");
    REQUIRE(names.size() == 18);
    for (const auto& c : names) {
        INFO(c);
        auto s = scheduler_of(c);
        const std::vector<int64_t> want = fx().get(c).to_vector<int64_t>();
        REQUIRE((int64_t)want.size() == s->num_train_timesteps());
        std::ostringstream bad;
        int mismatches = 0;
        for (int64_t n = 1; n <= s->num_train_timesteps(); ++n) {
            int64_t got = -1;
            try {
                s->set_timesteps(n);
                got = checksum(s->timesteps());
            } catch (const cxr::Error&) {
                got = -1;
            }
            if (got != want[(size_t)(n - 1)] && mismatches++ < 5) bad << " n=" << n;
        }
        INFO("mismatching n:" << bad.str());
        CHECK(mismatches == 0);
    }
}

TEST_CASE("every scheduler step matches diffusers", "[cpu][schedulers]") {
    auto names = cases("run.");
    REQUIRE(names.size() == 20);
    int kinds_seen[4] = {0, 0, 0, 0};
    for (const auto& c : names) {
        INFO(c);
        const json& p = params(c);
        auto s = scheduler_of(c);
        kinds_seen[(int)s->kind()]++;
        if (p["eta"].get<double>() > 0) s->set_eta(p["eta"].get<double>());
        s->set_timesteps(p["steps"].get<int64_t>());
        REQUIRE(s->timesteps() == ints(fx().get(c + ".timesteps")));
        if (auto* dpm = dynamic_cast<DPMSolverMultistepScheduler*>(s.get())) {
            const int64_t n = (int64_t)dpm->sigmas().size();
            CXR_EXPECT_CLOSE(T::from_vector(dpm->sigmas(), {n}), fx().get(c + ".sigmas"), 0.0, 0.0);
        }
        const double atol = tol(c, "atol"), rtol = tol(c, "rtol");
        Tensor x = fx().get(c + ".x_init");  // [2, 4, 4, 4]
        const auto& ts = s->timesteps();
        for (size_t i = 0; i < ts.size(); ++i) {
            const std::string pre = c + ".step" + std::to_string(i);
            INFO("step " << i << " t=" << ts[i]);
            const bool noisy = fx().has(pre + ".noise");
            CHECK(s->needs_noise(ts[i]) == noisy);
            StepOutput out = s->step(mock(x, ts[i]), ts[i], x, noisy ? fx().get(pre + ".noise") : Tensor());
            CXR_EXPECT_CLOSE(out.prev_sample, fx().get(pre + ".prev"), atol, rtol);
            CHECK(out.pred_original_sample.defined() == fx().has(pre + ".x0"));
            if (fx().has(pre + ".x0")) CXR_EXPECT_CLOSE(out.pred_original_sample, fx().get(pre + ".x0"), atol, rtol);
            x = fx().get(pre + ".prev");  // diffusers' sample feeds the next step: each step is checked on its own
        }
    }
    for (int k = 0; k < 4; ++k) CHECK(kinds_seen[k] >= 4);
}

TEST_CASE("sample() runs the whole chain like diffusers (no guidance)", "[cpu][schedulers]") {
    int checked = 0;
    for (const auto& c : cases("run.")) {
        const json& p = params(c);
        if (p["noisy_steps"].get<int>() > 0) continue;  // stochastic runs need diffusers' noise: checked above
        INFO(c);
        auto s = scheduler_of(c);
        SampleOptions o;
        o.num_inference_steps = p["steps"].get<int64_t>();
        o.guidance_scale = 1.0;
        int64_t calls = 0, last = 0;
        o.callback = [&](int64_t step, int64_t total, int64_t t, const Tensor& latents) {
            CHECK(step == last + 1);
            CHECK(total == p["num_timesteps"].get<int64_t>());
            last = step;
            INFO("step " << step << " t=" << t);
            // The chain accumulates the rounding of every step: 10x the per-step tolerance.
            CXR_EXPECT_CLOSE(latents, fx().get(c + ".step" + std::to_string(step - 1) + ".prev"), 1e-4, 1e-4);
        };
        Denoiser model = [&](const Tensor& x, int64_t t, const Tensor& cond) {
            ++calls;
            CHECK_FALSE(cond.defined());
            return mock(x, t);
        };
        Tensor out = sample(model, fx().get(c + ".x_init"), *s, o);
        CHECK(calls == p["num_timesteps"].get<int64_t>());
        CHECK(last == calls);
        CHECK(out.shape() == T::Shape{2, 4, 4, 4});
        ++checked;
    }
    CHECK(checked >= 12);
}

TEST_CASE("classifier-free guidance matches StableDiffusionPipeline's loop", "[cpu][schedulers]") {
    auto names = cases("cfg.");
    REQUIRE(names.size() == 3);
    for (const auto& c : names) {
        INFO(c);
        const json& p = params(c);
        auto s = scheduler_of(c);
        SampleOptions o;
        o.num_inference_steps = p["steps"].get<int64_t>();
        o.guidance_scale = p["guidance_scale"].get<double>();
        o.guidance_rescale = p["guidance_rescale"].get<double>();
        o.cond = fx().get(c + ".cond");      // [2, 3]
        o.uncond = fx().get(c + ".uncond");  // [1, 3], broadcast to the batch
        int64_t steps = 0;
        o.callback = [&](int64_t step, int64_t, int64_t, const Tensor& latents) {
            steps = step;
            INFO("step " << step);
            CXR_EXPECT_CLOSE(latents, fx().get(c + ".step" + std::to_string(step - 1)), tol(c, "atol"), tol(c, "rtol"));
        };
        Denoiser model = [&](const Tensor& x, int64_t t, const Tensor& e) {
            REQUIRE(x.size(0) == 4);  // one batched call over [uncond; cond]
            REQUIRE(e.shape() == T::Shape{4, 3});
            return mock_cond(x, t, e);
        };
        sample(model, fx().get(c + ".latents"), *s, o);
        CHECK(steps == p["num_timesteps"].get<int64_t>());
    }
}

TEST_CASE("add_noise, get_velocity and snr match diffusers", "[cpu][schedulers]") {
    auto names = cases("noise.");
    REQUIRE(names.size() == 2);
    for (const auto& c : names) {
        INFO(c);
        auto s = scheduler_of(c);
        const double atol = tol(c, "atol"), rtol = tol(c, "rtol");
        Tensor x0 = fx().get(c + ".x0"), noise = fx().get(c + ".noise"), ts = fx().get(c + ".timesteps");
        CXR_EXPECT_CLOSE(s->add_noise(x0, noise, ts), fx().get(c + ".noisy"), atol, rtol);
        CXR_EXPECT_CLOSE(s->get_velocity(x0, noise, ts), fx().get(c + ".velocity"), atol, rtol);
        CXR_EXPECT_CLOSE(s->snr(ts), fx().get(c + ".snr"), 0.0, 1e-6);
        CHECK(s->snr(int64_t(500)) == Approx(fx().get(c + ".snr").to_vector<double>()[2]).epsilon(1e-6));
        // i32 timesteps work as well; errors name the problem.
        CXR_EXPECT_CLOSE(s->add_noise(x0, noise, ts.to(T::DType::i32)), fx().get(c + ".noisy"), atol, rtol);
        CHECK_THROWS_WITH(s->add_noise(x0, noise, T::from_vector(std::vector<int64_t>{1, 2}, {2})),
                          Contains("2 timesteps for a batch of 4"));
        CHECK_THROWS_WITH(s->add_noise(x0, noise, T::from_vector(std::vector<int64_t>{0, 1, 2, 1000}, {4})),
                          Contains("timestep 1000 is outside [0, 1000)"));
        CHECK_THROWS_WITH(s->add_noise(x0, noise, ts.to(T::DType::f32)), Contains("integer timesteps"));
        CHECK_THROWS_WITH(s->get_velocity(x0, noise.narrow(0, 0, 2), ts), Contains("differs from x0 shape"));
    }
}

TEST_CASE("scheduler configs: defaults, kind override, unknown keys, Python infinities", "[cpu][schedulers]") {
    // Stable Diffusion 1.5's scheduler_config.json (PNDM) with keys no class reads.
    json sd = {{"_class_name", "PNDMScheduler"}, {"_diffusers_version", "0.6.0"}, {"beta_end", 0.012},
               {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"num_train_timesteps", 1000},
               {"set_alpha_to_one", false}, {"skip_prk_steps", true}, {"steps_offset", 1}, {"trained_betas", nullptr},
               {"clip_sample", false}, {"some_future_key", {1, 2, 3}}};
    SchedulerConfig p = SchedulerConfig::from_json(sd);
    CHECK(p.kind == SchedulerKind::pndm);
    CHECK(p.skip_prk_steps);
    CHECK_FALSE(p.set_alpha_to_one);
    CHECK(p.steps_offset == 1);
    CHECK(p.timestep_spacing == TimestepSpacing::leading);
    // The same file loaded as DDIM (DDIMScheduler.from_config(pipe.scheduler.config)): present keys kept, the rest
    // DDIM's defaults.
    const SchedulerKind ddim = SchedulerKind::ddim, dpm = SchedulerKind::dpm_solver_multistep;
    SchedulerConfig d = SchedulerConfig::from_json(sd, ddim);
    CHECK(d.kind == SchedulerKind::ddim);
    CHECK_FALSE(d.set_alpha_to_one);
    CHECK_FALSE(d.clip_sample);
    CHECK(d.prediction_type == PredictionType::epsilon);
    SchedulerConfig m = SchedulerConfig::from_json(sd, dpm);
    CHECK(m.timestep_spacing == TimestepSpacing::linspace);  // DPM-Solver's default
    CHECK(m.solver_order == 2);
    CHECK(m.final_sigmas_type == FinalSigmasType::zero);
    // Defaults differ by class as in diffusers.
    CHECK(SchedulerConfig::defaults(SchedulerKind::ddim).set_alpha_to_one);
    CHECK_FALSE(SchedulerConfig::defaults(SchedulerKind::pndm).set_alpha_to_one);
    CHECK(SchedulerConfig::defaults(SchedulerKind::ddpm).clip_sample);
    CHECK(SchedulerConfig::defaults(SchedulerKind::ddpm).variance_type == VarianceType::fixed_small);
    // A key a class does not read is ignored even when it would be refused by another class.
    json pndm_karras = sd;
    pndm_karras["use_karras_sigmas"] = true;
    pndm_karras["thresholding"] = true;
    CHECK_NOTHROW(SchedulerConfig::from_json(pndm_karras));
    // to_json round trip.
    for (auto k : {SchedulerKind::ddpm, SchedulerKind::ddim, SchedulerKind::pndm, SchedulerKind::dpm_solver_multistep}) {
        SchedulerConfig c = SchedulerConfig::from_json(sd, k);
        c.lambda_min_clipped = k == dpm ? -5.5 : c.lambda_min_clipped;
        SchedulerConfig back = SchedulerConfig::from_json(c.to_json());
        CHECK(back.to_json() == c.to_json());
        CHECK(back.kind == k);
    }
    // trained_betas replace the schedule (here: the linear table, so the tables must agree with diffusers').
    json tb = {{"_class_name", "DDPMScheduler"}, {"beta_schedule", "squaredcos_cap_v2"}};
    tb["trained_betas"] = fx().get("table.linear.betas").to_vector<double>();
    auto tbs = make_scheduler(SchedulerConfig::from_json(tb));
    CXR_EXPECT_CLOSE(T::from_vector(tbs->alphas_cumprod(), {1000}), fx().get("table.linear.alphas_cumprod"), 0.0, 0.0);
    // A file as Python writes it: bare -Infinity outside strings (kept inside strings).
    cxr::testing::TempDir tmp("sched");
    {
        std::ofstream f(tmp / "scheduler_config.json");
        f << R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
                "note": "-Infinity NaN stay text", "solver_order": 3, "timestep_spacing": "trailing"})";
    }
    SchedulerConfig f = SchedulerConfig::from_file(tmp / "scheduler_config.json");
    CHECK(f.kind == SchedulerKind::dpm_solver_multistep);
    CHECK(std::isinf(f.lambda_min_clipped));
    CHECK(f.lambda_min_clipped < 0);
    CHECK(f.solver_order == 3);
    CHECK(f.timestep_spacing == TimestepSpacing::trailing);
    {
        std::ofstream bad(tmp / "bad.json");
        bad << "{\"_class_name\": ";
    }
    CHECK_THROWS_WITH(SchedulerConfig::from_file(tmp / "bad.json"), Contains("bad.json") && Contains("not valid JSON"));
    CHECK_THROWS_WITH(SchedulerConfig::from_file(tmp / "missing.json"), Contains("cannot open"));
    {
        std::ofstream bad(tmp / "badval.json");
        bad << R"({"_class_name": "DDIMScheduler", "beta_schedule": "sigmoid"})";
    }
    CHECK_THROWS_WITH(SchedulerConfig::from_file(tmp / "badval.json"),
                      Contains("badval.json") && Contains("beta_schedule") && Contains("sigmoid"));
}

TEST_CASE("scheduler config errors name the key", "[cpu][schedulers]") {
    auto err = [](json j) -> std::string {
        try {
            SchedulerConfig::from_json(j);
        } catch (const cxr::Error& e) {
            return e.what();
        }
        return "(no error)";
    };
    const json ddim = {{"_class_name", "DDIMScheduler"}};
    const json dpm = {{"_class_name", "DPMSolverMultistepScheduler"}};
    const json ddpm = {{"_class_name", "DDPMScheduler"}};
    auto with = [](json j, const char* k, json v) {
        j[k] = v;
        return j;
    };
    CHECK_THAT(err(json::object()), Contains("_class_name"));
    CHECK_THAT(err(json::array()), Contains("JSON object"));
    CHECK_THAT(err({{"_class_name", "EulerDiscreteScheduler"}}), Contains("EulerDiscreteScheduler") && Contains("not supported"));
    CHECK_THAT(err(with(ddim, "num_train_timesteps", "1000")), Contains("num_train_timesteps") && Contains("integer"));
    CHECK_THAT(err(with(ddim, "num_train_timesteps", 0)), Contains("num_train_timesteps must be >= 1"));
    CHECK_THAT(err(with(ddim, "num_train_timesteps", 10.5)), Contains("num_train_timesteps"));
    CHECK_THAT(err(with(ddim, "beta_start", "small")), Contains("beta_start") && Contains("number"));
    CHECK_THAT(err(with(ddim, "beta_end", 1.5)), Contains("beta_end must lie in [0, 1)"));
    CHECK_THAT(err(with(ddim, "beta_schedule", "sigmoid")), Contains("beta_schedule") && Contains("linear, scaled_linear"));
    CHECK_THAT(err(with(ddim, "prediction_type", "flow_prediction")), Contains("prediction_type"));
    CHECK_THAT(err(with(ddim, "timestep_spacing", "karras")), Contains("timestep_spacing"));
    CHECK_THAT(err(with(ddim, "clip_sample", "no")), Contains("clip_sample") && Contains("true or false"));
    CHECK_THAT(err(with(ddim, "clip_sample_range", -1.0)), Contains("clip_sample_range must be > 0"));
    CHECK_THAT(err(with(ddim, "steps_offset", -1)), Contains("steps_offset"));
    CHECK_THAT(err(with(ddim, "thresholding", true)), Contains("thresholding"));
    CHECK_THAT(err(with(ddim, "rescale_betas_zero_snr", true)), Contains("rescale_betas_zero_snr"));
    CHECK_THAT(err(with(ddim, "trained_betas", json::array({0.1, 0.2}))), Contains("trained_betas has 2 values"));
    CHECK_THAT(err(with(ddim, "trained_betas", "abc")), Contains("trained_betas"));
    CHECK_THAT(err(with(ddpm, "variance_type", "learned_range")), Contains("variance_type") && Contains("learned_range"));
    CHECK_THAT(err(with(dpm, "variance_type", "learned")), Contains("variance_type"));
    CHECK_THAT(err(with(dpm, "solver_order", 4)), Contains("solver_order must be 1, 2 or 3"));
    CHECK_THAT(err(with(dpm, "algorithm_type", "sde-dpmsolver++")), Contains("algorithm_type") && Contains("sde-dpmsolver++"));
    CHECK_THAT(err(with(dpm, "solver_type", "rk4")), Contains("solver_type"));
    CHECK_THAT(err(with(dpm, "final_sigmas_type", "one")), Contains("final_sigmas_type"));
    CHECK_THAT(err(with(dpm, "use_karras_sigmas", true)), Contains("use_karras_sigmas"));
    CHECK_THAT(err(with(dpm, "lambda_min_clipped", "low")), Contains("lambda_min_clipped"));
    CHECK_THAT(err({{"_class_name", "PNDMScheduler"}, {"prediction_type", "sample"}}), Contains("prediction_type \"sample\""));
    // Values that are the default are accepted (diffusers writes them all).
    CHECK(err(with(with(dpm, "use_karras_sigmas", false), "variance_type", nullptr)) == "(no error)");
    CHECK(err(with(dpm, "algorithm_type", "deis")) == "(no error)");  // diffusers maps deis to dpmsolver++
    // A cosine schedule ignores beta_start / beta_end; betas that leave (0, 1) are refused by the scheduler.
    CHECK_NOTHROW(make_scheduler(SchedulerConfig::from_json(with(with(ddim, "beta_schedule", "squaredcos_cap_v2"), "beta_end", 0.5))));
    CHECK_THROWS_WITH(make_scheduler(SchedulerConfig::from_json(with(ddim, "beta_start", 0.0))), Contains("outside (0, 1)"));
}

TEST_CASE("scheduler misuse is refused with a clear error", "[cpu][schedulers]") {
    Tensor x = T::zeros({1, 2, 2, 2});
    for (auto k : {SchedulerKind::ddpm, SchedulerKind::ddim, SchedulerKind::pndm, SchedulerKind::dpm_solver_multistep}) {
        auto s = make_scheduler(SchedulerConfig::defaults(k));
        INFO(s->name());
        CHECK_FALSE(s->has_timesteps());
        CHECK_THROWS_WITH(s->step(x, 999, x), Contains("before set_timesteps"));
        CHECK_THROWS_WITH(s->timesteps(), Contains("set_timesteps"));
        CHECK_THROWS_WITH(s->set_timesteps(1001), Contains("cannot be larger than num_train_timesteps = 1000"));
        CHECK_THROWS_WITH(s->set_timesteps(0), Contains("must be >= 1"));
        s->set_timesteps(10);
        const int64_t t0 = s->timesteps()[0];
        CHECK_THROWS_WITH(s->step(T::zeros({1, 2, 2, 3}), t0, x), Contains("differs from the sample shape"));
        if (k != SchedulerKind::ddim) CHECK_THROWS_WITH(s->set_eta(0.5), Contains("no eta"));
        CHECK(s->init_noise_sigma() == 1.0);
        CHECK(s->scale_model_input(x, t0).same(x));
    }
    auto ddpm = make_scheduler(SchedulerConfig::defaults(SchedulerKind::ddpm));
    ddpm->set_timesteps(10);
    CHECK_THROWS_WITH(ddpm->step(x, 900, x), Contains("stochastic and needs noise"));
    CHECK_THROWS_WITH(ddpm->step(x, 901, x, T::zeros({1, 2, 2, 2})), Contains("901 is not in the schedule"));
    CHECK_THROWS_WITH(ddpm->step(x, 900, x, T::zeros({1, 2, 2, 1})), Contains("noise shape"));
    CHECK_NOTHROW(ddpm->step(x, 0, x));  // t = 0: deterministic
    auto ddim = make_scheduler(SchedulerConfig::defaults(SchedulerKind::ddim));
    CHECK_THROWS_WITH(ddim->set_eta(1.5), Contains("eta must lie in [0, 1]"));
    ddim->set_timesteps(10);
    CHECK_FALSE(ddim->needs_noise(900));
    CHECK_THROWS_WITH(ddim->step(x, 1000, x), Contains("timestep 1000 is outside [0, 1000)"));
    auto dpm = make_scheduler(SchedulerConfig::defaults(SchedulerKind::dpm_solver_multistep));
    dpm->set_timesteps(2);
    REQUIRE(dpm->timesteps() == std::vector<int64_t>{999, 500});
    CHECK_THROWS_WITH(dpm->step(x, 998, x), Contains("998 is not in the schedule"));
    dpm->step(x, 999, x);
    CHECK_THROWS_WITH(dpm->step(x, 999, x), Contains("expects timestep 500"));
    dpm->step(x, 500, x);
    CHECK_THROWS_WITH(dpm->step(x, 500, x), Contains("all 2 steps are done"));
    auto prk = make_scheduler(SchedulerConfig::defaults(SchedulerKind::pndm));
    CHECK_THROWS_WITH(prk->set_timesteps(3), Contains("at least 4 inference steps"));
}

TEST_CASE("set_timesteps resets the multistep history", "[cpu][schedulers]") {
    for (const char* c : {"run.pndm_sd15", "run.pndm_linear_prk", "run.dpm_linear_o3_sigmamin"}) {
        INFO(c);
        auto s = scheduler_of(c);
        const int64_t steps = params(c)["steps"].get<int64_t>();
        std::vector<Tensor> first;
        for (int pass = 0; pass < 2; ++pass) {
            s->set_timesteps(steps);
            Tensor x = fx().get(std::string(c) + ".x_init");
            for (int64_t t : s->timesteps()) x = s->step(mock(x, t), t, x).prev_sample;
            first.push_back(x);
            if (pass == 0) {  // leave the scheduler mid-run before starting again
                s->set_timesteps(steps);
                s->step(mock(x, s->timesteps()[0]), s->timesteps()[0], x);
            }
        }
        CXR_EXPECT_CLOSE(first[1], first[0], 0.0, 0.0);
    }
}

TEST_CASE("stochastic sampling is reproducible from Philox generators, one per image", "[cpu][schedulers]") {
    auto s = make_scheduler(SchedulerConfig::from_json(params("run.ddpm_sd15")["config"]));
    Denoiser model = [](const Tensor& x, int64_t t, const Tensor&) { return mock(x, t); };
    Tensor latents = fx().get("run.ddpm_sd15.x_init");  // [2, 4, 4, 4]
    auto run = [&](const Tensor& lat, std::vector<T::Generator*> gens) {
        SampleOptions o;
        o.num_inference_steps = 5;
        o.guidance_scale = 1.0;
        o.generators = std::move(gens);
        return sample(model, lat, *s, o);
    };
    T::Generator g1(123), g2(123);
    Tensor a = run(latents, {&g1}), b = run(latents, {&g2});
    CXR_EXPECT_CLOSE(a, b, 0.0, 0.0);
    CHECK(g1.offset() > 0);
    // Per-image generators: the batch equals the images sampled one by one.
    T::Generator ga(7), gb(8), ha(7), hb(8);
    Tensor batch = run(latents, {&ga, &gb});
    Tensor one0 = run(latents.narrow(0, 0, 1), {&ha});
    Tensor one1 = run(latents.narrow(0, 1, 1), {&hb});
    CXR_EXPECT_CLOSE(batch, T::cat({one0, one1}, 0), 0.0, 0.0);
    // The stochastic DDIM (eta > 0) draws noise too; eta is refused for other schedulers.
    auto ddim = make_scheduler(SchedulerConfig::defaults(SchedulerKind::ddim));
    SampleOptions o;
    o.num_inference_steps = 4;
    o.guidance_scale = 1.0;
    o.eta = 1.0;
    T::Generator gd(5);
    o.generators = {&gd};
    sample(model, latents, *ddim, o);
    CHECK(gd.offset() > 0);
    CHECK(ddim->eta() == 1.0);
    CHECK_THROWS_WITH(sample(model, latents, *s, o), Contains("eta = 1 is only meaningful for DDIMScheduler"));
}

TEST_CASE("sample() refuses bad options", "[cpu][schedulers]") {
    auto s = make_scheduler(SchedulerConfig::defaults(SchedulerKind::ddim));
    Denoiser model = [](const Tensor& x, int64_t t, const Tensor&) { return mock(x, t); };
    Tensor lat = T::zeros({2, 4, 2, 2});
    SampleOptions o;
    o.num_inference_steps = 3;
    o.cond = T::zeros({2, 3});
    CHECK_THROWS_WITH(sample(model, lat, *s, o), Contains("needs both cond and uncond"));
    o.uncond = T::zeros({3, 3});
    CHECK_THROWS_WITH(sample(model, lat, *s, o), Contains("uncond shape"));
    o.uncond = T::zeros({2, 3});
    o.cond = T::zeros({3, 3});
    CHECK_THROWS_WITH(sample(model, lat, *s, o), Contains("cond has batch 3"));
    o.cond = T::zeros({2, 3});
    T::Generator g(1);
    o.generators = {&g, &g, &g};
    CHECK_THROWS_WITH(sample(model, lat, *s, o), Contains("3 generators for a batch of 2"));
    o.generators.clear();
    o.guidance_rescale = 2.0;
    CHECK_THROWS_WITH(sample(model, lat, *s, o), Contains("guidance_rescale"));
    o.guidance_rescale = 0.0;
    Denoiser wrong = [](const Tensor& x, int64_t, const Tensor&) { return x.narrow(0, 0, 1); };
    CHECK_THROWS_WITH(sample(wrong, lat, *s, o), Contains("the model returned shape"));
    CHECK_NOTHROW(sample(model, lat, *s, o));
    CHECK_THROWS_WITH(sample(Denoiser(), lat, *s, o), Contains("no denoiser"));
    // guidance_scale <= 1: no guidance, one call per step with the conditioning alone
    o.guidance_scale = 1.0;
    o.uncond = Tensor();
    int64_t batch = 0;
    Denoiser seen = [&](const Tensor& x, int64_t t, const Tensor& c) {
        batch = x.size(0);
        CHECK(c.same(o.cond));
        return mock(x, t);
    };
    sample(seen, lat, *s, o);
    CHECK(batch == 2);
}
