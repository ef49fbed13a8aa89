// Diffusion noise schedulers (formulas, references and diffusers' semantics in diffusion/schedulers.h).
#include "diffusion/schedulers.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"

namespace cxr::diffusion {

using json = nlohmann::json;
using tensor::DType;

// ---------------------------------------------------------------------------------------------------------------
// names
// ---------------------------------------------------------------------------------------------------------------

std::string to_string(SchedulerKind k) {
    switch (k) {
        case SchedulerKind::ddpm: return "DDPMScheduler";
        case SchedulerKind::ddim: return "DDIMScheduler";
        case SchedulerKind::pndm: return "PNDMScheduler";
        case SchedulerKind::dpm_solver_multistep: return "DPMSolverMultistepScheduler";
    }
    return "?";
}
std::string to_string(BetaSchedule b) {
    switch (b) {
        case BetaSchedule::linear: return "linear";
        case BetaSchedule::scaled_linear: return "scaled_linear";
        case BetaSchedule::squaredcos_cap_v2: return "squaredcos_cap_v2";
    }
    return "?";
}
std::string to_string(PredictionType p) {
    switch (p) {
        case PredictionType::epsilon: return "epsilon";
        case PredictionType::v_prediction: return "v_prediction";
        case PredictionType::sample: return "sample";
    }
    return "?";
}
std::string to_string(TimestepSpacing s) {
    switch (s) {
        case TimestepSpacing::leading: return "leading";
        case TimestepSpacing::trailing: return "trailing";
        case TimestepSpacing::linspace: return "linspace";
    }
    return "?";
}
std::string to_string(VarianceType v) {
    switch (v) {
        case VarianceType::none: return "none";
        case VarianceType::fixed_small: return "fixed_small";
        case VarianceType::fixed_small_log: return "fixed_small_log";
        case VarianceType::fixed_large: return "fixed_large";
    }
    return "?";
}
std::string to_string(FinalSigmasType f) { return f == FinalSigmasType::zero ? "zero" : "sigma_min"; }
std::string to_string(DpmSolverType s) { return s == DpmSolverType::midpoint ? "midpoint" : "heun"; }

SchedulerKind parse_scheduler_kind(const std::string& name) {
    for (auto k : {SchedulerKind::ddpm, SchedulerKind::ddim, SchedulerKind::pndm, SchedulerKind::dpm_solver_multistep})
        if (name == to_string(k)) return k;
    CXR_FAIL("scheduler class \"", name,
             "\" is not supported (supported: DDPMScheduler, DDIMScheduler, PNDMScheduler, "
             "DPMSolverMultistepScheduler)");
}

// ---------------------------------------------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------------------------------------------

SchedulerConfig SchedulerConfig::defaults(SchedulerKind kind) {
    SchedulerConfig c;  // the member initialisers are DDPM's defaults
    c.kind = kind;
    switch (kind) {
        case SchedulerKind::ddpm:
            break;
        case SchedulerKind::ddim:
            c.variance_type = VarianceType::none;
            c.set_alpha_to_one = true;
            break;
        case SchedulerKind::pndm:
            c.variance_type = VarianceType::none;
            c.set_alpha_to_one = false;
            c.skip_prk_steps = false;
            c.clip_sample = false;  // PNDM has no clipping
            break;
        case SchedulerKind::dpm_solver_multistep:
            c.variance_type = VarianceType::none;
            c.timestep_spacing = TimestepSpacing::linspace;
            c.clip_sample = false;  // DPM-Solver has no clipping
            break;
    }
    return c;
}

namespace {

// Which kinds read a key (diffusers passes a config key only to the classes whose __init__ has it; the others
// ignore it, and so do we).
bool key_applies(SchedulerKind k, const std::string& key) {
    static const char* common[] = {"num_train_timesteps", "beta_start",      "beta_end",        "beta_schedule",
                                   "trained_betas",       "prediction_type", "timestep_spacing", "steps_offset"};
    for (const char* c : common)
        if (key == c) return true;
    switch (k) {
        case SchedulerKind::ddpm:
            return key == "variance_type" || key == "clip_sample" || key == "clip_sample_range" ||
                   key == "thresholding" || key == "rescale_betas_zero_snr";
        case SchedulerKind::ddim:
            return key == "clip_sample" || key == "set_alpha_to_one" || key == "clip_sample_range" ||
                   key == "thresholding" || key == "rescale_betas_zero_snr";
        case SchedulerKind::pndm:
            return key == "skip_prk_steps" || key == "set_alpha_to_one";
        case SchedulerKind::dpm_solver_multistep:
            return key == "solver_order" || key == "thresholding" || key == "algorithm_type" ||
                   key == "solver_type" || key == "lower_order_final" || key == "euler_at_final" ||
                   key == "use_karras_sigmas" || key == "use_exponential_sigmas" || key == "use_beta_sigmas" ||
                   key == "use_lu_lambdas" || key == "use_flow_sigmas" || key == "final_sigmas_type" ||
                   key == "lambda_min_clipped" || key == "variance_type" || key == "rescale_betas_zero_snr" ||
                   key == "use_dynamic_shifting";
    }
    return false;
}

[[noreturn]] void bad_key(const std::string& key, const std::string& why) {
    CXR_FAIL("scheduler config: \"", key, "\" ", why);
}

bool get_bool(const json& v, const std::string& key) {
    if (!v.is_boolean()) bad_key(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
}

int64_t get_int(const json& v, const std::string& key) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return (int64_t)d;
    }
    bad_key(key, "must be an integer, got " + v.dump());
}

double get_double(const json& v, const std::string& key) {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s == "Infinity" || s == "inf" || s == "+inf" || s == "+Infinity") return std::numeric_limits<double>::infinity();
        if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    bad_key(key, "must be a number, got " + v.dump());
}

std::string get_string(const json& v, const std::string& key) {
    if (!v.is_string()) bad_key(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
}

template <class E>
E parse_enum(const json& v, const std::string& key, std::initializer_list<E> values) {
    const std::string s = get_string(v, key);
    std::string allowed;
    for (E e : values) {
        if (s == to_string(e)) return e;
        allowed += (allowed.empty() ? "" : ", ") + to_string(e);
    }
    bad_key(key, "= \"" + s + "\" is not supported (supported: " + allowed + ")");
}

}  // namespace

