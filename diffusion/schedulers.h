// Diffusion noise schedulers — DDPM, DDIM, PNDM (PLMS, with or without the PRK warm-up) and DPM-Solver++
// (multistep, orders 1-3) — with the semantics of huggingface diffusers' DDPMScheduler, DDIMScheduler,
// PNDMScheduler and DPMSolverMultistepScheduler (diffusers 0.42): the same configuration keys and defaults, the
// same timestep lists, the same update formulas, the same state machine for the multistep methods. The tests
// compare every step against fixtures written by diffusers itself (tests/fixtures/tools/make_scheduler_fixtures.py).
//
// NOISE SCHEDULE (shared by all kinds; N = num_train_timesteps, t = 0..N-1)
//   betas, as float32 exactly as diffusers computes them:
//     linear              beta_t = torch.linspace(beta_start, beta_end, N) in float32: with step = (end - start)/(N-1)
//                         rounded to float, beta_t = fma(step, t, start) for t < N/2 and fma(-step, N-1-t, end)
//                         otherwise (one rounding each; this reproduces torch's CPU kernel bit for bit)
//     scaled_linear       (float32 linspace from sqrt(beta_start) to sqrt(beta_end))^2        (Stable Diffusion)
//     squaredcos_cap_v2   beta_t = min(1 - abar((t+1)/N) / abar(t/N), 0.999) in double, then float32, with
//                         abar(s) = cos((s + 0.008)/1.008 · π/2)^2      (Nichol & Dhariwal 2021, "improved DDPM")
//     trained_betas       the listed values (float32)
//   alphas_t = 1 - beta_t (float32);  alphas_cumprod ᾱ_t = Π_{s<=t} alpha_s, accumulated in double and rounded to
//   float32 after each factor (torch.cumprod's CPU kernel). Step coefficients are computed in double from these
//   float32 tables (DDIM's in float32, in diffusers' order; see DDIMScheduler) and applied to the tensors in their
//   own dtype. Measured agreement with diffusers: tables and timesteps bit-exact, each step within 1e-6 relative.
//   Forward process (Ho et al. 2020, eq. 4):   x_t = √ᾱ_t · x0 + √(1-ᾱ_t) · ε             (add_noise)
//   v-prediction target (Salimans & Ho 2022):  v   = √ᾱ_t · ε  - √(1-ᾱ_t) · x0            (get_velocity)
//   signal-to-noise ratio:                     SNR(t) = ᾱ_t / (1 - ᾱ_t)                    (snr; min-SNR weighting,
//                                                                                            Hang et al. 2023)
//   Model output -> predicted x0 ("prediction_type"):
//     epsilon        x0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t
//     v_prediction   x0 = √ᾱ_t x_t - √(1-ᾱ_t) v̂       (and ε = √ᾱ_t v̂ + √(1-ᾱ_t) x_t)
//     sample         x0 = model output
//
// TIMESTEPS of set_timesteps(n) (numpy's linspace / arange / round-half-to-even reproduced exactly):
//   linspace   round(linspace(0, N-1, n)) descending
//   leading    (0, r, 2r, ..., (n-1) r) descending + steps_offset,   r = N div n
//   trailing   round(arange(N, 0, -N/n)) - 1                      (descending, starts at N-1)
//   PNDM builds its list from the ascending form of these (see PNDMScheduler); DPM-Solver uses n+1 points and drops
//   the last (see DPMSolverMultistepScheduler).
//
// Every scheduler refuses step() before set_timesteps() (diffusers' DDPM would fall back to all N timesteps), refuses
// n > N or n < 1 (diffusers checks this only in DDPM and DDIM), and checks shapes. The stateful
// ones (PNDM, DPM-Solver) reset their history in set_timesteps(). Unsupported diffusers options (thresholding,
// karras/exponential/beta/lu/flow sigmas, zero-terminal-SNR rescaling, learned variances, the dpmsolver /
// sde-dpmsolver algorithms, other beta schedules) are refused with an error naming the key, never ignored.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tensor/tensor.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::diffusion {

using tensor::Tensor;

