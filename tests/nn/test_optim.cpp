// Tests of the optimizers (nn/optim.h), gradient clipping (nn/clip.h) and the weight EMA (nn/ema.h):
//   - SGD, Adam and AdamW fit a Linear layer (Module::parameters()) to an exact least-squares target;
//   - SGD (plain, momentum + dampening, Nesterov + weight decay, maximize), Adam (+ L2, amsgrad), AdamW (+ amsgrad),
//     two parameter groups with different hyper-parameters and parameters without a gradient at some steps, and
//     20 steps of SGD/Adam/AdamW under linear warmup + cosine annealing: the parameters after every step equal
//     torch.optim's (tests/fixtures/optim.*, tests/fixtures/tools/make_optim_fixtures.py), compared by name, in f64
//     and in f32, and the final optimizer state (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer) equals
//     torch's optimizer.state by name;
//   - save -> load -> continue reproduces the uninterrupted run bit for bit; loading errors name the key;
//   - clip_grad_norm_ (L2 and ∞ norms, clipping and not) equals torch.nn.utils.clip_grad_norm_;
//   - EMA with a constant decay equals torch.optim.swa_utils.AveragedModel(get_ema_multi_avg_fn); the warmup decay
//     schedules equal hand-computed values of diffusers' EMAModel formulas.
#include "tests/support/testing.h"

#include <cmath>
#include <cstdio>
#include <unistd.h>

#include "nn/clip.h"
#include "nn/basic.h"
#include "nn/ema.h"
#include "nn/losses.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"

using namespace cxr::nn;
using cxr::tensor::DType;
using cxr::tensor::Tensor;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;

using cxr::testing::error_of;