SchedulerConfig SchedulerConfig::from_json(const json& j, std::optional<SchedulerKind> kind_override) {
    CXR_CHECK(j.is_object(), "scheduler config must be a JSON object, got ", j.dump().substr(0, 80));
    SchedulerKind kind;
    if (kind_override) {
        kind = *kind_override;
    } else {
        CXR_CHECK(j.contains("_class_name"),
                  "scheduler config has no \"_class_name\"; name the scheduler class (or pass the kind)");
        kind = parse_scheduler_kind(get_string(j["_class_name"], "_class_name"));
    }
    SchedulerConfig c = defaults(kind);
    // The value of a key that this class reads and that is present and not null; nullptr otherwise.
    auto get = [&](const char* key) -> const json* {
        if (!key_applies(kind, key)) return nullptr;
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return nullptr;
        return &*it;
    };
    const std::string cls = to_string(kind);
    if (auto* v = get("num_train_timesteps")) c.num_train_timesteps = get_int(*v, "num_train_timesteps");
    if (auto* v = get("beta_start")) c.beta_start = get_double(*v, "beta_start");
    if (auto* v = get("beta_end")) c.beta_end = get_double(*v, "beta_end");
    if (auto* v = get("beta_schedule"))
        c.beta_schedule = parse_enum(*v, "beta_schedule",
                                     {BetaSchedule::linear, BetaSchedule::scaled_linear, BetaSchedule::squaredcos_cap_v2});
    if (auto* v = get("trained_betas")) {
        if (!v->is_array()) bad_key("trained_betas", "must be a list of numbers or null");
        c.trained_betas.clear();
        for (const auto& b : *v) c.trained_betas.push_back(get_double(b, "trained_betas"));
    }
    if (auto* v = get("prediction_type"))
        c.prediction_type = parse_enum(*v, "prediction_type",
                                       {PredictionType::epsilon, PredictionType::v_prediction, PredictionType::sample});
    if (auto* v = get("timestep_spacing"))
        c.timestep_spacing = parse_enum(*v, "timestep_spacing",
                                        {TimestepSpacing::leading, TimestepSpacing::trailing, TimestepSpacing::linspace});
    if (auto* v = get("steps_offset")) c.steps_offset = get_int(*v, "steps_offset");
    if (auto* v = get("clip_sample")) c.clip_sample = get_bool(*v, "clip_sample");
    if (auto* v = get("clip_sample_range")) c.clip_sample_range = get_double(*v, "clip_sample_range");
    if (auto* v = get("set_alpha_to_one")) c.set_alpha_to_one = get_bool(*v, "set_alpha_to_one");
    if (auto* v = get("skip_prk_steps")) c.skip_prk_steps = get_bool(*v, "skip_prk_steps");
    if (auto* v = get("thresholding")) c.thresholding = get_bool(*v, "thresholding");
    if (auto* v = get("variance_type")) {
        const std::string s = get_string(*v, "variance_type");
        if (kind == SchedulerKind::ddpm) {
            c.variance_type = parse_enum(*v, "variance_type",
                                         {VarianceType::fixed_small, VarianceType::fixed_small_log, VarianceType::fixed_large});
        } else if (s == "learned" || s == "learned_range") {
            bad_key("variance_type", "= \"" + s + "\" (a learned variance) is not supported by " + cls);
        }  // DPM-Solver reads only the learned values; any other is ignored there, as in diffusers
    }
    if (auto* v = get("solver_order")) c.solver_order = get_int(*v, "solver_order");
    if (auto* v = get("algorithm_type")) {
        c.algorithm_type = get_string(*v, "algorithm_type");
        if (c.algorithm_type == "deis") c.algorithm_type = "dpmsolver++";  // diffusers maps deis to dpmsolver++
    }
    if (auto* v = get("solver_type")) {
        const std::string s = get_string(*v, "solver_type");
        if (s == "midpoint" || s == "logrho" || s == "bh1" || s == "bh2") c.solver_type = DpmSolverType::midpoint;
        else if (s == "heun") c.solver_type = DpmSolverType::heun;
        else bad_key("solver_type", "= \"" + s + "\" is not supported (supported: midpoint, heun)");
    }
    if (auto* v = get("lower_order_final")) c.lower_order_final = get_bool(*v, "lower_order_final");
    if (auto* v = get("euler_at_final")) c.euler_at_final = get_bool(*v, "euler_at_final");
    if (auto* v = get("final_sigmas_type"))
        c.final_sigmas_type = parse_enum(*v, "final_sigmas_type", {FinalSigmasType::zero, FinalSigmasType::sigma_min});
    if (auto* v = get("lambda_min_clipped")) c.lambda_min_clipped = get_double(*v, "lambda_min_clipped");
    // Options of diffusers that these schedulers do not implement: refused when switched on.
    for (const char* key : {"rescale_betas_zero_snr", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                            "use_lu_lambdas", "use_flow_sigmas", "use_dynamic_shifting"})
        if (auto* v = get(key))
            if (get_bool(*v, key)) bad_key(key, "= true is not supported by this implementation of " + cls);
    c.validate();
    return c;
}

namespace {
// Python's json writes NaN, Infinity and -Infinity as bare tokens; strict JSON parsers refuse them. Outside string
// literals they become the strings "NaN", "Infinity", "-Infinity" (get_double accepts the infinities).
std::string quote_python_non_finite(const std::string& text) {
    std::string out;
    out.reserve(text.size() + 16);
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (in_string) {
            out += ch;
            if (ch == '\\' && i + 1 < text.size()) out += text[++i];
            else if (ch == '"') in_string = false;
            continue;
        }
        if (ch == '"') {
            in_string = true;
            out += ch;
            continue;
        }
        bool replaced = false;
        for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
            size_t n = std::char_traits<char>::length(tok);
            if (text.compare(i, n, tok) == 0) {
                out += '"';
                out += tok;
                out += '"';
                i += n - 1;
                replaced = true;
                break;
            }
        }
        if (!replaced) out += ch;
    }
    return out;
}
}  // namespace

SchedulerConfig SchedulerConfig::from_file(const std::string& path, std::optional<SchedulerKind> kind) {
    std::ifstream in(path, std::ios::binary);
    CXR_CHECK(in.good(), "cannot open scheduler config ", path);
    std::stringstream ss;
    ss << in.rdbuf();
    json j;
    try {
        j = json::parse(quote_python_non_finite(ss.str()));
    } catch (const json::exception& e) {
        CXR_FAIL("scheduler config ", path, " is not valid JSON: ", e.what());
    }
    try {
        return from_json(j, kind);
    } catch (const Error& e) {
        CXR_FAIL(path, ": ", e.what());
    }
}

