// Exponential moving average of weights: the decay schedule and update written in nn/ema.h.
#include "nn/ema.h"

#include <algorithm>
#include <cmath>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"

namespace cxr::nn {

namespace T = cxr::tensor;
using T::Tensor;

Ema::Ema(std::vector<std::pair<std::string, Tensor>> named, EmaOptions options)
    : params_(std::move(named)), options_(options) {
    CXR_CHECK(options_.decay >= 0.0 && options_.decay <= 1.0, "Ema: decay must be in [0, 1], got ", options_.decay);
    CXR_CHECK(options_.min_decay >= 0.0 && options_.min_decay <= options_.decay,
              "Ema: min_decay must be in [0, decay], got ", options_.min_decay);
    CXR_CHECK(options_.inv_gamma > 0.0, "Ema: inv_gamma must be > 0, got ", options_.inv_gamma);
    CXR_CHECK(options_.update_after_step >= 0, "Ema: update_after_step must be >= 0");
    T::NoGradGuard no_grad;
    for (const auto& kv : params_) {
        CXR_CHECK(kv.second.defined(), "Ema: parameter '", kv.first, "' is undefined");
        CXR_CHECK(kv.first != "ema.num_updates", "Ema: a parameter may not be named 'ema.num_updates'");
        for (const auto& s : shadow_) CXR_CHECK(s.first != kv.first, "Ema: duplicate parameter name '", kv.first, "'");
        shadow_.emplace_back(kv.first, kv.second.detach().clone());
    }
}

double Ema::decay_at(int64_t update) const {
    CXR_CHECK(update >= 1, "Ema: update numbers start at 1, got ", update);
    const double s = (double)(update - options_.update_after_step - 1);
    const bool delayed = options_.warmup != EmaOptions::Warmup::none || options_.update_after_step > 0;
    if (delayed && s <= 0) return 0.0;
    double d = options_.decay;
    if (options_.warmup == EmaOptions::Warmup::diffusers)
        d = std::min(d, (1.0 + s) / (10.0 + s));
    else if (options_.warmup == EmaOptions::Warmup::power)
        d = std::min(d, 1.0 - std::pow(1.0 + s / options_.inv_gamma, -options_.power));
    return std::max(d, options_.min_decay);
}

void Ema::update() {
    T::NoGradGuard no_grad;
    num_updates_ += 1;
    const double one_minus_decay = 1.0 - decay_at(num_updates_);
    for (size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i].second;
        Tensor& s = shadow_[i].second;
        if (p.requires_grad())
            s.copy_(s - (s - p) * one_minus_decay);
        else
            s.copy_(p);
    }
}

void Ema::copy_to() const {
    T::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor p = params_[i].second;
        p.copy_(shadow_[i].second);
    }
}

void Ema::store() {
    T::NoGradGuard no_grad;
    stored_.clear();
    for (const auto& kv : params_) stored_.push_back(kv.second.detach().clone());
}

void Ema::restore() {
    CXR_CHECK(stored_.size() == params_.size(), "Ema::restore: nothing stored (call store() first)");
    T::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor p = params_[i].second;
        p.copy_(stored_[i]);
    }
    stored_.clear();
}

std::map<std::string, Tensor> Ema::state_dict() const {
    std::map<std::string, Tensor> out;
    for (const auto& kv : shadow_) out[kv.first] = kv.second.clone();
    out["ema.num_updates"] = T::scalar_tensor((double)num_updates_, T::DType::i64);
    return out;
}

void Ema::load_state_dict(const std::map<std::string, Tensor>& state) {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < shadow_.size(); ++i) index[shadow_[i].first] = i;
    for (const auto& kv : state) {
        if (kv.first == "ema.num_updates") continue;
        auto it = index.find(kv.first);
        CXR_CHECK(it != index.end(), "Ema state: unexpected key '", kv.first, "'");
        const Tensor& s = shadow_[it->second].second;
        CXR_CHECK(kv.second.sizes() == s.sizes(), "Ema state: key '", kv.first, "' has shape ",
                  T::shape_str(kv.second.sizes()), " but the parameter has shape ", T::shape_str(s.sizes()));
    }
    for (const auto& kv : shadow_)
        CXR_CHECK(state.count(kv.first), "Ema state: missing key '", kv.first, "'");
    auto n = state.find("ema.num_updates");
    CXR_CHECK(n != state.end(), "Ema state: missing key 'ema.num_updates'");
    CXR_CHECK(n->second.numel() == 1 && n->second.item() >= 0, "Ema state: 'ema.num_updates' must be one count");
    T::NoGradGuard no_grad;
    for (auto& kv : shadow_) kv.second.copy_(state.at(kv.first));
    num_updates_ = (int64_t)n->second.item();
}

}  // namespace cxr::nn