namespace {

// One parameter group of a fixture config: the indices of its parameters and its hyper-parameters (both option
// structs; the optimizer kind picks one). Mirrors CONFIGS in make_optim_fixtures.py.
struct GroupSpec {
    std::vector<int> index;
    SGDOptions sgd;
    AdamOptions adam;
};

struct OptimCase {
    std::string kind;  // "sgd", "adam", "adamw"
    int steps = 5;
    std::vector<GroupSpec> groups;
    bool warmup_cosine = false;  // LrSchedule::warmup_cosine(5, 20, 0.1, 0.01)
};

SGDOptions sgd(double lr, double momentum = 0, double dampening = 0, double wd = 0, bool nesterov = false,
               bool maximize = false) {
    SGDOptions o;
    o.lr = lr;
    o.momentum = momentum;
    o.dampening = dampening;
    o.weight_decay = wd;
    o.nesterov = nesterov;
    o.maximize = maximize;
    return o;
}

AdamOptions adam(double lr, double wd = 0, bool amsgrad = false, double beta1 = 0.9, double beta2 = 0.999,
                 double eps = 1e-8) {
    AdamOptions o;
    o.lr = lr;
    o.weight_decay = wd;
    o.amsgrad = amsgrad;
    o.beta1 = beta1;
    o.beta2 = beta2;
    o.eps = eps;
    return o;
}

GroupSpec all_sgd(SGDOptions o) { return GroupSpec{{0, 1, 2}, o, {}}; }
GroupSpec all_adam(AdamOptions o) { return GroupSpec{{0, 1, 2}, {}, o}; }

std::map<std::string, OptimCase> optim_cases() {
    std::map<std::string, OptimCase> c;
    c["sgd_plain"] = {"sgd", 5, {all_sgd(sgd(0.1))}};
    c["sgd_momentum_dampening"] = {"sgd", 5, {all_sgd(sgd(0.05, 0.9, 0.1))}};
    c["sgd_nesterov_wd"] = {"sgd", 5, {all_sgd(sgd(0.05, 0.9, 0.0, 1e-2, true))}};
    c["sgd_maximize"] = {"sgd", 5, {all_sgd(sgd(0.1, 0.5, 0.0, 1e-2, false, true))}};
    c["adam"] = {"adam", 5, {all_adam(adam(1e-2))}};
    c["adam_wd_amsgrad"] = {"adam", 5, {all_adam(adam(1e-2, 0.05, true, 0.8, 0.99, 1e-6))}};
    c["adamw"] = {"adamw", 5, {all_adam(adam(1e-2, 0.1))}};
    c["adamw_amsgrad"] = {"adamw", 5, {all_adam(adam(2e-2, 0.05, true))}};
    c["adam_groups"] = {"adam", 5,
                        {GroupSpec{{0, 1}, {}, adam(1e-2)},
                         GroupSpec{{2}, {}, adam(5e-3, 0.1, false, 0.5, 0.9, 1e-4)}}};
    c["sgd_warmup_cosine"] = {"sgd", 20, {all_sgd(sgd(0.1, 0.9, 0.0, 1e-4, true))}, true};
    c["adam_warmup_cosine"] = {"adam", 20, {all_adam(adam(1e-2))}, true};
    c["adamw_warmup_cosine"] = {"adamw", 20, {all_adam(adam(1e-2, 0.05))}, true};
    return c;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimCase& c, const std::vector<Tensor>& params) {
    if (c.kind == "sgd") {
        std::vector<ParamGroup<SGDOptions>> groups;
        for (const auto& g : c.groups) {
            ParamGroup<SGDOptions> pg;
            for (int i : g.index) pg.params.push_back(params[i]);
            pg.options = g.sgd;
            groups.push_back(pg);
        }
        return std::make_unique<SGD>(groups);
    }
    std::vector<ParamGroup<AdamOptions>> groups;
    for (const auto& g : c.groups) {
        ParamGroup<AdamOptions> pg;
        for (int i : g.index) pg.params.push_back(params[i]);
        pg.options = g.adam;
        groups.push_back(pg);
    }
    if (c.kind == "adamw") return std::make_unique<AdamW>(groups);
    return std::make_unique<Adam>(groups);
}

Tensor row(const Tensor& stacked, int64_t k) { return stacked.narrow(0, k, 1).squeeze(0).contiguous(); }

const LrSchedule kWarmupCosine = LrSchedule::warmup_cosine(5, 20, 0.1, 0.01);

// Sets the gradients of step k (1-based) from the fixture: has_grad 0 -> no gradient.
void set_grads(const Fixtures& fx, const std::string& name, std::vector<Tensor>& params, int k, DType dt) {
    Tensor has = fx.get(name + ".has_grad");  // [steps, n]
    for (size_t i = 0; i < params.size(); ++i) {
        if (row(has, k - 1).to_vector<double>()[i] != 0.0)
            params[i].set_grad(row(fx.get(name + ".grad." + std::to_string(i)), k - 1).to(dt).clone());
        else
            params[i].set_grad(Tensor());
    }
}

std::vector<Tensor> initial_params(const Fixtures& fx, const std::string& name, DType dt) {
    std::vector<Tensor> params;
    for (int i = 0; fx.has(name + ".init." + std::to_string(i)); ++i)
        params.push_back(fx.get(name + ".init." + std::to_string(i)).to(dt).clone().set_requires_grad(true));
    return params;
}

// Runs steps [from, to] (1-based) of case `name`, checking the parameters against torch after each step.
void run_steps(const Fixtures& fx, const std::string& name, const OptimCase& c, Optimizer& opt,
               std::vector<Tensor>& params, DType dt, int from, int to) {
    // Observed (torch 2.15, x86-64): f64 within 4.5e-16 of torch, f32 within 1.2e-7 (1–2 ulp of values near 1: torch's
    // vectorised kernels fuse some multiply-adds) after up to 20 steps; the limits leave a few-fold margin.
    const double atol = dt == DType::f64 ? 1e-14 : 5e-7, rtol = dt == DType::f64 ? 1e-12 : 1e-6;
    const std::string tag = dt == DType::f64 ? "f64" : "f32";
    for (int k = from; k <= to; ++k) {
        if (c.warmup_cosine) {
            apply_lr_schedule(opt, kWarmupCosine, k - 1);
            INFO(name << ": lr of step " << k << " vs torch's SequentialLR(LinearLR, CosineAnnealingLR)");
            CHECK(std::fabs(opt.lr(0) - row(fx.get(name + ".lr"), k - 1).item()) <= 1e-15);
        }
        set_grads(fx, name, params, k, dt);
        opt.step();
        for (size_t i = 0; i < params.size(); ++i) {
            INFO(name << " (" << tag << "): parameter " << i << " after step " << k);
            CHECK(params[i].dtype() == dt);
            CXR_EXPECT_CLOSE(params[i], row(fx.get(name + "." + tag + ".trace." + std::to_string(i)), k - 1), atol,
                             rtol);
        }
    }
}

// Maps our state key "state.<g>.<j>.<buf>" to the fixture parameter index through the case's groups.
void check_state_against_torch(const Fixtures& fx, const std::string& name, const OptimCase& c, const Optimizer& opt) {
    auto sd = opt.state_dict();
    size_t ours = 0;
    for (size_t g = 0; g < c.groups.size(); ++g)
        for (size_t j = 0; j < c.groups[g].index.size(); ++j) {
            const std::string prefix = "state." + std::to_string(g) + "." + std::to_string(j) + ".";
            for (const auto& kv : sd) {
                if (kv.first.compare(0, prefix.size(), prefix) != 0) continue;
                const std::string buf = kv.first.substr(prefix.size());
                if (buf == "step") continue;
                ++ours;
                const std::string ref = name + ".f64.state." + std::to_string(c.groups[g].index[j]) + "." + buf;
                INFO(name << ": optimizer state " << kv.first << " vs torch's " << ref);
                REQUIRE(fx.has(ref));
                CXR_EXPECT_CLOSE(kv.second, fx.get(ref), 1e-12, 1e-10);
            }
        }
    INFO(name << ": the number of state tensors equals torch's");
    CHECK(ours == fx.names_with_prefix(name + ".f64.state.").size());
}

std::string temp_path(const std::string& stem) {
    return "/tmp/cxr_test_" + stem + "_" + std::to_string(getpid()) + ".safetensors";
}

}  // namespace