json SchedulerConfig::to_json() const {
    json j;
    j["_class_name"] = to_string(kind);
    j["num_train_timesteps"] = num_train_timesteps;
    j["beta_start"] = beta_start;
    j["beta_end"] = beta_end;
    j["beta_schedule"] = to_string(beta_schedule);
    j["trained_betas"] = trained_betas.empty() ? json(nullptr) : json(trained_betas);
    j["prediction_type"] = to_string(prediction_type);
    j["timestep_spacing"] = to_string(timestep_spacing);
    j["steps_offset"] = steps_offset;
    switch (kind) {
        case SchedulerKind::ddpm:
            j["variance_type"] = to_string(variance_type);
            j["clip_sample"] = clip_sample;
            j["clip_sample_range"] = clip_sample_range;
            j["thresholding"] = false;
            break;
        case SchedulerKind::ddim:
            j["clip_sample"] = clip_sample;
            j["clip_sample_range"] = clip_sample_range;
            j["set_alpha_to_one"] = set_alpha_to_one;
            j["thresholding"] = false;
            break;
        case SchedulerKind::pndm:
            j["skip_prk_steps"] = skip_prk_steps;
            j["set_alpha_to_one"] = set_alpha_to_one;
            break;
        case SchedulerKind::dpm_solver_multistep:
            j["solver_order"] = solver_order;
            j["algorithm_type"] = algorithm_type;
            j["solver_type"] = to_string(solver_type);
            j["lower_order_final"] = lower_order_final;
            j["euler_at_final"] = euler_at_final;
            j["final_sigmas_type"] = to_string(final_sigmas_type);
            // JSON has no infinity: the default (-inf, no clipping) is left out so that readers use their default.
            if (std::isfinite(lambda_min_clipped)) j["lambda_min_clipped"] = lambda_min_clipped;
            j["variance_type"] = nullptr;
            j["thresholding"] = false;
            break;
    }
    return j;
}

