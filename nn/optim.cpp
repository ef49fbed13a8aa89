// SGD, Adam and AdamW: the update rules written in nn/optim.h, in the operation order of torch.optim's
// single-tensor implementations (_single_tensor_sgd, _single_tensor_adam), so that f32 results round as torch's.
// Every composed update is computed with the tensor ops under NoGradGuard and written back with Tensor::copy_;
// Adam/AdamW can instead run the fused multi-tensor op adam_step_ (tensor/ops/optim.h), which rounds identically.
#include "nn/optim.h"

#include <cmath>
#include <set>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/optim.h"

namespace cxr::nn {

namespace T = cxr::tensor;

namespace {

// The gradient of p in p's dtype, negated when maximising.
Tensor grad_of(const Tensor& p, bool maximize) {
    Tensor g = p.grad();
    if (g.dtype() != p.dtype()) g = g.to(p.dtype());
    return maximize ? T::neg(g) : g;
}

// torch.lerp(start, end, w) as its CPU kernel computes it: start + w·(end − start) for |w| < 0.5, else
// end − (end − start)·(1 − w) (the form that is exact at w = 1).
Tensor lerp(const Tensor& start, const Tensor& end, double w) {
    if (std::fabs(w) < 0.5) return start + (end - start) * w;
    return end - (end - start) * (1.0 - w);
}

// True when the fused kernel (tensor/ops/optim.h) can update p in place: f32/f64 and contiguous.
bool fused_capable(const Tensor& p) {
    return (p.dtype() == T::DType::f32 || p.dtype() == T::DType::f64) && p.is_contiguous();
}

// The tensors of one adam_step_ call.
struct FusedBatch {
    std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
};

std::string key(size_t g, size_t i, const std::string& name) {
    std::ostringstream os;
    os << "state." << g << "." << i << "." << name;
    return os.str();
}

std::string group_key(size_t g, const std::string& name) {
    std::ostringstream os;
    os << "param_groups." << g << "." << name;
    return os.str();
}

}  // namespace

// ---------------------------------------------------------------- Optimizer

void Optimizer::add_group_base(std::vector<Tensor> params, double lr) {
    CXR_CHECK(!params.empty(), "optimizer: a parameter group has no parameters");
    for (size_t i = 0; i < params.size(); ++i) {
        const Tensor& p = params[i];
        CXR_CHECK(p.defined(), "optimizer: parameter ", i, " of group ", groups_.size(), " is undefined");
        CXR_CHECK(p.is_leaf(), "optimizer: parameter ", i, " of group ", groups_.size(),
                  " is not a leaf tensor (optimise the leaves, e.g. Module::parameters())");
        CXR_CHECK(T::is_floating(p.dtype()), "optimizer: parameter ", i, " of group ", groups_.size(),
                  " is not floating point (", T::dtype_name(p.dtype()), ")");
        for (const auto& g : groups_)
            for (const auto& q : g.params)
                CXR_CHECK(!q.same(p), "optimizer: a parameter appears in more than one group (group ",
                          groups_.size(), ", index ", i, ")");
        for (size_t j = 0; j < i; ++j)
            CXR_CHECK(!params[j].same(p), "optimizer: a parameter appears twice in group ", groups_.size(),
                      " (indices ", j, " and ", i, ")");
    }
    CXR_CHECK(lr >= 0.0, "optimizer: invalid learning rate ", lr);
    GroupBase gb;
    gb.params = std::move(params);
    gb.lr = lr;
    gb.initial_lr = lr;
    state_.emplace_back(gb.params.size());
    groups_.push_back(std::move(gb));
}

void Optimizer::zero_grad() {
    for (auto& g : groups_)
        for (auto& p : g.params) p.zero_grad();
}

const std::vector<Tensor>& Optimizer::params(size_t group) const {
    CXR_CHECK(group < groups_.size(), "optimizer: no parameter group ", group);
    return groups_[group].params;
}

double Optimizer::lr(size_t group) const {
    CXR_CHECK(group < groups_.size(), "optimizer: no parameter group ", group);
    return groups_[group].lr;
}

void Optimizer::set_lr(size_t group, double lr) {
    CXR_CHECK(group < groups_.size(), "optimizer: no parameter group ", group);
    CXR_CHECK(lr >= 0.0 && std::isfinite(lr), "optimizer: invalid learning rate ", lr, " for group ", group);
    groups_[group].lr = lr;
}

double Optimizer::initial_lr(size_t group) const {
    CXR_CHECK(group < groups_.size(), "optimizer: no parameter group ", group);
    return groups_[group].initial_lr;
}

int64_t Optimizer::step_count(size_t group, size_t index) const {
    CXR_CHECK(group < groups_.size() && index < groups_[group].params.size(), "optimizer: no parameter ", index,
              " in group ", group);
    return state_[group][index].step;
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
    std::map<std::string, Tensor> out;
    for (size_t g = 0; g < groups_.size(); ++g) {
        out[group_key(g, "lr")] = T::scalar_tensor(groups_[g].lr, T::DType::f64);
        out[group_key(g, "initial_lr")] = T::scalar_tensor(groups_[g].initial_lr, T::DType::f64);
        for (size_t i = 0; i < groups_[g].params.size(); ++i) {
            const ParamState& st = state_[g][i];
            if (st.step == 0 && st.buffers.empty()) continue;
            out[key(g, i, "step")] = T::scalar_tensor((double)st.step, T::DType::i64);
            for (const auto& kv : st.buffers) out[key(g, i, kv.first)] = kv.second.clone();
        }
    }
    return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& sd) {
    // Validate everything first, so that a failed load leaves the optimizer untouched.
    std::vector<std::vector<ParamState>> fresh(groups_.size());
    std::vector<double> lrs(groups_.size()), initial(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g) {
        fresh[g].resize(groups_[g].params.size());
        lrs[g] = groups_[g].lr;
        initial[g] = groups_[g].initial_lr;
    }
    std::vector<std::vector<std::set<std::string>>> seen(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g) seen[g].resize(groups_[g].params.size());

    for (const auto& kv : sd) {
        const std::string& k = kv.first;
        const Tensor& t = kv.second;
        std::istringstream is(k);
        std::string head, gs, is_, field;
        std::getline(is, head, '.');
        std::getline(is, gs, '.');
        auto parse_index = [&](const std::string& s) -> size_t {
            CXR_CHECK(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos,
                      "optimizer state: malformed key '", k, "'");
            return (size_t)std::stoull(s);
        };
        if (head == "param_groups") {
            std::getline(is, field);
            size_t g = parse_index(gs);
            CXR_CHECK(g < groups_.size(), "optimizer state: key '", k, "' names group ", g, " but the ", name(),
                      " has ", groups_.size(), " group(s)");
            CXR_CHECK(t.numel() == 1, "optimizer state: key '", k, "' must hold one value");
            if (field == "lr")
                lrs[g] = t.item();
            else if (field == "initial_lr")
                initial[g] = t.item();
            else
                CXR_FAIL("optimizer state: unexpected key '", k, "'");
            continue;
        }
        CXR_CHECK(head == "state", "optimizer state: unexpected key '", k, "'");
        std::getline(is, is_, '.');
        std::getline(is, field);
        size_t g = parse_index(gs), i = parse_index(is_);
        CXR_CHECK(g < groups_.size() && i < groups_[g].params.size(), "optimizer state: key '", k,
                  "' names a parameter the ", name(), " does not have");
        const Tensor& p = groups_[g].params[i];
        if (field == "step") {
            CXR_CHECK(t.numel() == 1 && t.item() >= 0, "optimizer state: key '", k,
                      "' must hold one non-negative count");
            fresh[g][i].step = (int64_t)t.item();
        } else {
            auto names = state_names(g);
            bool known = false;
            for (const auto& n : names) known = known || n == field;
            CXR_CHECK(known, "optimizer state: unexpected key '", k, "' for ", name());
            CXR_CHECK(t.sizes() == p.sizes(), "optimizer state: key '", k, "' has shape ",
                      T::shape_str(t.sizes()), " but the parameter has shape ", T::shape_str(p.sizes()));
            Tensor buf = T::empty(p.sizes(), {p.dtype(), p.device()});
            buf.copy_(t);
            fresh[g][i].buffers[field] = buf;
        }
        seen[g][i].insert(field);
    }
    for (size_t g = 0; g < groups_.size(); ++g) {
        auto names = state_names(g);
        for (size_t i = 0; i < groups_[g].params.size(); ++i) {
            if (seen[g][i].empty()) continue;
            CXR_CHECK(seen[g][i].count("step"), "optimizer state: parameter ", g, ".", i, " has buffers but no '",
                      key(g, i, "step"), "'");
            if (fresh[g][i].step == 0) continue;
            for (const auto& n : names)
                CXR_CHECK(seen[g][i].count(n), "optimizer state: missing key '", key(g, i, n), "'");
        }
    }
    state_ = std::move(fresh);
    for (size_t g = 0; g < groups_.size(); ++g) {
        groups_[g].lr = lrs[g];
        groups_[g].initial_lr = initial[g];
    }
}

void Optimizer::save_state(const std::string& path) const {
    T::save_tensor_file(path, state_dict(), {{"optimizer", name()}});
}

void Optimizer::load_state(const std::string& path) {
    T::TensorFile f = T::load_tensor_file(path);
    auto it = f.metadata.find("optimizer");
    CXR_CHECK(it == f.metadata.end() || it->second == name(), "optimizer state ", path, " was written by ",
              it->second, ", not ", name());
    try {
        load_state_dict(f.tensors);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (file " + path + ")");
    }
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<Tensor> params, SGDOptions options) {
    add_param_group({std::move(params), options});
}

SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups) {
    CXR_CHECK(!groups.empty(), "SGD: no parameter groups");
    for (auto& g : groups) add_param_group(std::move(g));
}