TEST_CASE("optimizers match torch.optim step by step (f64 and f32)", "[cpu][optim]") {
    Fixtures fx("optim");
    for (const auto& kv : optim_cases()) {
        const std::string& name = kv.first;
        const OptimCase& c = kv.second;
        for (DType dt : {DType::f64, DType::f32}) {
            std::vector<Tensor> params = initial_params(fx, name, dt);
            REQUIRE(params.size() == 3);
            auto opt = make_optimizer(c, params);
            run_steps(fx, name, c, *opt, params, dt, 1, c.steps);
            if (dt == DType::f64) check_state_against_torch(fx, name, c, *opt);
        }
    }
}

TEST_CASE("every optimizer config of the fixture has a C++ entry", "[cpu][optim]") {
    Fixtures fx("optim");
    auto cases = optim_cases();
    for (const std::string& n : fx.names_with_prefix("")) {
        const auto dot = n.find(".init.0");
        if (dot == std::string::npos || dot + 7 != n.size()) continue;
        INFO("fixture config " << n.substr(0, dot) << " has no C++ entry");
        CHECK(cases.count(n.substr(0, dot)) == 1);
    }
}

TEST_CASE("parameters without a gradient are skipped with their own step count", "[cpu][optim]") {
    Fixtures fx("optim");
    auto c = optim_cases().at("adam_groups");
    std::vector<Tensor> params = initial_params(fx, "adam_groups", DType::f64);
    auto opt = make_optimizer(c, params);
    REQUIRE(opt->num_groups() == 2);
    CHECK(opt->name() == "Adam");
    run_steps(fx, "adam_groups", c, *opt, params, DType::f64, 1, 5);
    CHECK(opt->step_count(0, 0) == 5);
    CHECK(opt->step_count(0, 1) == 4);  // no gradient at step 4
    CHECK(opt->step_count(1, 0) == 4);  // no gradient at step 2
    opt->zero_grad();
    for (const auto& p : params) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("optimizer state: save, load into a fresh optimizer, continue bit-identically", "[cpu][optim]") {
    Fixtures fx("optim");
    for (const std::string name : {"adamw_warmup_cosine", "sgd_warmup_cosine", "adam_wd_amsgrad"}) {
        const auto c = optim_cases().at(name);
        const int half = c.steps / 2;
        // uninterrupted
        std::vector<Tensor> a = initial_params(fx, name, DType::f64);
        auto opt_a = make_optimizer(c, a);
        run_steps(fx, name, c, *opt_a, a, DType::f64, 1, c.steps);
        // interrupted after `half` steps: the weights and the optimizer state go through files
        std::vector<Tensor> b = initial_params(fx, name, DType::f64);
        auto opt_b = make_optimizer(c, b);
        run_steps(fx, name, c, *opt_b, b, DType::f64, 1, half);
        const std::string path = temp_path("optim_" + name);
        opt_b->save_state(path);
        std::vector<Tensor> b2;
        for (const auto& p : b) b2.push_back(p.detach().clone().set_requires_grad(true));
        auto opt_b2 = make_optimizer(c, b2);
        opt_b2->load_state(path);
        std::remove(path.c_str());
        CHECK(opt_b2->step_count(0, 0) == half);
        run_steps(fx, name, c, *opt_b2, b2, DType::f64, half + 1, c.steps);
        for (size_t i = 0; i < a.size(); ++i) {
            INFO(name << ": resumed parameter " << i << " equals the uninterrupted run exactly");
            CXR_EXPECT_CLOSE(b2[i], a[i], 0.0, 0.0);
        }
    }
}

TEST_CASE("optimizer state loading is strict and names the key", "[cpu][optim]") {
    Tensor p = T::zeros({2, 3}, DType::f64).set_requires_grad(true);
    Tensor q = T::zeros({4}, DType::f64).set_requires_grad(true);
    Adam opt({p, q}, adam(1e-2));
    p.set_grad(T::ones({2, 3}, DType::f64));
    q.set_grad(T::ones({4}, DType::f64));
    opt.step();
    auto sd = opt.state_dict();
    CHECK(sd.count("state.0.0.exp_avg") == 1);
    CHECK(sd.count("state.0.1.exp_avg_sq") == 1);
    CHECK(sd.at("state.0.0.step").item() == 1.0);
    CHECK(sd.at("param_groups.0.lr").item() == 1e-2);

    auto bad = sd;
    bad["state.0.0.momentum_buffer"] = T::zeros({2, 3}, DType::f64);
    CHECK_THAT(error_of([&] { opt.load_state_dict(bad); }), Catch::Contains("state.0.0.momentum_buffer"));
    bad = sd;
    bad["state.0.1.exp_avg"] = T::zeros({5}, DType::f64);
    CHECK_THAT(error_of([&] { opt.load_state_dict(bad); }), Catch::Contains("state.0.1.exp_avg"));
    bad = sd;
    bad.erase("state.0.1.exp_avg_sq");
    CHECK_THAT(error_of([&] { opt.load_state_dict(bad); }), Catch::Contains("state.0.1.exp_avg_sq"));
    bad = sd;
    bad["state.0.7.exp_avg"] = T::zeros({2, 3}, DType::f64);
    CHECK_THAT(error_of([&] { opt.load_state_dict(bad); }), Catch::Contains("state.0.7.exp_avg"));
    bad = sd;
    bad["param_groups.3.lr"] = T::scalar_tensor(0.1, DType::f64);
    CHECK_THAT(error_of([&] { opt.load_state_dict(bad); }), Catch::Contains("param_groups.3.lr"));
    // a failed load left the state untouched
    CHECK(opt.step_count(0, 0) == 1);
    CXR_EXPECT_CLOSE(opt.state_dict().at("state.0.0.exp_avg"), sd.at("state.0.0.exp_avg"), 0.0, 0.0);

    // a state written by another optimizer kind is refused by name
    const std::string path = temp_path("optim_kind");
    opt.save_state(path);
    SGD other({p, q}, sgd(0.1, 0.9));
    CHECK_THAT(error_of([&] { other.load_state(path); }), Catch::Contains("Adam"));
    std::remove(path.c_str());
}

TEST_CASE("optimizer argument errors", "[cpu][optim]") {
    Tensor p = T::zeros({3}, DType::f32).set_requires_grad(true);
    CHECK_THAT(error_of([&] { SGD({p}, sgd(0.1, 0.0, 0.0, 0.0, true)); }), Catch::Contains("Nesterov"));
    CHECK_THAT(error_of([&] { Adam({p}, adam(0.1, 0.0, false, 1.0)); }), Catch::Contains("beta1"));
    CHECK_THAT(error_of([&] { SGD({p, p}, sgd(0.1)); }), Catch::Contains("twice"));
    CHECK_THAT(error_of([&] { SGD(std::vector<ParamGroup<SGDOptions>>{{{p}, sgd(0.1)}, {{p}, sgd(0.2)}}); }),
               Catch::Contains("more than one group"));
    Tensor nonleaf = T::mul(p, 2.0);
    CHECK_THAT(error_of([&] { SGD({nonleaf}, sgd(0.1)); }), Catch::Contains("leaf"));
    AdamW w({p});
    CHECK(w.name() == "AdamW");
    CHECK(w.options(0).weight_decay == 1e-2);  // torch's AdamW default
}

TEST_CASE("clip_grad_norm_ matches torch.nn.utils.clip_grad_norm_", "[cpu][optim][clip]") {
    Fixtures fx("optim");
    struct Case {
        const char* name;
        double max_norm;
        double norm_type;
    };
    for (const Case& c : {Case{"clip_big", 0.5, 2.0}, Case{"clip_small", 100.0, 2.0},
                          Case{"clip_inf", 0.3, INFINITY}}) {
        for (DType dt : {DType::f64, DType::f32}) {
            const std::string tag = dt == DType::f64 ? "f64" : "f32";
            const double atol = dt == DType::f64 ? 1e-13 : 1e-6, rtol = dt == DType::f64 ? 1e-12 : 1e-5;
            std::vector<Tensor> params;
            for (int i = 0; i < 3; ++i) {
                Tensor g = fx.get(std::string(c.name) + ".grad." + std::to_string(i));
                Tensor p = T::zeros(g.sizes(), dt).set_requires_grad(true);
                p.set_grad(g.to(dt).clone());
                params.push_back(p);
            }
            const double total = clip_grad_norm_(params, c.max_norm, c.norm_type);
            INFO(c.name << " (" << tag << ")");
            const double ref = fx.get(std::string(c.name) + "." + tag + ".total").item();
            CHECK(std::fabs(total - ref) <= atol + rtol * std::fabs(ref));
            for (int i = 0; i < 3; ++i) {
                const std::string ref = std::string(c.name) + "." + tag + ".out." + std::to_string(i);
                CXR_EXPECT_CLOSE(params[i].grad(), fx.get(ref), atol, rtol);
            }
        }
    }
}

TEST_CASE("clip_grad_norm_ edge cases and clip_grad_value_", "[cpu][optim][clip]") {
    Tensor p = T::zeros({2}, DType::f64).set_requires_grad(true);
    Tensor q = T::zeros({2}, DType::f64).set_requires_grad(true);
    CHECK(clip_grad_norm_({p, q}, 1.0) == 0.0);  // no gradients: nothing to do
    // hand-computed: grads (3, 4) and (0, 12): total = 13, coef = 6.5 / (13 + 1e-6)
    p.set_grad(T::from_vector(std::vector<double>{3, 4}, {2}));
    q.set_grad(T::from_vector(std::vector<double>{0, 12}, {2}));
    CHECK(clip_grad_norm_({p, q}, 6.5) == Approx(13.0).epsilon(1e-15));
    const double coef = 6.5 / (13.0 + 1e-6);
    CXR_EXPECT_CLOSE(p.grad(), T::from_vector(std::vector<double>{3 * coef, 4 * coef}, {2}), 1e-15, 0);
    q.set_grad(T::from_vector(std::vector<double>{NAN, 1}, {2}));
    CHECK_THAT(error_of([&] { clip_grad_norm_({p, q}, 1.0, 2.0, true); }), Catch::Contains("non-finite"));
    CHECK_THAT(error_of([&] { clip_grad_norm_({p}, 1.0, 1.0); }), Catch::Contains("norm_type"));
    p.set_grad(T::from_vector(std::vector<double>{-3, 0.25}, {2}));
    clip_grad_value_({p}, 0.5);
    CXR_EXPECT_CLOSE(p.grad(), T::from_vector(std::vector<double>{-0.5, 0.25}, {2}), 0, 0);
}

TEST_CASE("EMA with a constant decay matches torch's AveragedModel EMA", "[cpu][optim][ema]") {
    Fixtures fx("optim");
    Tensor a = fx.get("ema.p.0.0").clone().set_requires_grad(true);
    Tensor b = fx.get("ema.p.0.1").clone().set_requires_grad(true);
    EmaOptions o;
    o.decay = 0.9;
    Ema ema({{"a", a}, {"b", b}}, o);
    for (int k = 1; fx.has("ema.p." + std::to_string(k) + ".0"); ++k) {
        T::NoGradGuard no_grad;  // the parameters take the next values of the sequence
        a.copy_(fx.get("ema.p." + std::to_string(k) + ".0"));
        b.copy_(fx.get("ema.p." + std::to_string(k) + ".1"));
        ema.update();
        INFO("EMA after update " << k);
        CXR_EXPECT_CLOSE(ema.shadow()[0].second, fx.get("ema.shadow." + std::to_string(k) + ".0"), 1e-14, 1e-12);
        CXR_EXPECT_CLOSE(ema.shadow()[1].second, fx.get("ema.shadow." + std::to_string(k) + ".1"), 1e-14, 1e-12);
    }
    CHECK(ema.num_updates() == 5);

    // state round trip, copy_to / store / restore
    auto sd = ema.state_dict();
    CHECK(sd.at("ema.num_updates").item() == 5.0);
    Tensor a_live = a.detach().clone();
    ema.store();
    ema.copy_to();
    CXR_EXPECT_CLOSE(a, ema.shadow()[0].second, 0, 0);
    ema.restore();
    CXR_EXPECT_CLOSE(a, a_live, 0, 0);
    Ema other({{"a", a}, {"b", b}}, o);
    other.load_state_dict(sd);
    CHECK(other.num_updates() == 5);
    CXR_EXPECT_CLOSE(other.shadow()[1].second, ema.shadow()[1].second, 0, 0);
    sd.erase("b");
    CHECK_THAT(error_of([&] { other.load_state_dict(sd); }), Catch::Contains("'b'"));
}

TEST_CASE("EMA decay schedules (diffusers EMAModel formulas, hand-computed)", "[cpu][optim][ema]") {
    Tensor p = T::zeros({2}, DType::f64).set_requires_grad(true);
    EmaOptions o;
    o.decay = 0.9999;
    o.warmup = EmaOptions::Warmup::diffusers;
    Ema d({{"p", p}}, o);
    CHECK(d.decay_at(1) == 0.0);                               // the first update copies
    CHECK(d.decay_at(2) == Approx(2.0 / 11.0).epsilon(1e-15));  // (1 + s)/(10 + s), s = 1
    CHECK(d.decay_at(100) == Approx(100.0 / 109.0).epsilon(1e-15));
    CHECK(d.decay_at(1000000) == 0.9999);                      // capped by decay
    o.warmup = EmaOptions::Warmup::power;
    o.power = 2.0 / 3.0;
    o.inv_gamma = 1.0;
    Ema pw({{"p", p}}, o);
    CHECK(pw.decay_at(2) == Approx(1.0 - std::pow(2.0, -2.0 / 3.0)).epsilon(1e-15));
    CHECK(pw.decay_at(9) == Approx(1.0 - std::pow(9.0, -2.0 / 3.0)).epsilon(1e-15));
    o.warmup = EmaOptions::Warmup::none;
    o.decay = 0.5;
    o.update_after_step = 2;
    o.min_decay = 0.0;
    Ema delayed({{"p", p}}, o);
    CHECK(delayed.decay_at(3) == 0.0);
    CHECK(delayed.decay_at(4) == 0.5);

    // hand-computed updates: shadow 0; p = 1 then 3 with decay 0.5 from the first update
    EmaOptions h;
    h.decay = 0.5;
    Tensor frozen = T::zeros({1}, DType::f64);  // does not require grad: copied, not averaged
    Ema e({{"p", p}, {"frozen", frozen}}, h);
    T::NoGradGuard no_grad;  // stands in for optimizer steps
    p.fill_(1.0);
    frozen.fill_(7.0);
    e.update();
    CXR_EXPECT_CLOSE(e.shadow()[0].second, T::full({2}, 0.5, DType::f64), 0, 0);
    CXR_EXPECT_CLOSE(e.shadow()[1].second, T::full({1}, 7.0, DType::f64), 0, 0);
    p.fill_(3.0);
    e.update();
    CXR_EXPECT_CLOSE(e.shadow()[0].second, T::full({2}, 1.75, DType::f64), 0, 0);
}

TEST_CASE("optimizers train a Module's parameters(): least squares with SGD, Adam and AdamW", "[cpu][optim]") {
    // y = x·w* + b* exactly; each optimizer must bring the mean squared error near 0 from PyTorch's default init.
    Tensor x = cxr::testing::random_input({32, 3}, 7).to(DType::f32);  // [32, 3]
    Tensor w_true = T::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}, {3, 1});
    Tensor y = T::add(T::matmul(x, w_true), 0.25);  // [32, 1]
    for (const std::string kind : {"sgd", "adam", "adamw"}) {
        T::Generator gen(123);
        Linear model(3, 1, true, &gen);
        std::unique_ptr<Optimizer> opt;
        if (kind == "sgd") opt = std::make_unique<SGD>(model.parameters(), sgd(0.1, 0.9, 0.0, 0.0, true));
        if (kind == "adam") opt = std::make_unique<Adam>(model.parameters(), adam(0.05));
        if (kind == "adamw") opt = std::make_unique<AdamW>(model.parameters(), adam(0.05, 1e-4));
        double first = 0, last = 0;
        for (int step = 0; step < 300; ++step) {
            opt->zero_grad();
            Tensor loss = mse_loss(model(x), y);
            loss.backward();
            clip_grad_norm_(model.parameters(), 10.0);
            opt->step();
            (step == 0 ? first : last) = loss.item();
        }
        INFO(kind << ": mse " << first << " -> " << last);
        CHECK(last < 1e-4);
        CHECK(last < first * 1e-3);
    }
}
