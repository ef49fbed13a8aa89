// Optimizers with PyTorch's exact update rules (torch.optim.SGD, Adam, AdamW; the single-tensor, non-foreach
// code path, which is what torch runs for CPU tensors): parameter groups with per-group hyper-parameters,
// zero_grad, step, and the optimizer state as named tensors for checkpoints.
//
// Parameters are leaf Tensors (e.g. Module::parameters()); a parameter whose .grad is undefined at a step is
// skipped, and its state (including its own step counter) is untouched, as torch. Updates run in place under
// NoGradGuard through Tensor::copy_, so a parameter keeps its storage (views of it stay valid).
//
// SGD (Sutskever et al. 2013 momentum; Nesterov as in torch), with g = ∇ (−∇ when maximize):
//   g ← g + λ·θ                                   (weight_decay λ ≠ 0)
//   b ← g  at the first step;  b ← μ·b + (1 − τ)·g  afterwards   (momentum μ ≠ 0, dampening τ)
//   g ← g + μ·b  (nesterov)   or   g ← b
//   θ ← θ − lr·g
// Adam (Kingma & Ba 2015, Algorithm 1, with torch's eps placement) / AdamW (Loshchilov & Hutter 2019, decoupled
// weight decay), per parameter with its own step count t (1 at the first update):
//   Adam:  g ← g + λ·θ                 AdamW:  θ ← θ·(1 − lr·λ)
//   m ← m + (1 − β1)·(g − m)           (torch's lerp_)
//   v ← β2·v + (1 − β2)·g²
//   v̂max ← max(v̂max, v)  (amsgrad; then v̂max replaces v below)
//   denom ← √v / √(1 − β2^t) + ε
//   θ ← θ − (lr / (1 − β1^t)) · m / denom
// Two implementations of the same rule: the composed path (one tensor op per line above, the reference, default
// on the CPU) and the fused path (tensor/ops/optim.h adam_step_: every parameter of a group updated by one kernel
// call, one CUDA launch per up to 48 tensors; default for CUDA parameters). AdamOptions::fused picks: unset — fused
// for CUDA f32/f64 contiguous parameters, composed otherwise; true — fused for every parameter (they must be
// f32/f64 and contiguous); false — composed. For f32/f64 both paths round identically (the fused kernel follows the
// composed operation order, tests/tensor/test_optim_fused.cpp).
//
// State for checkpoints (state_dict / save_state / load_state): per parameter, keyed by its group and its index in
// that group, "state.<g>.<i>.<name>" with name one of momentum_buffer (SGD), exp_avg, exp_avg_sq, max_exp_avg_sq
// (Adam/AdamW), and "state.<g>.<i>.step" (0-d i64: updates this parameter has received); per group
// "param_groups.<g>.lr" and "param_groups.<g>.initial_lr" (0-d f64). Loading is strict: an unknown key, a
// group/index that does not exist, a shape mismatch or a parameter with partial state is an error naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::nn {

using tensor::Tensor;

struct SGDOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;  // needs momentum > 0 and dampening = 0 (as torch)
    bool maximize = false;
};

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled (torch's AdamW default is 1e-2)
    bool amsgrad = false;
    bool maximize = false;
    // Fused multi-tensor update (see above): unset = on for CUDA f32/f64 parameters, off on the CPU.
    std::optional<bool> fused;
};

// AdamW's defaults (torch.optim.AdamW): as Adam with weight_decay = 1e-2.
inline AdamOptions adamw_defaults() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
}

template <class Options>
struct ParamGroup {
    std::vector<Tensor> params;
    Options options;
};

class Optimizer {
public:
    virtual ~Optimizer() = default;
    virtual std::string name() const = 0;  // "SGD", "Adam", "AdamW"

    // Performs one update of every parameter that has a gradient.
    virtual void step() = 0;
    // Drops every parameter's gradient (torch's default set_to_none=True).
    void zero_grad();

    size_t num_groups() const { return groups_.size(); }
    const std::vector<Tensor>& params(size_t group) const;
    double lr(size_t group) const;
    void set_lr(size_t group, double lr);
    // The learning rate the group was created with (torch's "initial_lr"): schedules scale this value.
    double initial_lr(size_t group) const;
    // Updates parameter (group, index) has received (0 before its first).
    int64_t step_count(size_t group, size_t index) const;

    std::map<std::string, Tensor> state_dict() const;
    void load_state_dict(const std::map<std::string, Tensor>& state);
    // The state as a safetensors file (own writer; metadata names the optimizer) and back.
    void save_state(const std::string& path) const;
    void load_state(const std::string& path);

protected:
    struct GroupBase {
        std::vector<Tensor> params;
        double lr = 0.0;
        double initial_lr = 0.0;
    };
    struct ParamState {
        int64_t step = 0;
        std::map<std::string, Tensor> buffers;  // e.g. "exp_avg"
    };

    void add_group_base(std::vector<Tensor> params, double lr);
    ParamState& state(size_t group, size_t index) { return state_[group][index]; }
    // The buffer names a fully initialised state of parameter (group, index) holds, for strict loading.
    virtual std::vector<std::string> state_names(size_t group) const = 0;

    std::vector<GroupBase> groups_;
    std::vector<std::vector<ParamState>> state_;
};

class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, SGDOptions options);
    explicit SGD(std::vector<ParamGroup<SGDOptions>> groups);
    std::string name() const override { return "SGD"; }
    void step() override;
    void add_param_group(ParamGroup<SGDOptions> group);
    const SGDOptions& options(size_t group) const { return options_.at(group); }

protected:
    std::vector<std::string> state_names(size_t group) const override;

private:
    std::vector<SGDOptions> options_;  // lr lives in groups_ (the schedules change it)
};

// Adam, or AdamW with decoupled = true.
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay = false);
    explicit Adam(std::vector<ParamGroup<AdamOptions>> groups, bool decoupled_weight_decay = false);
    std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
    void step() override;
    void add_param_group(ParamGroup<AdamOptions> group);
    const AdamOptions& options(size_t group) const { return options_.at(group); }

protected:
    std::vector<std::string> state_names(size_t group) const override;

private:
    // The composed (reference) update of parameter p with state st (st.step already counts this update).
    void composed_update(Tensor& p, ParamState& st, const AdamOptions& o, double lr);

    std::vector<AdamOptions> options_;
    bool decoupled_ = false;
};

class AdamW : public Adam {
public:
    explicit AdamW(std::vector<Tensor> params, AdamOptions options = adamw_defaults())
        : Adam(std::move(params), options, true) {}
    explicit AdamW(std::vector<ParamGroup<AdamOptions>> groups) : Adam(std::move(groups), true) {}
};

}  // namespace cxr::nn