void SGD::add_param_group(ParamGroup<SGDOptions> group) {
    const SGDOptions& o = group.options;
    CXR_CHECK(o.momentum >= 0.0, "SGD: invalid momentum ", o.momentum);
    CXR_CHECK(o.weight_decay >= 0.0, "SGD: invalid weight_decay ", o.weight_decay);
    CXR_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
              "SGD: Nesterov momentum requires a momentum and zero dampening");
    add_group_base(std::move(group.params), o.lr);
    options_.push_back(o);
}

std::vector<std::string> SGD::state_names(size_t group) const {
    if (options_[group].momentum != 0.0) return {"momentum_buffer"};
    return {};
}

void SGD::step() {
    T::NoGradGuard no_grad;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const SGDOptions& o = options_[gi];
        const double lr = groups_[gi].lr;
        for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
            Tensor& p = groups_[gi].params[i];
            if (!p.grad().defined()) continue;
            ParamState& st = state(gi, i);
            Tensor g = grad_of(p, o.maximize);
            if (o.weight_decay != 0.0) g = g + p * o.weight_decay;
            if (o.momentum != 0.0) {
                auto it = st.buffers.find("momentum_buffer");
                if (it == st.buffers.end()) {
                    st.buffers["momentum_buffer"] = g.clone();
                } else {
                    Tensor& buf = it->second;
                    buf.copy_(buf * o.momentum + g * (1.0 - o.dampening));
                }
                const Tensor& buf = st.buffers["momentum_buffer"];
                g = o.nesterov ? g + buf * o.momentum : buf;
            }
            p.copy_(p + g * (-lr));
            st.step += 1;
        }
    }
}