// The scheduler classes; the names are diffusers' `_class_name` values.
enum class SchedulerKind { ddpm, ddim, pndm, dpm_solver_multistep };
enum class BetaSchedule { linear, scaled_linear, squaredcos_cap_v2 };
enum class PredictionType { epsilon, v_prediction, sample };
enum class TimestepSpacing { leading, trailing, linspace };
// DDPM's posterior variance (fixed_small: β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t; fixed_small_log: the same through
// exp(½ log β̃_t); fixed_large: β_t). `none` is DPM-Solver's default (null); learned variances are refused.
enum class VarianceType { none, fixed_small, fixed_small_log, fixed_large };
enum class FinalSigmasType { zero, sigma_min };
enum class DpmSolverType { midpoint, heun };

std::string to_string(SchedulerKind k);  // "DDPMScheduler", ...
std::string to_string(BetaSchedule b);
std::string to_string(PredictionType p);
std::string to_string(TimestepSpacing s);
std::string to_string(VarianceType v);   // none -> "none" (written as null in JSON)
std::string to_string(FinalSigmasType f);
std::string to_string(DpmSolverType s);
// Inverse of to_string(SchedulerKind); throws naming the supported classes.
SchedulerKind parse_scheduler_kind(const std::string& class_name);

// The fields of a diffusers scheduler_config.json that matter to these four schedulers. Use defaults(kind): the
// defaults differ by class exactly as in diffusers (e.g. set_alpha_to_one is true for DDIM and false for PNDM,
// timestep_spacing is "leading" except for DPM-Solver's "linspace").
struct SchedulerConfig {
    SchedulerKind kind = SchedulerKind::ddpm;
    int64_t num_train_timesteps = 1000;
    double beta_start = 0.0001;
    double beta_end = 0.02;
    BetaSchedule beta_schedule = BetaSchedule::linear;
    std::vector<double> trained_betas;  // empty = computed from beta_schedule
    PredictionType prediction_type = PredictionType::epsilon;
    int64_t steps_offset = 0;
    TimestepSpacing timestep_spacing = TimestepSpacing::leading;
    // DDPM / DDIM: clamp the predicted x0 to [-clip_sample_range, clip_sample_range].
    bool clip_sample = true;
    double clip_sample_range = 1.0;
    // DDIM / PNDM: ᾱ used after the last step (1, or ᾱ_0 when false).
    bool set_alpha_to_one = true;
    // DDPM
    VarianceType variance_type = VarianceType::fixed_small;
    // PNDM: true = PLMS from the first step (Stable Diffusion); false = 12 Runge-Kutta (PRK) warm-up steps first.
    bool skip_prk_steps = false;
    // DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models")
    int64_t solver_order = 2;
    std::string algorithm_type = "dpmsolver++";  // the only algorithm supported
    DpmSolverType solver_type = DpmSolverType::midpoint;
    bool lower_order_final = true;
    bool euler_at_final = false;
    FinalSigmasType final_sigmas_type = FinalSigmasType::zero;
    double lambda_min_clipped = -std::numeric_limits<double>::infinity();  // -inf: no clipping
    // Refused when true (kept so that from_json can name them).
    bool thresholding = false;

    // diffusers' defaults for a class.
    static SchedulerConfig defaults(SchedulerKind kind);
    // From a parsed scheduler_config.json. The class comes from `_class_name` unless `kind` is given (then it
    // overrides, like diffusers' OtherScheduler.from_config(config): the keys present are taken, the others get the
    // new class's defaults). Unknown keys are ignored (diffusers writes many); keys with a wrong type or a bad or
    // unsupported value are refused naming the key. null means "default". Floats may also be given as the strings
    // "Infinity" / "-Infinity" / "inf" / "-inf" (what Python writes for lambda_min_clipped).
    static SchedulerConfig from_json(const nlohmann::json& j, std::optional<SchedulerKind> kind = std::nullopt);
    // From a file; accepts Python's non-standard JSON tokens NaN / Infinity / -Infinity outside strings (as
    // diffusers writes them). Errors name the file.
    static SchedulerConfig from_file(const std::string& path, std::optional<SchedulerKind> kind = std::nullopt);
    // The keys of this class as diffusers writes them (with _class_name), so a run can record its resolved config.
    nlohmann::json to_json() const;
    // Throws cxr::Error naming the first bad field.
    void validate() const;
};

