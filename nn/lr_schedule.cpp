// Learning-rate schedules: the closed forms written in nn/lr_schedule.h (torch.optim.lr_scheduler semantics).
#include "nn/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "nn/optim.h"
#include "tensor/error.h"

namespace cxr::nn {

namespace {
constexpr double kPi = 3.14159265358979323846;

// (1 + cos(π·k/T))/2 annealed from 1 to m, held at m after T.
double cosine_factor(int64_t k, int64_t total, double min_factor) {
    if (total <= 0) return min_factor;
    const double t = (double)std::min(k, total);
    return min_factor + (1.0 - min_factor) * (1.0 + std::cos(kPi * t / (double)total)) / 2.0;
}
}  // namespace

LrSchedule LrSchedule::constant() { return LrSchedule{}; }

LrSchedule LrSchedule::linear(double start_factor, double end_factor, int64_t total_iters) {
    LrSchedule s;
    s.kind = Kind::linear;
    s.start_factor = start_factor;
    s.end_factor = end_factor;
    s.warmup_steps = total_iters;
    s.validate();
    return s;
}

LrSchedule LrSchedule::linear_warmup(int64_t warmup_steps, double start_factor) {
    return linear(start_factor, 1.0, warmup_steps);
}

LrSchedule LrSchedule::constant_warmup(double factor, int64_t warmup_steps) {
    LrSchedule s;
    s.kind = Kind::constant_warmup;
    s.start_factor = factor;
    s.warmup_steps = warmup_steps;
    s.validate();
    return s;
}

LrSchedule LrSchedule::step_decay(int64_t step_size, double gamma) {
    LrSchedule s;
    s.kind = Kind::step_decay;
    s.step_size = step_size;
    s.gamma = gamma;
    s.validate();
    return s;
}

LrSchedule LrSchedule::cosine(int64_t total_steps, double min_factor) {
    LrSchedule s;
    s.kind = Kind::cosine;
    s.total_steps = total_steps;
    s.min_factor = min_factor;
    s.validate();
    return s;
}

LrSchedule LrSchedule::warmup_cosine(int64_t warmup_steps, int64_t total_steps, double start_factor,
                                     double min_factor) {
    LrSchedule s;
    s.kind = Kind::warmup_cosine;
    s.warmup_steps = warmup_steps;
    s.total_steps = total_steps;
    s.start_factor = start_factor;
    s.min_factor = min_factor;
    s.validate();
    return s;
}

void LrSchedule::validate() const {
    switch (kind) {
        case Kind::constant: break;
        case Kind::linear:
            CXR_CHECK(warmup_steps >= 0, "lr schedule linear: total_iters must be >= 0, got ", warmup_steps);
            CXR_CHECK(start_factor >= 0.0 && end_factor >= 0.0, "lr schedule linear: factors must be >= 0, got ",
                      start_factor, " and ", end_factor);
            break;
        case Kind::constant_warmup:
            CXR_CHECK(warmup_steps >= 0, "lr schedule constant_warmup: warmup_steps must be >= 0, got ",
                      warmup_steps);
            CXR_CHECK(start_factor >= 0.0 && start_factor <= 1.0,
                      "lr schedule constant_warmup: factor must be in [0, 1], got ", start_factor);
            break;
        case Kind::step_decay:
            CXR_CHECK(step_size >= 1, "lr schedule step_decay: step_size must be >= 1, got ", step_size);
            CXR_CHECK(gamma >= 0.0, "lr schedule step_decay: gamma must be >= 0, got ", gamma);
            break;
        case Kind::cosine:
            CXR_CHECK(total_steps >= 1, "lr schedule cosine: total_steps must be >= 1, got ", total_steps);
            CXR_CHECK(min_factor >= 0.0 && min_factor <= 1.0,
                      "lr schedule cosine: min_factor must be in [0, 1], got ", min_factor);
            break;
        case Kind::warmup_cosine:
            CXR_CHECK(warmup_steps >= 0, "lr schedule warmup_cosine: warmup_steps must be >= 0, got ",
                      warmup_steps);
            CXR_CHECK(total_steps > warmup_steps, "lr schedule warmup_cosine: total_steps (", total_steps,
                      ") must exceed warmup_steps (", warmup_steps, ")");
            CXR_CHECK(start_factor >= 0.0 && start_factor <= 1.0,
                      "lr schedule warmup_cosine: start_factor must be in [0, 1], got ", start_factor);
            CXR_CHECK(min_factor >= 0.0 && min_factor <= 1.0,
                      "lr schedule warmup_cosine: min_factor must be in [0, 1], got ", min_factor);
            break;
    }
}

double LrSchedule::factor(int64_t step) const {
    CXR_CHECK(step >= 0, "lr schedule: negative step ", step);
    switch (kind) {
        case Kind::constant: return 1.0;
        case Kind::linear:
            if (warmup_steps == 0 || step >= warmup_steps) return end_factor;
            return start_factor + (end_factor - start_factor) * (double)step / (double)warmup_steps;
        case Kind::constant_warmup: return step < warmup_steps ? start_factor : 1.0;
        case Kind::step_decay: return std::pow(gamma, (double)(step / step_size));
        case Kind::cosine: return cosine_factor(step, total_steps, min_factor);
        case Kind::warmup_cosine:
            if (step < warmup_steps) return start_factor + (1.0 - start_factor) * (double)step / (double)warmup_steps;
            return cosine_factor(step - warmup_steps, total_steps - warmup_steps, min_factor);
    }
    CXR_FAIL("lr schedule: unknown kind");
}

std::string LrSchedule::name() const {
    switch (kind) {
        case Kind::constant: return "constant";
        case Kind::linear: return "linear";
        case Kind::constant_warmup: return "constant_warmup";
        case Kind::step_decay: return "step_decay";
        case Kind::cosine: return "cosine";
        case Kind::warmup_cosine: return "warmup_cosine";
    }
    return "?";
}

LrSchedule::Kind parse_lr_schedule_kind(const std::string& name) {
    for (auto k : {LrSchedule::Kind::constant, LrSchedule::Kind::linear, LrSchedule::Kind::constant_warmup,
                   LrSchedule::Kind::step_decay, LrSchedule::Kind::cosine, LrSchedule::Kind::warmup_cosine}) {
        LrSchedule s;
        s.kind = k;
        if (s.name() == name) return k;
    }
    CXR_FAIL("unknown lr schedule '", name,
             "' (expected constant, linear, constant_warmup, step_decay, cosine or warmup_cosine)");
}

void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, int64_t step) {
    const double f = schedule.factor(step);
    for (size_t g = 0; g < optimizer.num_groups(); ++g) optimizer.set_lr(g, optimizer.initial_lr(g) * f);
}

}  // namespace cxr::nn