// ---------------------------------------------------------------- Adam / AdamW

Adam::Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay)
    : decoupled_(decoupled_weight_decay) {
    add_param_group({std::move(params), options});
}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups, bool decoupled_weight_decay)
    : decoupled_(decoupled_weight_decay) {
    CXR_CHECK(!groups.empty(), name(), ": no parameter groups");
    for (auto& g : groups) add_param_group(std::move(g));
}

void Adam::add_param_group(ParamGroup<AdamOptions> group) {
    const AdamOptions& o = group.options;
    CXR_CHECK(o.eps >= 0.0, name(), ": invalid eps ", o.eps);
    CXR_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0, name(), ": invalid beta1 ", o.beta1);
    CXR_CHECK(o.beta2 >= 0.0 && o.beta2 < 1.0, name(), ": invalid beta2 ", o.beta2);
    CXR_CHECK(o.weight_decay >= 0.0, name(), ": invalid weight_decay ", o.weight_decay);
    if (o.fused.value_or(false))
        for (size_t i = 0; i < group.params.size(); ++i) {
            const Tensor& p = group.params[i];
            CXR_CHECK(!p.defined() || fused_capable(p), name(), ": fused = true needs f32/f64 contiguous parameters; "
                      "parameter ", i, " of group ", groups_.size(), " is ", T::dtype_name(p.dtype()),
                      p.is_contiguous() ? "" : " and not contiguous", " (leave fused unset or false)");
        }
    add_group_base(std::move(group.params), o.lr);
    options_.push_back(o);
}