// The float32 tables of a config (see NOISE SCHEDULE above).
std::vector<float> compute_betas(const SchedulerConfig& config);
std::vector<float> compute_alphas_cumprod(const std::vector<float>& betas);

// What step() returns. pred_original_sample is the predicted x0 where the method has one (DDPM, DDIM, DPM-Solver;
// undefined for PNDM, as in diffusers).
struct StepOutput {
    Tensor prev_sample;           // x_{t_prev}, the shape of the sample
    Tensor pred_original_sample;  // x0 estimate, or undefined
};

class Scheduler {
public:
    explicit Scheduler(SchedulerConfig config);  // validates the config and builds the tables
    virtual ~Scheduler() = default;
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    const SchedulerConfig& config() const { return config_; }
    SchedulerKind kind() const { return config_.kind; }
    std::string name() const { return to_string(config_.kind); }
    int64_t num_train_timesteps() const { return config_.num_train_timesteps; }
    const std::vector<float>& betas() const { return betas_; }
    const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }  // ᾱ_t, float32 as diffusers

    // Prepares n inference steps: the timestep list and a fresh history. Throws for n < 1 or n > N.
    virtual void set_timesteps(int64_t num_inference_steps) = 0;
    bool has_timesteps() const { return num_inference_steps_ > 0; }
    int64_t num_inference_steps() const { return num_inference_steps_; }  // as passed to set_timesteps
    // The timesteps to run, in order (diffusers' scheduler.timesteps). PNDM and DPM-Solver have their own lists.
    // Throws before set_timesteps.
    const std::vector<int64_t>& timesteps() const;

    // One reverse step at timestep t: model_output and sample have the same shape ([B, C, H, W] for latents).
    // `noise` (same shape) is the Gaussian noise of a stochastic step (needs_noise(t)); ignored otherwise.
    StepOutput step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise = Tensor());
    // The same with the noise (when needed) drawn as randn of the sample's shape, dtype and device from `gen`
    // (the default generator when null).
    StepOutput step(const Tensor& model_output, int64_t t, const Tensor& sample, tensor::Generator* gen);
    // True when step() at t consumes noise: DDPM for t > 0, DDIM when eta > 0.
    virtual bool needs_noise(int64_t t) const { return false; }

    // The std of the initial noise (1 for these four) and the model-input scaling (identity for these four).
    virtual double init_noise_sigma() const { return 1.0; }
    virtual Tensor scale_model_input(const Tensor& sample, int64_t t) const { return sample; }

    // DDIM's η (0 = deterministic DDIM, 1 = DDPM-like variance). Other schedulers accept only 0.
    virtual void set_eta(double eta);
    virtual double eta() const { return 0.0; }

    // Training helpers (DDPM's formulas; see NOISE SCHEDULE). timesteps: integer tensor [B] (any device), one per
    // batch element of x0 [B, ...]. x0 and noise have the same shape.
    Tensor add_noise(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const;
    Tensor get_velocity(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const;
    Tensor snr(const Tensor& timesteps) const;  // [B] float32 on the timesteps' device
    double snr(int64_t t) const;

protected:
    virtual StepOutput do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) = 0;
    // Checks n against [1, N] naming the scheduler.
    void check_num_inference_steps(int64_t n) const;
    // ᾱ_t as a double, checking 0 <= t < N.
    double alpha_prod(int64_t t) const;
    // The x0 clamp of DDPM / DDIM when clip_sample is set.
    Tensor maybe_clip(const Tensor& x0) const;
    // Per-batch-element coefficient tensor [B, 1, ..., 1] (ndim of `like`) from host values.
    Tensor per_batch(const std::vector<double>& values, const Tensor& like) const;
    std::vector<int64_t> timesteps_host(const Tensor& timesteps, int64_t batch, const char* what) const;

    SchedulerConfig config_;
    std::vector<float> betas_;
    std::vector<float> alphas_cumprod_;
    std::vector<int64_t> timesteps_;
    int64_t num_inference_steps_ = 0;
};

// DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eqs. 6-7). With t' the next
// timestep of the list (-1 after the last; ᾱ_{-1} = 1):
//   α_t' = ᾱ_t / ᾱ_t',  β_t' = 1 - α_t'
//   μ = (√ᾱ_t' β_t' / (1-ᾱ_t)) x0 + (√α_t' (1-ᾱ_t') / (1-ᾱ_t)) x_t,    x_t' = μ + σ_t z   (z only for t > 0)
//   σ_t² = β̃ = (1-ᾱ_t')/(1-ᾱ_t) β_t' clamped at 1e-20 (fixed_small / fixed_small_log), or β_t' (fixed_large).
class DDPMScheduler : public Scheduler {
public:
    explicit DDPMScheduler(SchedulerConfig config);
    void set_timesteps(int64_t num_inference_steps) override;
    bool needs_noise(int64_t t) const override { return t > 0; }
    // The posterior variance σ_t² used at t (after set_timesteps).
    double variance(int64_t t) const;

protected:
    StepOutput do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) override;

private:
    int64_t previous_timestep(int64_t t) const;
};

// DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12). t' = t - N div n (ᾱ_{t'} = final ᾱ when
// t' < 0: 1 if set_alpha_to_one else ᾱ_0):
//   σ_t = η √((1-ᾱ_t')/(1-ᾱ_t)) √(1 - ᾱ_t/ᾱ_t')
//   x_t' = √ᾱ_t' x0 + √(1 - ᾱ_t' - σ_t²) ε̂ + σ_t z          (z only when η > 0)
// With use_clipped_model_output, ε̂ is recomputed from the clipped x0. The scalar coefficients are computed in
// float32 exactly as diffusers' 0-d float32 tensors do: at η = 1, √(1 - ᾱ_t' - σ_t²) cancels catastrophically near
// t = N-1, and the reference samples follow diffusers' float32 value of it (a double computation differs by ~1e-4).
class DDIMScheduler : public Scheduler {
public:
    explicit DDIMScheduler(SchedulerConfig config);
    void set_timesteps(int64_t num_inference_steps) override;
    bool needs_noise(int64_t t) const override { return eta_ > 0.0; }
    void set_eta(double eta) override;  // 0 <= eta <= 1
    double eta() const override { return eta_; }
    void set_use_clipped_model_output(bool on) { use_clipped_model_output_ = on; }

protected:
    StepOutput do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) override;

private:
    double eta_ = 0.0;
    bool use_clipped_model_output_ = false;
};

// PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"). The transfer from t to t'
// with a noise estimate ε (diffusers' _get_prev_sample; ᾱ_t' = final ᾱ when t' < 0):
//   x_t' = √(ᾱ_t'/ᾱ_t) x_t - (ᾱ_t' - ᾱ_t) ε / (ᾱ_t √(1-ᾱ_t') + √(ᾱ_t (1-ᾱ_t) ᾱ_t'))
// (v-prediction converts first: ε = √ᾱ_t v + √(1-ᾱ_t) x_t; prediction_type "sample" is refused as in diffusers.)
// PLMS (linear multistep) with the history e_1.. of model outputs, δ = N div n:
//   1st call: ε = e1, transfer t -> t-δ, remember x_t;   2nd call (same t-δ given again): ε = (e + e1)/2 applied
//   from the remembered x_t at t to t-δ (a Heun-like correction);   then ε = (3e1 - e2)/2,
//   (23e1 - 16e2 + 5e3)/12, and (55e1 - 59e2 + 37e3 - 9e4)/24.
// Timesteps with skip_prk_steps (ascending base list b of set_timesteps' spacing): b[:-1], b[-2], b[-1] reversed —
// n+1 entries, the second-to-last repeated. Without it: 12 PRK steps (the classical 4-stage Runge-Kutta on the
// last 3 intervals of b, with half steps δ/2) then PLMS on b[:-3] reversed; needs n >= 4.
class PNDMScheduler : public Scheduler {
public:
    explicit PNDMScheduler(SchedulerConfig config);
    void set_timesteps(int64_t num_inference_steps) override;
    const std::vector<int64_t>& prk_timesteps() const { return prk_timesteps_; }
    const std::vector<int64_t>& plms_timesteps() const { return plms_timesteps_; }

protected:
    StepOutput do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) override;

