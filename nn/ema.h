// Exponential moving average of model weights, as used in diffusion training (Ho et al. 2020 §B; Karras et al.;
// the semantics of diffusers' EMAModel and torch.optim.swa_utils' EMA averaging):
//   shadow ← d·shadow + (1 − d)·θ     for each parameter θ, after every optimizer step
// computed as shadow ← shadow − (1 − d)·(shadow − θ) (diffusers' in-place form). The shadow starts as a copy of
// the parameters. The decay d at update number n (1 for the first update) is, with s = n − update_after_step − 1:
//   s ≤ 0 (first updates)                          d = 0 (the shadow copies θ)  — only when update_after_step > 0
//                                                   or a warmup is on, as diffusers; with Warmup::none and
//                                                   update_after_step = 0, d = decay from the first update
//   Warmup::none                                   d = decay
//   Warmup::diffusers  (EMAModel default)          d = min(decay, (1 + s)/(10 + s))
//   Warmup::power      (use_ema_warmup=True)       d = min(decay, 1 − (1 + s/inv_gamma)^(−power))
// and then d = max(d, min_decay). Parameters that do not require grad (frozen, buffers) are copied, not averaged.
// The shadow and the update count are checkpoint state ("<name>" per parameter and "ema.num_updates").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

struct EmaOptions {
    enum class Warmup { none, diffusers, power };
    double decay = 0.9999;
    Warmup warmup = Warmup::none;
    double inv_gamma = 1.0;      // Warmup::power
    double power = 2.0 / 3.0;    // Warmup::power
    double min_decay = 0.0;
    int64_t update_after_step = 0;
};

class Ema {
public:
    // named: (name, parameter) pairs, e.g. Module::named_parameters(); the names key the shadow's state dict, so
    // that the averaged weights can be written as a model checkpoint.
    Ema(std::vector<std::pair<std::string, tensor::Tensor>> named, EmaOptions options = {});

    // The decay the n-th update uses (n ≥ 1).
    double decay_at(int64_t update) const;
    // One update from the current parameter values (call after optimizer.step()).
    void update();
    int64_t num_updates() const { return num_updates_; }

    // Copies the shadow into the parameters (e.g. for evaluation or export); store()/restore() keep the live
    // weights aside meanwhile.
    void copy_to() const;
    void store();
    void restore();

    const std::vector<std::pair<std::string, tensor::Tensor>>& shadow() const { return shadow_; }
    // {name: shadow tensor} plus "ema.num_updates" (0-d i64).
    std::map<std::string, tensor::Tensor> state_dict() const;
    // Strict: every name present with the parameter's shape, no unknown key.
    void load_state_dict(const std::map<std::string, tensor::Tensor>& state);

private:
    std::vector<std::pair<std::string, tensor::Tensor>> params_;
    std::vector<std::pair<std::string, tensor::Tensor>> shadow_;
    std::vector<tensor::Tensor> stored_;
    EmaOptions options_;
    int64_t num_updates_ = 0;
};

}  // namespace cxr::nn
