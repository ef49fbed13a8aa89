// Gradient clipping by global norm and by value (torch.nn.utils semantics; formulas in nn/clip.h).
#include "nn/clip.h"

#include <cmath>
#include <limits>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace cxr::nn {

namespace T = cxr::tensor;
using T::Tensor;

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
    const bool inf_norm = std::isinf(norm_type) && norm_type > 0;
    CXR_CHECK(inf_norm || norm_type == 2.0, "clip_grad_norm_: norm_type must be 2 or inf, got ", norm_type);
    CXR_CHECK(max_norm >= 0.0, "clip_grad_norm_: max_norm must be >= 0, got ", max_norm);
    T::NoGradGuard no_grad;
    std::vector<Tensor> grads;
    for (const auto& p : params)
        if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
    if (grads.empty()) return 0.0;

    // Per-gradient norms in the gradient's dtype (as torch), combined in double.
    double total = 0.0;
    for (const auto& g : grads) {
        if (g.numel() == 0) continue;
        if (inf_norm) {
            const double m = T::amax(T::abs(g)).item();
            if (!(m <= total)) total = m;  // keeps a NaN

        } else {
            const double n = T::sqrt(T::sum(T::square(g))).item();
            total += n * n;
        }
    }
    if (!inf_norm) total = std::sqrt(total);
    CXR_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
              " of the gradients is non-finite (", total, ")");
    const double coef = std::min(max_norm / (total + 1e-6), 1.0);
    for (auto& g : grads) g.copy_(g * coef);
    return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
    CXR_CHECK(clip_value >= 0.0, "clip_grad_value_: clip_value must be >= 0, got ", clip_value);
    T::NoGradGuard no_grad;
    for (const auto& p : params) {
        if (!p.defined() || !p.grad().defined()) continue;
        Tensor g = p.grad();
        g.copy_(T::clamp(g, -clip_value, clip_value));
    }
}

}  // namespace cxr::nn