std::vector<std::string> Adam::state_names(size_t group) const {
    if (options_[group].amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
    T::NoGradGuard no_grad;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const AdamOptions& o = options_[gi];
        const double lr = groups_[gi].lr;
        // Fused parameters of this group, batched by their step count t (equal for all unless some parameter
        // skipped steps without a gradient): one adam_step_ call per distinct t.
        std::map<int64_t, FusedBatch> fused;
        for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
            Tensor& p = groups_[gi].params[i];
            if (!p.grad().defined()) continue;
            ParamState& st = state(gi, i);
            if (st.buffers.empty()) {
                st.buffers["exp_avg"] = T::zeros_like(p);
                st.buffers["exp_avg_sq"] = T::zeros_like(p);
                if (o.amsgrad) st.buffers["max_exp_avg_sq"] = T::zeros_like(p);
            }
            st.step += 1;
            if (o.fused.value_or(p.is_cuda()) && fused_capable(p)) {
                FusedBatch& b = fused[st.step];
                b.params.push_back(p);
                b.grads.push_back(p.grad());
                b.exp_avgs.push_back(st.buffers["exp_avg"]);
                b.exp_avg_sqs.push_back(st.buffers["exp_avg_sq"]);
                if (o.amsgrad) b.max_exp_avg_sqs.push_back(st.buffers["max_exp_avg_sq"]);
                continue;
            }
            composed_update(p, st, o, lr);
        }
        for (const auto& kv : fused) {
            T::AdamStepParams sp;
            sp.lr = lr;
            sp.beta1 = o.beta1;
            sp.beta2 = o.beta2;
            sp.eps = o.eps;
            sp.weight_decay = o.weight_decay;
            sp.decoupled_weight_decay = decoupled_;
            sp.amsgrad = o.amsgrad;
            sp.maximize = o.maximize;
            sp.step = kv.first;
            const FusedBatch& b = kv.second;
            T::adam_step_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, b.max_exp_avg_sqs, sp);
        }
    }
}

// The composed update of one parameter whose step count st.step already counts this update: one tensor op per
// line of the formula in optim.h, in torch's _single_tensor_adam order (the reference the fused kernel matches).
void Adam::composed_update(Tensor& p, ParamState& st, const AdamOptions& o, double lr) {
    Tensor& m = st.buffers["exp_avg"];
    Tensor& v = st.buffers["exp_avg_sq"];
    const double t = (double)st.step;

    Tensor g = grad_of(p, o.maximize);
    if (o.weight_decay != 0.0) {
        if (decoupled_)
            p.copy_(p * (1.0 - lr * o.weight_decay));
        else
            g = g + p * o.weight_decay;
    }
    m.copy_(lerp(m, g, 1.0 - o.beta1));
    v.copy_(v * o.beta2 + (g * (1.0 - o.beta2)) * g);

    const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    Tensor second = v;
    if (o.amsgrad) {
        Tensor& vmax = st.buffers["max_exp_avg_sq"];
        vmax.copy_(T::maximum(vmax, v));
        second = vmax;
    }
    Tensor denom = T::sqrt(second) / bias_correction2_sqrt + o.eps;
    p.copy_(p + (m / denom) * (-step_size));
}

}  // namespace cxr::nn
