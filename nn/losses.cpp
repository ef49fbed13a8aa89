// Masked multi-label BCE and the sigmoid focal loss (formulas in nn/losses.h), composed from differentiable
// tensor ops so that their gradients follow by the chain rule.
#include "nn/losses.h"

#include <limits>

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace cxr::nn {

namespace T = cxr::tensor;
using T::Tensor;

namespace {

void check_pair(const char* who, const Tensor& logits, const Tensor& targets) {
    CXR_CHECK(logits.defined() && targets.defined(), who, ": undefined logits or targets");
    CXR_CHECK(logits.sizes() == targets.sizes(), who, ": logits ", T::shape_str(logits.sizes()), " and targets ",
              T::shape_str(targets.sizes()), " must have the same shape");
    CXR_CHECK(T::is_floating(logits.dtype()), who, ": logits must be floating point");
}

// Targets with unknown entries replaced by 0 (so that no NaN enters the arithmetic), detached.
Tensor safe_targets(const Tensor& targets, const Tensor& known) {
    Tensor t = targets.detach();
    return T::where(T::gt(known, 0.5), t, T::zeros_like(t));
}

Tensor reduce_masked(const Tensor& loss, const Tensor& known, Reduction reduction) {
    switch (reduction) {
        case Reduction::none: return loss;
        case Reduction::sum: return T::sum(loss);
        case Reduction::mean: {
            // Σ_known ℓ / max(#known, 1): unknown entries already hold 0.
            Tensor count = T::clamp(T::sum(known.detach()), 1.0, std::numeric_limits<double>::infinity());
            return T::sum(loss) / count.to(loss.dtype());
        }
    }
    CXR_FAIL("masked loss: unknown reduction");
}

}  // namespace

Tensor known_label_mask(const Tensor& targets) {
    T::NoGradGuard no_grad;
    Tensor t = targets.detach();
    CXR_CHECK(T::is_floating(t.dtype()), "known_label_mask: targets must be floating point (NaN marks unknown)");
    // eq(t, t) is false only for NaN; lt(t, 0) marks negative codes such as −1.
    Tensor known = T::where(T::eq(t, t), T::logical_not(T::lt(t, 0.0)), T::eq(t, t));
    return known.to(t.dtype());
}

// Both losses are f32 ops under autocast (tensor/autocast.h): reduced-precision logits are cast up first.
Tensor masked_bce_with_logits(const Tensor& logits_in, const Tensor& targets, const Tensor& pos_weight,
                              Reduction reduction) {
    const Tensor logits = T::autocast_f32(logits_in);
    check_pair("masked_bce_with_logits", logits, targets);
    Tensor known = known_label_mask(targets).to(logits.dtype());  // same shape as logits
    Tensor y = safe_targets(targets, known).to(logits.dtype());
    Tensor loss = T::bce_with_logits(logits, y, known, pos_weight, Reduction::none);
    return reduce_masked(loss, known, reduction);
}

Tensor sigmoid_focal_loss(const Tensor& logits_in, const Tensor& targets, double alpha, double gamma,
                          Reduction reduction) {
    const Tensor logits = T::autocast_f32(logits_in);
    check_pair("sigmoid_focal_loss", logits, targets);
    CXR_CHECK(gamma >= 0.0, "sigmoid_focal_loss: gamma must be >= 0, got ", gamma);
    Tensor known = known_label_mask(targets).to(logits.dtype());
    Tensor y = safe_targets(targets, known).to(logits.dtype());
    Tensor ce = T::bce_with_logits(logits, y, known, Tensor(), Reduction::none);  // 0 where unknown
    Tensor loss = ce;
    if (gamma != 0.0) {
        Tensor p = T::sigmoid(logits);
        Tensor p_t = p * y + (1.0 + T::neg(p)) * (1.0 + T::neg(y));
        loss = loss * T::pow(1.0 + T::neg(p_t), gamma);
    }
    if (alpha >= 0.0) {
        Tensor alpha_t = y * alpha + (1.0 + T::neg(y)) * (1.0 - alpha);
        loss = loss * alpha_t;
    }
    return reduce_masked(loss, known, reduction);
}

}  // namespace cxr::nn