void SchedulerConfig::validate() const {
    const std::string cls = to_string(kind);
    CXR_CHECK(num_train_timesteps >= 1, cls, ": num_train_timesteps must be >= 1, got ", num_train_timesteps);
    CXR_CHECK(num_train_timesteps <= 1000000, cls, ": num_train_timesteps = ", num_train_timesteps,
              " is implausibly large (at most 1,000,000)");
    if (!trained_betas.empty()) {
        CXR_CHECK((int64_t)trained_betas.size() == num_train_timesteps, cls, ": trained_betas has ",
                  trained_betas.size(), " values but num_train_timesteps is ", num_train_timesteps);
    } else if (beta_schedule != BetaSchedule::squaredcos_cap_v2) {
        CXR_CHECK(std::isfinite(beta_start) && beta_start >= 0.0 && beta_start < 1.0, cls,
                  ": beta_start must lie in [0, 1), got ", beta_start);
        CXR_CHECK(std::isfinite(beta_end) && beta_end >= 0.0 && beta_end < 1.0, cls,
                  ": beta_end must lie in [0, 1), got ", beta_end);
    }
    CXR_CHECK(steps_offset >= 0 && steps_offset < num_train_timesteps, cls, ": steps_offset must lie in [0, ",
              num_train_timesteps, "), got ", steps_offset);
    if (kind == SchedulerKind::ddpm || kind == SchedulerKind::ddim) {
        CXR_CHECK(!clip_sample || (std::isfinite(clip_sample_range) && clip_sample_range > 0.0), cls,
                  ": clip_sample_range must be > 0, got ", clip_sample_range);
    }
    if (kind != SchedulerKind::pndm)
        CXR_CHECK(!thresholding, cls, ": \"thresholding\" = true (dynamic thresholding) is not supported");
    if (kind == SchedulerKind::ddpm)
        CXR_CHECK(variance_type != VarianceType::none, cls,
                  ": variance_type must be fixed_small, fixed_small_log or fixed_large");
    if (kind == SchedulerKind::pndm)
        CXR_CHECK(prediction_type != PredictionType::sample, cls,
                  ": prediction_type \"sample\" is not supported (diffusers' PNDM takes epsilon or v_prediction)");
    if (kind == SchedulerKind::dpm_solver_multistep) {
        CXR_CHECK(solver_order >= 1 && solver_order <= 3, cls, ": solver_order must be 1, 2 or 3, got ", solver_order);
        CXR_CHECK(algorithm_type == "dpmsolver++", cls, ": algorithm_type \"", algorithm_type,
                  "\" is not supported (only dpmsolver++)");
        CXR_CHECK(!std::isnan(lambda_min_clipped), cls, ": lambda_min_clipped is NaN");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// tables
// ---------------------------------------------------------------------------------------------------------------

namespace {
// torch.linspace(start, end, n, dtype=float32) on the CPU: step rounded to float, each value one fused multiply-add
// from the nearer end (first half from start, second half from end).
std::vector<float> torch_linspace_f32(double start_d, double end_d, int64_t n) {
    const float start = (float)start_d, end = (float)end_d;
    std::vector<float> out((size_t)n);
    if (n == 1) {
        out[0] = start;
        return out;
    }
    const float step = (end - start) / (float)(n - 1);
    const int64_t half = n / 2;
    for (int64_t i = 0; i < n; ++i)
        out[(size_t)i] = i < half ? std::fma(step, (float)i, start) : std::fma(-step, (float)(n - 1 - i), end);
    return out;
}

// ᾱ(s) of the cosine schedule (Nichol & Dhariwal 2021), in double as Python's math module evaluates it.
constexpr double kPi = 3.14159265358979323846;  // math.pi
double cosine_alpha_bar(double s) { return std::pow(std::cos((s + 0.008) / 1.008 * kPi / 2.0), 2.0); }
}  // namespace

std::vector<float> compute_betas(const SchedulerConfig& c) {
    const int64_t n = c.num_train_timesteps;
    std::vector<float> betas;
    if (!c.trained_betas.empty()) {
        for (double b : c.trained_betas) betas.push_back((float)b);
        return betas;
    }
    switch (c.beta_schedule) {
        case BetaSchedule::linear:
            return torch_linspace_f32(c.beta_start, c.beta_end, n);
        case BetaSchedule::scaled_linear: {
            betas = torch_linspace_f32(std::sqrt(c.beta_start), std::sqrt(c.beta_end), n);
            for (float& b : betas) b = b * b;
            return betas;
        }
        case BetaSchedule::squaredcos_cap_v2: {
            for (int64_t i = 0; i < n; ++i) {
                double t1 = (double)i / (double)n, t2 = (double)(i + 1) / (double)n;
                betas.push_back((float)std::min(1.0 - cosine_alpha_bar(t2) / cosine_alpha_bar(t1), 0.999));
            }
            return betas;
        }
    }
    return betas;
}

std::vector<float> compute_alphas_cumprod(const std::vector<float>& betas) {
    std::vector<float> out(betas.size());
    double acc = 1.0;
    for (size_t i = 0; i < betas.size(); ++i) {
        acc *= (double)(1.0f - betas[i]);  // alpha_t in float32, product accumulated in double
        out[i] = (float)acc;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// numpy-exact spacings
// ---------------------------------------------------------------------------------------------------------------

namespace detail {

std::vector<double> np_linspace(double start, double stop, int64_t num) {
    std::vector<double> y;
    if (num <= 0) return y;
    const int64_t div = num - 1;
    const double delta = stop - start;
    if (div > 0) {
        const double step = delta / (double)div;
        for (int64_t i = 0; i < num; ++i)
            y.push_back(step == 0.0 ? ((double)i / (double)div) * delta + start : (double)i * step + start);
        y.back() = stop;
    } else {
        y.push_back(0.0 * delta + start);
    }
    return y;
}

std::vector<double> np_arange(double start, double stop, double step) {
    std::vector<double> y;
    const double len_d = std::ceil((stop - start) / step);
    if (!(len_d > 0)) return y;
    const int64_t len = (int64_t)len_d;
    y.push_back(start);
    if (len == 1) return y;
    const double next = start + step;
    y.push_back(next);
    const double delta = next - start;  // numpy's fill: start + i * (second - first)
    for (int64_t i = 2; i < len; ++i) y.push_back(start + (double)i * delta);
    return y;
}

int64_t np_round(double x) { return (int64_t)std::nearbyint(x); }  // default rounding mode: half to even

}  // namespace detail

namespace {
using detail::np_arange;
using detail::np_linspace;
using detail::np_round;

// The descending timestep list of DDPM and DDIM (see TIMESTEPS in the header).
std::vector<int64_t> spaced_timesteps(const SchedulerConfig& c, int64_t n) {
    const int64_t N = c.num_train_timesteps;
    std::vector<int64_t> ts;
    switch (c.timestep_spacing) {
        case TimestepSpacing::linspace: {
            auto v = np_linspace(0.0, (double)(N - 1), n);
            for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(np_round(*it));
            break;
        }
        case TimestepSpacing::leading: {
            const int64_t r = N / n;
            for (int64_t i = n - 1; i >= 0; --i) ts.push_back(i * r + c.steps_offset);
            break;
        }
        case TimestepSpacing::trailing: {
            for (double v : np_arange((double)N, 0.0, -(double)N / (double)n)) ts.push_back(np_round(v) - 1);
            break;
        }
    }
    return ts;
}

tensor::Tensor predict_x0(PredictionType p, const Tensor& model_output, const Tensor& sample, double alpha_prod_t) {
    const double sa = std::sqrt(alpha_prod_t), sb = std::sqrt(1.0 - alpha_prod_t);
    switch (p) {
        case PredictionType::epsilon: return (sample - model_output * sb) / sa;  // (x - √(1-ᾱ) ε) / √ᾱ
        case PredictionType::v_prediction: return sample * sa - model_output * sb;  // √ᾱ x - √(1-ᾱ) v
        case PredictionType::sample: return model_output;
    }
    return model_output;
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Scheduler (common)
// ---------------------------------------------------------------------------------------------------------------

Scheduler::Scheduler(SchedulerConfig config) : config_(std::move(config)) {
    config_.validate();
    betas_ = compute_betas(config_);
    for (size_t t = 0; t < betas_.size(); ++t)
        CXR_CHECK(betas_[t] > 0.0f && betas_[t] < 1.0f, name(), ": beta at t = ", t, " is ", betas_[t],
                  ", outside (0, 1) (check beta_start, beta_end, beta_schedule or trained_betas)");
    alphas_cumprod_ = compute_alphas_cumprod(betas_);
}

const std::vector<int64_t>& Scheduler::timesteps() const {
    CXR_CHECK(has_timesteps(), name(), ": call set_timesteps(n) before using the timesteps");
    return timesteps_;
}

void Scheduler::check_num_inference_steps(int64_t n) const {
    CXR_CHECK(n >= 1, name(), ": num_inference_steps must be >= 1, got ", n);
    CXR_CHECK(n <= config_.num_train_timesteps, name(), ": num_inference_steps = ", n,
              " cannot be larger than num_train_timesteps = ", config_.num_train_timesteps);
}

double Scheduler::alpha_prod(int64_t t) const {
    CXR_CHECK(t >= 0 && t < config_.num_train_timesteps, name(), ": timestep ", t, " is outside [0, ",
              config_.num_train_timesteps, ")");
    return (double)alphas_cumprod_[(size_t)t];
}

Tensor Scheduler::maybe_clip(const Tensor& x0) const {
    if (!config_.clip_sample) return x0;
    return tensor::clamp(x0, -config_.clip_sample_range, config_.clip_sample_range);
}

StepOutput Scheduler::step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) {
    CXR_CHECK(has_timesteps(), name(), ": step() called before set_timesteps(n)");
    CXR_CHECK(model_output.defined() && sample.defined(), name(), ": step() needs a model output and a sample");
    CXR_CHECK(model_output.shape() == sample.shape(), name(), ": model output shape ",
              tensor::shape_str(model_output.shape()), " differs from the sample shape ",
              tensor::shape_str(sample.shape()));
    Tensor used_noise;
    if (needs_noise(t)) {
        CXR_CHECK(noise.defined(), name(), ": the step at t = ", t,
                  " is stochastic and needs noise (pass a noise tensor or a Generator)");
        CXR_CHECK(noise.shape() == sample.shape(), name(), ": noise shape ", tensor::shape_str(noise.shape()),
                  " differs from the sample shape ", tensor::shape_str(sample.shape()));
        used_noise = noise;
    }
    return do_step(model_output, t, sample, used_noise);
}

StepOutput Scheduler::step(const Tensor& model_output, int64_t t, const Tensor& sample, tensor::Generator* gen) {
    Tensor noise;
    if (has_timesteps() && sample.defined() && needs_noise(t)) {
        const bool f64 = sample.dtype() == DType::f64;
        noise = tensor::randn(sample.shape(), tensor::Options(f64 ? DType::f64 : DType::f32, sample.device()), gen);
        if (!f64 && sample.dtype() != DType::f32) noise = noise.to(sample.dtype());
    }
    return step(model_output, t, sample, noise);
}

void Scheduler::set_eta(double eta) {
    CXR_CHECK(eta == 0.0, name(), " has no eta parameter (only DDIMScheduler); got eta = ", eta);
}

std::vector<int64_t> Scheduler::timesteps_host(const Tensor& timesteps, int64_t batch, const char* what) const {
    CXR_CHECK(timesteps.defined() && tensor::is_integral(timesteps.dtype()), name(), ": ", what,
              " needs integer timesteps (one per batch element)");
    CXR_CHECK(timesteps.numel() == batch, name(), ": ", what, " got ", timesteps.numel(),
              " timesteps for a batch of ", batch);
    std::vector<int64_t> ts = timesteps.to_vector<int64_t>();
    for (int64_t t : ts)
        CXR_CHECK(t >= 0 && t < config_.num_train_timesteps, name(), ": ", what, ": timestep ", t,
                  " is outside [0, ", config_.num_train_timesteps, ")");
    return ts;
}

Tensor Scheduler::per_batch(const std::vector<double>& values, const Tensor& like) const {
    tensor::Shape shape((size_t)like.dim(), 1);
    shape[0] = (int64_t)values.size();
    if (like.dtype() == DType::f64) return tensor::from_vector(values, shape, tensor::Options(DType::f64, like.device()));
    std::vector<float> f(values.begin(), values.end());
    Tensor t = tensor::from_vector(f, shape, tensor::Options(DType::f32, like.device()));
    return like.dtype() == DType::f32 ? t : t.to(like.dtype());
}

// The coefficients are computed in float32 as diffusers does ((ᾱ cast to the sample dtype) ** 0.5), so that
// add_noise / get_velocity agree with it to the last bit or two.
Tensor Scheduler::add_noise(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const {
    CXR_CHECK(x0.defined() && noise.defined() && x0.dim() >= 1, name(), ": add_noise needs x0 [B, ...] and noise");
    CXR_CHECK(x0.shape() == noise.shape(), name(), ": add_noise: noise shape ", tensor::shape_str(noise.shape()),
              " differs from x0 shape ", tensor::shape_str(x0.shape()));
    auto ts = timesteps_host(timesteps, x0.size(0), "add_noise");
    std::vector<double> sa, sb;
    for (int64_t t : ts) {
        const float a = alphas_cumprod_[(size_t)t];
        sa.push_back(std::sqrt(a));
        sb.push_back(std::sqrt(1.0f - a));
    }
    return per_batch(sa, x0) * x0 + per_batch(sb, x0) * noise;  // √ᾱ x0 + √(1-ᾱ) ε
}

Tensor Scheduler::get_velocity(const Tensor& x0, const Tensor& noise, const Tensor& timesteps) const {
    CXR_CHECK(x0.defined() && noise.defined() && x0.dim() >= 1, name(), ": get_velocity needs x0 [B, ...] and noise");
    CXR_CHECK(x0.shape() == noise.shape(), name(), ": get_velocity: noise shape ", tensor::shape_str(noise.shape()),
              " differs from x0 shape ", tensor::shape_str(x0.shape()));
    auto ts = timesteps_host(timesteps, x0.size(0), "get_velocity");
    std::vector<double> sa, sb;
    for (int64_t t : ts) {
        const float a = alphas_cumprod_[(size_t)t];
        sa.push_back(std::sqrt(a));
        sb.push_back(std::sqrt(1.0f - a));
    }
    return per_batch(sa, x0) * noise - per_batch(sb, x0) * x0;  // √ᾱ ε - √(1-ᾱ) x0
}

double Scheduler::snr(int64_t t) const {
    const float a = (float)alpha_prod(t);
    const float r = std::sqrt(a) / std::sqrt(1.0f - a);  // float32 as diffusers' compute_snr
    return (double)(r * r);
}

Tensor Scheduler::snr(const Tensor& timesteps) const {
    CXR_CHECK(timesteps.defined(), name(), ": snr needs timesteps");
    auto ts = timesteps_host(timesteps, timesteps.numel(), "snr");
    std::vector<float> v;
    for (int64_t t : ts) v.push_back((float)snr(t));
    return tensor::from_vector(v, {(int64_t)v.size()}, tensor::Options(DType::f32, timesteps.device()));
}

// ---------------------------------------------------------------------------------------------------------------
// DDPM
// ---------------------------------------------------------------------------------------------------------------

DDPMScheduler::DDPMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    CXR_CHECK(config_.kind == SchedulerKind::ddpm, "DDPMScheduler built from a ", to_string(config_.kind), " config");
}

void DDPMScheduler::set_timesteps(int64_t n) {
    check_num_inference_steps(n);
    timesteps_ = spaced_timesteps(config_, n);
    num_inference_steps_ = n;
}

int64_t DDPMScheduler::previous_timestep(int64_t t) const {
    auto it = std::find(timesteps_.begin(), timesteps_.end(), t);
    CXR_CHECK(it != timesteps_.end(), name(), ": timestep ", t, " is not in the schedule set by set_timesteps(",
              num_inference_steps_, ")");
    return it + 1 == timesteps_.end() ? -1 : *(it + 1);
}

double DDPMScheduler::variance(int64_t t) const {
    const int64_t tp = previous_timestep(t);
    const double a_t = alpha_prod(t), a_prev = tp >= 0 ? alpha_prod(tp) : 1.0;
    const double beta_t = 1.0 - a_t / a_prev;                              // β_t' of the (possibly strided) step
    const double small = std::max((1.0 - a_prev) / (1.0 - a_t) * beta_t, 1e-20);  // β̃
    return config_.variance_type == VarianceType::fixed_large ? beta_t : small;
}

StepOutput DDPMScheduler::do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) {
    const int64_t tp = previous_timestep(t);
    const double a_t = alpha_prod(t), a_prev = tp >= 0 ? alpha_prod(tp) : 1.0;
    const double b_t = 1.0 - a_t, b_prev = 1.0 - a_prev;
    const double cur_alpha = a_t / a_prev, cur_beta = 1.0 - cur_alpha;

    Tensor x0 = maybe_clip(predict_x0(config_.prediction_type, model_output, sample, a_t));  // [B, C, H, W]
    const double c_x0 = std::sqrt(a_prev) * cur_beta / b_t;        // √ᾱ_t' β_t' / (1-ᾱ_t)
    const double c_xt = std::sqrt(cur_alpha) * b_prev / b_t;       // √α_t' (1-ᾱ_t') / (1-ᾱ_t)
    Tensor prev = x0 * c_x0 + sample * c_xt;                       // posterior mean μ
    if (t > 0) {
        const double var = variance(t);
        const double std_dev = config_.variance_type == VarianceType::fixed_small_log ? std::exp(0.5 * std::log(var))
                                                                                       : std::sqrt(var);
        prev = prev + noise * std_dev;
    }
    return {prev, x0};
}

// ---------------------------------------------------------------------------------------------------------------
// DDIM
// ---------------------------------------------------------------------------------------------------------------

DDIMScheduler::DDIMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    CXR_CHECK(config_.kind == SchedulerKind::ddim, "DDIMScheduler built from a ", to_string(config_.kind), " config");
}

void DDIMScheduler::set_timesteps(int64_t n) {
    check_num_inference_steps(n);
    timesteps_ = spaced_timesteps(config_, n);
    num_inference_steps_ = n;
}

void DDIMScheduler::set_eta(double eta) {
    CXR_CHECK(std::isfinite(eta) && eta >= 0.0 && eta <= 1.0, name(), ": eta must lie in [0, 1], got ", eta);
    eta_ = eta;
}

// The scalar coefficients are computed in float32 in diffusers' order of operations (its 0-d float32 tensors):
// with η = 1, √(1 - ᾱ_t' - σ_t²) cancels catastrophically near t = N-1 and diffusers' float32 rounding of it, not
// the exact value, is what the reference samples follow (a double computation differs from them by ~1e-4).
StepOutput DDIMScheduler::do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor& noise) {
    const int64_t tp = t - config_.num_train_timesteps / num_inference_steps_;
    const float a_t = (float)alpha_prod(t);
    const float a_prev = tp >= 0 ? (float)alpha_prod(tp) : (config_.set_alpha_to_one ? 1.0f : alphas_cumprod_[0]);
    const float b_t = 1.0f - a_t;
    const float sa = std::sqrt(a_t), sb = std::sqrt(b_t);

    Tensor x0, eps;  // [B, C, H, W] each
    switch (config_.prediction_type) {
        case PredictionType::epsilon:
            x0 = (sample - model_output * sb) / sa;
            eps = model_output;
            break;
        case PredictionType::sample:
            x0 = model_output;
            eps = (sample - x0 * sa) / sb;
            break;
        case PredictionType::v_prediction:
            x0 = sample * sa - model_output * sb;
            eps = model_output * sa + sample * sb;
            break;
    }
    x0 = maybe_clip(x0);
    const float b_prev = 1.0f - a_prev;
    const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
    const float std_dev = (float)eta_ * std::sqrt(variance);  // σ_t
    if (use_clipped_model_output_) eps = (sample - x0 * sa) / sb;
    // max(0, ·) only guards rounding at η = 1 (the exact value is >= 0).
    const float dir = std::sqrt(std::max(0.0f, (1.0f - a_prev) - std_dev * std_dev));
    Tensor prev = x0 * (double)std::sqrt(a_prev) + eps * (double)dir;
    if (eta_ > 0.0) prev = prev + noise * (double)std_dev;
    return {prev, x0};
}

// ---------------------------------------------------------------------------------------------------------------
// PNDM
// ---------------------------------------------------------------------------------------------------------------

PNDMScheduler::PNDMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    CXR_CHECK(config_.kind == SchedulerKind::pndm, "PNDMScheduler built from a ", to_string(config_.kind), " config");
}

void PNDMScheduler::set_timesteps(int64_t n) {
    check_num_inference_steps(n);
    const int64_t N = config_.num_train_timesteps;
    std::vector<int64_t> base;  // ascending
    switch (config_.timestep_spacing) {
        case TimestepSpacing::linspace:
            for (double v : np_linspace(0.0, (double)(N - 1), n)) base.push_back(np_round(v));
            break;
        case TimestepSpacing::leading:
            for (int64_t i = 0; i < n; ++i) base.push_back(i * (N / n) + config_.steps_offset);
            break;
        case TimestepSpacing::trailing: {
            auto v = np_arange((double)N, 0.0, -(double)N / (double)n);
            for (auto it = v.rbegin(); it != v.rend(); ++it) base.push_back(np_round(*it) - 1);
            break;
        }
    }
    const int64_t m = (int64_t)base.size();
    prk_timesteps_.clear();
    plms_timesteps_.clear();
    if (config_.skip_prk_steps) {
        // base[:-1] + base[-2:-1] + base[-1:], reversed
        std::vector<int64_t> fwd(base.begin(), base.end() - 1);
        if (m >= 2) fwd.push_back(base[(size_t)(m - 2)]);
        fwd.push_back(base.back());
        plms_timesteps_.assign(fwd.rbegin(), fwd.rend());
    } else {
        constexpr int64_t kOrder = 4;  // pndm_order: the PRK warm-up uses the last 4 base timesteps
        CXR_CHECK(m >= kOrder, name(), ": the PRK warm-up (skip_prk_steps = false) needs at least 4 inference steps, got ",
                  n);
        const int64_t half = N / n / 2;
        std::vector<int64_t> pairs;  // each of the last 4 base timesteps twice, + (0, δ/2)
        for (int64_t k = m - kOrder; k < m; ++k) {
            pairs.push_back(base[(size_t)k]);
            pairs.push_back(base[(size_t)k] + half);
        }
        pairs.pop_back();                // [:-1]
        std::vector<int64_t> doubled;    // .repeat(2)
        for (int64_t v : pairs) {
            doubled.push_back(v);
            doubled.push_back(v);
        }
        std::vector<int64_t> trimmed(doubled.begin() + 1, doubled.end() - 1);  // [1:-1]
        prk_timesteps_.assign(trimmed.rbegin(), trimmed.rend());
        plms_timesteps_.assign(base.rbegin() + kOrder - 1, base.rend());       // base[:-3] reversed
    }
    timesteps_ = prk_timesteps_;
    timesteps_.insert(timesteps_.end(), plms_timesteps_.begin(), plms_timesteps_.end());
    num_inference_steps_ = n;
    ets_.clear();
    cur_sample_ = Tensor();
    cur_model_output_ = Tensor();
    counter_ = 0;
}

Tensor PNDMScheduler::transfer(const Tensor& sample, int64_t t, int64_t t_prev, const Tensor& model_output) const {
    const double a_t = alpha_prod(t);
    const double a_prev = t_prev >= 0 ? alpha_prod(t_prev) : (config_.set_alpha_to_one ? 1.0 : (double)alphas_cumprod_[0]);
    const double b_t = 1.0 - a_t, b_prev = 1.0 - a_prev;
    Tensor eps = model_output;
    if (config_.prediction_type == PredictionType::v_prediction)
        eps = model_output * std::sqrt(a_t) + sample * std::sqrt(b_t);  // ε = √ᾱ v + √(1-ᾱ) x
    const double sample_coeff = std::sqrt(a_prev / a_t);
    const double denom = a_t * std::sqrt(b_prev) + std::sqrt(a_t * b_t * a_prev);
    return sample * sample_coeff - eps * ((a_prev - a_t) / denom);
}

StepOutput PNDMScheduler::do_step(const Tensor& model_output, int64_t t, const Tensor& sample, const Tensor&) {
    Tensor prev = (counter_ < (int64_t)prk_timesteps_.size() && !config_.skip_prk_steps)
                      ? step_prk(model_output, t, sample)
                      : step_plms(model_output, t, sample);
    return {prev, Tensor()};
}

Tensor PNDMScheduler::step_prk(const Tensor& model_output, int64_t t, const Tensor& sample) {
    const int64_t N = config_.num_train_timesteps;
    const int64_t diff_to_prev = (counter_ % 2) ? 0 : N / num_inference_steps_ / 2;
    const int64_t t_prev = t - diff_to_prev;
    const int64_t t_from = prk_timesteps_[(size_t)(counter_ / 4 * 4)];
    Tensor eps = model_output;
    // Runge-Kutta weights 1/6, 1/3, 1/3, 1/6 accumulated over the 4 stages of one interval.
    auto accumulate = [&](double w) {
        Tensor term = model_output * w;
        cur_model_output_ = cur_model_output_.defined() ? cur_model_output_ + term : term;
    };
    switch (counter_ % 4) {
        case 0:
            accumulate(1.0 / 6.0);
            ets_.push_back(model_output);
            cur_sample_ = sample;
            break;
        case 1:
        case 2:
            accumulate(1.0 / 3.0);
            break;
        case 3:
            eps = cur_model_output_.defined() ? cur_model_output_ + model_output * (1.0 / 6.0) : model_output * (1.0 / 6.0);
            cur_model_output_ = Tensor();
            break;
    }
    const Tensor& from = cur_sample_.defined() ? cur_sample_ : sample;
    Tensor prev = transfer(from, t_from, t_prev, eps);
    ++counter_;
    return prev;
}

Tensor PNDMScheduler::step_plms(const Tensor& model_output, int64_t t, const Tensor& sample) {
    CXR_CHECK(config_.skip_prk_steps || ets_.size() >= 3, name(),
              ": PLMS steps can only run after the 12 PRK warm-up steps (skip_prk_steps = false)");
    const int64_t delta = config_.num_train_timesteps / num_inference_steps_;
    int64_t t_cur = t, t_prev = t - delta;
    if (counter_ != 1) {
        if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
        ets_.push_back(model_output);
    } else {
        t_prev = t;  // the second call repeats the first interval from the remembered sample
        t_cur = t + delta;
    }
    const size_t k = ets_.size();
    Tensor eps;
    Tensor from = sample;
    if (k == 1 && counter_ == 0) {
        eps = model_output;
        cur_sample_ = sample;
    } else if (k == 1 && counter_ == 1) {
        eps = (model_output + ets_[k - 1]) / 2.0;
        from = cur_sample_;
        cur_sample_ = Tensor();
    } else if (k == 2) {
        eps = (ets_[k - 1] * 3.0 - ets_[k - 2]) / 2.0;
    } else if (k == 3) {
        eps = (ets_[k - 1] * 23.0 - ets_[k - 2] * 16.0 + ets_[k - 3] * 5.0) / 12.0;
    } else {
        eps = (ets_[k - 1] * 55.0 - ets_[k - 2] * 59.0 + ets_[k - 3] * 37.0 - ets_[k - 4] * 9.0) * (1.0 / 24.0);
    }
    CXR_CHECK(from.defined(), name(), ": internal: no remembered sample for the PLMS correction step");
    Tensor prev = transfer(from, t_cur, t_prev, eps);
    ++counter_;
    return prev;
}

// ---------------------------------------------------------------------------------------------------------------
// DPM-Solver++ (multistep)
// ---------------------------------------------------------------------------------------------------------------

namespace {
// α = 1/√(σ²+1), s = σ α and λ = log α - log s of a σ of the DPM-Solver table.
struct AlphaSigma {
    double alpha, sigma, lambda;
};
AlphaSigma alpha_sigma(float sigma_f) {
    const double s = (double)sigma_f;
    AlphaSigma r;
    r.alpha = 1.0 / std::sqrt(s * s + 1.0);
    r.sigma = s * r.alpha;
    r.lambda = std::log(r.alpha) - std::log(r.sigma);  // +inf for σ = 0 (the final step), handled by the formulas
    return r;
}
// √((1-ᾱ)/ᾱ) in float32 as diffusers' table.
float sigma_of(float a) { return std::sqrt((1.0f - a) / a); }
}  // namespace

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    CXR_CHECK(config_.kind == SchedulerKind::dpm_solver_multistep, "DPMSolverMultistepScheduler built from a ",
              to_string(config_.kind), " config");
}

