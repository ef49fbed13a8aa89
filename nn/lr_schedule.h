// Learning-rate schedules as pure functions of the step: factor(k) is the multiplier of each group's initial lr
// for the k-th optimizer step (k = 0 for the first). This is torch.optim.lr_scheduler's convention: with a torch
// scheduler stepped once after every optimizer.step(), the lr used by the k-th update is initial_lr · factor(k).
// Being closed forms, the schedules are stateless: resuming from a checkpoint needs only the step.
//
//   constant                          factor = 1                                         (LambdaLR(lambda k: 1))
//   linear(s, e, n)                   factor = s + (e − s)·min(k, n)/n                  (LinearLR(s, e, total_iters=n))
//   linear_warmup(n, s)               linear(s, 1, n)  — from s·lr up to lr over n steps, then lr
//   constant_warmup(f, n)             factor = f for k < n, then 1                       (ConstantLR(f, total_iters=n))
//   step_decay(n, γ)                  factor = γ^⌊k/n⌋                                   (StepLR(step_size=n, gamma=γ))
//   cosine(T, m)                      factor = m + (1 − m)·(1 + cos(π·min(k, T)/T))/2
//                                     (CosineAnnealingLR(T_max=T, eta_min=m·lr) for k ≤ T; torch's rises again after
//                                      T (a period of 2T), ours holds m)
//   warmup_cosine(W, T, s, m)         k < W: s + (1 − s)·k/W;  k ≥ W: cosine(T − W, m) at k − W
//                                     (SequentialLR([LinearLR(s, 1, W), CosineAnnealingLR(T − W, m·lr)],
//                                      milestones=[W]); with s = 0, m = 0 it is diffusers' / transformers'
//                                      get_cosine_schedule_with_warmup (num_cycles 0.5))
// Linear and cosine annealing follow Loshchilov & Hutter 2017 (SGDR) and Goyal et al. 2017 (gradual warmup).
#pragma once

#include <cstdint>
#include <string>

namespace cxr::nn {

class Optimizer;

struct LrSchedule {
    enum class Kind { constant, linear, constant_warmup, step_decay, cosine, warmup_cosine };
    Kind kind = Kind::constant;
    int64_t warmup_steps = 0;    // linear: total_iters; constant_warmup, warmup_cosine: W
    int64_t total_steps = 0;     // cosine: T_max; warmup_cosine: T (warmup included)
    int64_t step_size = 1;       // step_decay
    double start_factor = 1.0;   // linear, warmup_cosine: s; constant_warmup: f
    double end_factor = 1.0;     // linear: e
    double gamma = 0.1;          // step_decay
    double min_factor = 0.0;     // cosine, warmup_cosine: m = eta_min / lr

    static LrSchedule constant();
    static LrSchedule linear(double start_factor, double end_factor, int64_t total_iters);
    static LrSchedule linear_warmup(int64_t warmup_steps, double start_factor = 0.0);
    static LrSchedule constant_warmup(double factor, int64_t warmup_steps);
    static LrSchedule step_decay(int64_t step_size, double gamma);
    static LrSchedule cosine(int64_t total_steps, double min_factor = 0.0);
    static LrSchedule warmup_cosine(int64_t warmup_steps, int64_t total_steps, double start_factor = 0.0,
                                    double min_factor = 0.0);

    // The multiplier for optimizer step k (k ≥ 0).
    double factor(int64_t step) const;
    // "constant", "linear", ... (also accepted by parse_lr_schedule_kind).
    std::string name() const;
    // Throws naming the bad field (e.g. warmup_steps > total_steps).
    void validate() const;
};

LrSchedule::Kind parse_lr_schedule_kind(const std::string& name);

// Sets every group's lr to initial_lr(g) · schedule.factor(step); call before the step-th optimizer.step().
void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, int64_t step);

}  // namespace cxr::nn