private:
    Tensor step_prk(const Tensor& model_output, int64_t t, const Tensor& sample);
    Tensor step_plms(const Tensor& model_output, int64_t t, const Tensor& sample);
    Tensor transfer(const Tensor& sample, int64_t t, int64_t t_prev, const Tensor& eps) const;

    std::vector<int64_t> prk_timesteps_, plms_timesteps_;
    std::vector<Tensor> ets_;    // model outputs of the PLMS history (at most 4)
    Tensor cur_sample_;          // undefined = none
    Tensor cur_model_output_;    // PRK accumulator; undefined = 0
    int64_t counter_ = 0;
};

// DPM-Solver++ multistep, data prediction (Lu et al. 2022, algorithm_type "dpmsolver++"). In terms of
// σ_i = √((1-ᾱ)/ᾱ) at each step (float32 table; σ after the last step = 0 for final_sigmas_type "zero", σ of t=0
// for "sigma_min"): α_i = 1/√(σ_i²+1), s_i = σ_i α_i, λ_i = log α_i - log s_i, h = λ_{i+1} - λ_i.
//   The model output is first turned into D = x0 (epsilon / v / sample as above); history m0 (now), m1, m2.
//   order 1:  x' = (s_{i+1}/s_i) x - α_{i+1} (e^{-h} - 1) m0
//   order 2:  r0 = h_0/h (h_0 = λ_i - λ_{i-1}),  D1 = (m0 - m1)/r0
//             midpoint: x' = (s_{i+1}/s_i) x - α_{i+1}(e^{-h}-1) m0 - ½ α_{i+1}(e^{-h}-1) D1
//             heun:     x' = (s_{i+1}/s_i) x - α_{i+1}(e^{-h}-1) m0 + α_{i+1}((e^{-h}-1)/h + 1) D1
//   order 3:  r1 = h_1/h,  D1_0 = (m0-m1)/r0, D1_1 = (m1-m2)/r1, D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1),
//             D2 = (D1_0 - D1_1)/(r0+r1);
//             x' = (s_{i+1}/s_i) x - α_{i+1}(e^{-h}-1) m0 + α_{i+1}((e^{-h}-1)/h + 1) D1 - α_{i+1}((e^{-h}-1+h)/h² - ½) D2
//   The order used at step i: 1 for the first step, min(solver_order, steps done + 1) after, and 1 at the last step
//   when final_sigmas_type is "zero", euler_at_final is set, or lower_order_final with fewer than 15 steps (then
//   also at most 2 at the second-to-last step).
// step(t): the first call finds t in the list (the second occurrence if t occurs twice, as diffusers'
// index_for_timestep); later calls must pass the following timesteps in order. Stricter than diffusers, which
// ignores t after the first call and takes the last step for an unknown t: both are refused here.
// Timesteps (L = N minus the number of λ_t below lambda_min_clipped): linspace round(linspace(0, L-1, n+1))
// descending without its last entry; leading (0, r, ..., n r) with r = L div (n+1), descending, last dropped,
// + steps_offset; trailing round(arange(L, 0, -N/n)) - 1.
class DPMSolverMultistepScheduler : public Scheduler {
public:
    explicit DPMSolverMultistepScheduler(SchedulerConfig config);
    void set_timesteps(int64_t num_inference_steps) override;
    // σ of each step plus the final one (n+1 values, float32 as diffusers' scheduler.sigmas).
    const std::vector<float>& sigmas() const { return sigmas_; }
    int64_t step_index() const { return step_index_; }  // -1 before the first step

protected:
    StepOutput do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) override;

private:
    std::vector<float> sigmas_;
    std::vector<Tensor> model_outputs_;  // x0 history, oldest first (solver_order entries; undefined = none yet)
    int64_t lower_order_nums_ = 0;
    int64_t step_index_ = -1;
};

// The scheduler of config.kind.
std::unique_ptr<Scheduler> make_scheduler(const SchedulerConfig& config);

// numpy-exact timestep spacings (exposed for the tests).
namespace detail {
// numpy.linspace(start, stop, num) (endpoint included) in double.
std::vector<double> np_linspace(double start, double stop, int64_t num);
// numpy.arange(start, stop, step) for doubles (length ceil((stop-start)/step); values start + i·((start+step)-start)).
std::vector<double> np_arange(double start, double stop, double step);
// numpy.round: half to even.
int64_t np_round(double x);
}  // namespace detail

}  // namespace cxr::diffusion