void DPMSolverMultistepScheduler::set_timesteps(int64_t n) {
    check_num_inference_steps(n);
    const int64_t N = config_.num_train_timesteps;
    // L = N - (number of λ_t below lambda_min_clipped): searchsorted on the ascending (flipped) λ table.
    int64_t clipped = 0;
    if (config_.lambda_min_clipped > -std::numeric_limits<double>::infinity()) {
        std::vector<float> flipped;  // λ_t for t = N-1 .. 0, ascending; float32 as diffusers' lambda_t
        for (int64_t t = N - 1; t >= 0; --t) {
            const float a = alphas_cumprod_[(size_t)t];
            flipped.push_back(std::log(std::sqrt(a)) - std::log(std::sqrt(1.0f - a)));
        }
        const float v = (float)config_.lambda_min_clipped;
        clipped = std::lower_bound(flipped.begin(), flipped.end(), v) - flipped.begin();
    }
    const int64_t last = N - clipped;
    CXR_CHECK(last >= 1, name(), ": lambda_min_clipped = ", config_.lambda_min_clipped, " clips every timestep");
    std::vector<int64_t> ts;
    switch (config_.timestep_spacing) {
        case TimestepSpacing::linspace: {
            auto v = np_linspace(0.0, (double)(last - 1), n + 1);
            for (int64_t i = n; i >= 1; --i) ts.push_back(np_round(v[(size_t)i]));
            break;
        }
        case TimestepSpacing::leading: {
            const int64_t r = last / (n + 1);
            for (int64_t i = n; i >= 1; --i) ts.push_back(i * r + config_.steps_offset);
            break;
        }
        case TimestepSpacing::trailing: {
            for (double v : np_arange((double)last, 0.0, -(double)N / (double)n)) ts.push_back(np_round(v) - 1);
            break;
        }
    }
    CXR_CHECK(!ts.empty(), name(), ": set_timesteps(", n, ") produced no timesteps");
    sigmas_.clear();
    for (int64_t t : ts) {
        // numpy.interp at the integer t: the table value, clamped at the ends of [0, N-1].
        const int64_t k = std::min(std::max<int64_t>(t, 0), N - 1);
        sigmas_.push_back(sigma_of(alphas_cumprod_[(size_t)k]));
    }
    sigmas_.push_back(config_.final_sigmas_type == FinalSigmasType::zero ? 0.0f : sigma_of(alphas_cumprod_[0]));
    timesteps_ = ts;
    num_inference_steps_ = n;
    model_outputs_.assign((size_t)config_.solver_order, Tensor());
    lower_order_nums_ = 0;
    step_index_ = -1;
}

StepOutput DPMSolverMultistepScheduler::do_step(const Tensor& model_output, int64_t t, const Tensor& sample,
                                                const Tensor&) {
    const int64_t n = (int64_t)timesteps_.size();
    if (step_index_ < 0) {
        // diffusers' index_for_timestep: the position of t (the second one if it occurs twice).
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < n; ++i)
            if (timesteps_[(size_t)i] == t) idx.push_back(i);
        CXR_CHECK(!idx.empty(), name(), ": timestep ", t, " is not in the schedule set by set_timesteps(",
                  num_inference_steps_, ")");
        step_index_ = idx.size() > 1 ? idx[1] : idx[0];
    } else {
        CXR_CHECK(step_index_ < n, name(), ": all ", n, " steps are done; call set_timesteps(n) to start again");
        CXR_CHECK(timesteps_[(size_t)step_index_] == t, name(), ": step ", step_index_, " expects timestep ",
                  timesteps_[(size_t)step_index_], ", got ", t);
    }
    const int64_t i = step_index_;
    const int64_t order = config_.solver_order;
    const bool lower_order_final =
        i == n - 1 && (config_.euler_at_final || (config_.lower_order_final && n < 15) ||
                       config_.final_sigmas_type == FinalSigmasType::zero);
    const bool lower_order_second = i == n - 2 && config_.lower_order_final && n < 15;

    // Model output -> data prediction x0 at σ_i.
    const AlphaSigma s0 = alpha_sigma(sigmas_[(size_t)i]);
    Tensor x0;  // [B, C, H, W]
    switch (config_.prediction_type) {
        case PredictionType::epsilon: x0 = (sample - model_output * s0.sigma) / s0.alpha; break;
        case PredictionType::v_prediction: x0 = sample * s0.alpha - model_output * s0.sigma; break;
        case PredictionType::sample: x0 = model_output; break;
    }
    for (int64_t k = 0; k + 1 < order; ++k) model_outputs_[(size_t)k] = model_outputs_[(size_t)(k + 1)];
    model_outputs_[(size_t)(order - 1)] = x0;

    const AlphaSigma st = alpha_sigma(sigmas_[(size_t)(i + 1)]);
    const double h = st.lambda - s0.lambda;
    const double em1 = std::exp(-h) - 1.0;  // e^{-h} - 1 (= -1 when σ_{i+1} = 0)
    const Tensor& m0 = model_outputs_[(size_t)(order - 1)];
    Tensor prev;
    if (order == 1 || lower_order_nums_ < 1 || lower_order_final) {
        prev = sample * (st.sigma / s0.sigma) - m0 * (st.alpha * em1);
    } else if (order == 2 || lower_order_nums_ < 2 || lower_order_second) {
        const AlphaSigma s1 = alpha_sigma(sigmas_[(size_t)(i - 1)]);
        const Tensor& m1 = model_outputs_[(size_t)(order - 2)];
        const double r0 = (s0.lambda - s1.lambda) / h;
        Tensor d1 = (m0 - m1) * (1.0 / r0);
        if (config_.solver_type == DpmSolverType::midpoint)
            prev = sample * (st.sigma / s0.sigma) - m0 * (st.alpha * em1) - d1 * (0.5 * (st.alpha * em1));
        else
            prev = sample * (st.sigma / s0.sigma) - m0 * (st.alpha * em1) + d1 * (st.alpha * (em1 / h + 1.0));
    } else {
        const AlphaSigma s1 = alpha_sigma(sigmas_[(size_t)(i - 1)]);
        const AlphaSigma s2 = alpha_sigma(sigmas_[(size_t)(i - 2)]);
        const Tensor& m1 = model_outputs_[(size_t)(order - 2)];
        const Tensor& m2 = model_outputs_[(size_t)(order - 3)];
        const double r0 = (s0.lambda - s1.lambda) / h, r1 = (s1.lambda - s2.lambda) / h;
        Tensor d1_0 = (m0 - m1) * (1.0 / r0);
        Tensor d1_1 = (m1 - m2) * (1.0 / r1);
        Tensor d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1));
        Tensor d2 = (d1_0 - d1_1) * (1.0 / (r0 + r1));
        prev = sample * (st.sigma / s0.sigma) - m0 * (st.alpha * em1) + d1 * (st.alpha * (em1 / h + 1.0)) -
               d2 * (st.alpha * ((em1 + h) / (h * h) - 0.5));
    }
    if (lower_order_nums_ < order) ++lower_order_nums_;
    ++step_index_;
    return {prev, x0};
}

// ---------------------------------------------------------------------------------------------------------------

std::unique_ptr<Scheduler> make_scheduler(const SchedulerConfig& config) {
    switch (config.kind) {
        case SchedulerKind::ddpm: return std::make_unique<DDPMScheduler>(config);
        case SchedulerKind::ddim: return std::make_unique<DDIMScheduler>(config);
        case SchedulerKind::pndm: return std::make_unique<PNDMScheduler>(config);
        case SchedulerKind::dpm_solver_multistep: return std::make_unique<DPMSolverMultistepScheduler>(config);
    }
    CXR_FAIL("unknown scheduler kind");
}

}  // namespace cxr::diffusion
