// Loss functions (tensor/ops/loss.h): argument checks and the formulas of the header, written with
// differentiable ops (log_softmax, gather, index_select, where, sums), except bce_with_logits whose stable
// forward is computed without recording and whose backward is written out explicitly.
#include "tensor/ops/loss.h"

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

const char* reduction_name(Reduction r) {
    switch (r) {
        case Reduction::none: return "none";
        case Reduction::mean: return "mean";
        case Reduction::sum: return "sum";
    }
    return "?";
}

namespace {

Tensor reduce_elementwise(const Tensor& loss, Reduction r) {
    switch (r) {
        case Reduction::none: return loss;
        case Reduction::sum: return sum(loss);
        case Reduction::mean: return mean(loss);
    }
    CXR_FAIL("unknown reduction");
}

void check_pair(const char* op, const Tensor& input, const Tensor& target) {
    CXR_CHECK(input.defined() && target.defined(), op, ": undefined input or target");
    CXR_CHECK(is_floating(input.dtype()) && is_floating(target.dtype()), op,
              ": input and target must be floating, got ", dtype_name(input.dtype()), " and ",
              dtype_name(target.dtype()));
    CXR_CHECK(input.sizes() == target.sizes(), op, ": target of shape ", shape_str(target.sizes()),
              " must have the input's shape ", shape_str(input.sizes()));
    CXR_CHECK(input.device() == target.device(), op, ": input on ", input.device().str(), " but target on ",
              target.device().str());
}

void check_broadcasts_to(const char* op, const char* what, const Tensor& t, const Tensor& input) {
    if (!t.defined()) return;
    CXR_CHECK(is_floating(t.dtype()), op, ": ", what, " must be floating, got ", dtype_name(t.dtype()));
    CXR_CHECK(t.device() == input.device(), op, ": ", what, " on ", t.device().str(), " but input on ",
              input.device().str());
    bool ok = true;
    try {
        ok = broadcast_shapes(t.sizes(), input.sizes()) == input.sizes();
    } catch (const Error&) {
        ok = false;
    }
    CXR_CHECK(ok, op, ": ", what, " of shape ", shape_str(t.sizes()), " does not broadcast to the input's shape ",
              shape_str(input.sizes()));
}

// Gradient summed back to an operand's shape and cast to its dtype.
Tensor grad_to(const Tensor& g, const Tensor& operand) {
    return cast(sum_to(g, operand.sizes()), operand.dtype());
}

// The per-sample pieces shared by nll_loss and cross_entropy, in batched form ([N, C, d...] with target
// [N, d...]).
struct NllParts {
    Tensor loss;       // [N, d...]  −w[t_i] logp[i, t_i], 0 where ignored
    Tensor weight;     // [N, d...]  w[t_i], 0 where ignored (1 for non-ignored without class weights)
    Tensor keep;       // [N, d...]  1 where not ignored, 0 where ignored (log_probs' dtype)
};

NllParts nll_parts(const char* op, const Tensor& logp, const Tensor& target, const Tensor& weight,
                   int64_t ignore_index) {
    const int64_t classes = logp.size(1);
    Shape expect = {logp.size(0)};
    for (int64_t d = 2; d < logp.dim(); ++d) expect.push_back(logp.size(d));
    CXR_CHECK(target.sizes() == expect, op, ": target of shape ", shape_str(target.sizes()), " does not match ",
              shape_str(expect), " expected for input ", shape_str(logp.sizes()), " (class dim 1)");
    if (weight.defined()) {
        CXR_CHECK(weight.dim() == 1 && weight.size(0) == classes, op, ": weight must be [", classes,
                  "] (one per class), got ", shape_str(weight.sizes()));
        CXR_CHECK(is_floating(weight.dtype()), op, ": weight must be floating, got ", dtype_name(weight.dtype()));
        CXR_CHECK(weight.device() == logp.device(), op, ": weight on ", weight.device().str(), " but input on ",
                  logp.device().str());
    }
    Tensor t = cast(target, DType::i64);  // [N, d...]
    if (t.is_cpu()) {
        for (int64_t v : t.to_vector<int64_t>())
            CXR_CHECK(v == ignore_index || (v >= 0 && v < classes), op, ": target ", v, " is out of range for ",
                      classes, " classes (valid range [0, ", classes - 1, "], or ignore_index ", ignore_index, ")");
    }
    Tensor ignored = eq(t, full({}, (double)ignore_index, Options(DType::i64, t.device())));  // bool [N, d...]
    Tensor safe_t = where(ignored, zeros({}, Options(DType::i64, t.device())), t);             // [N, d...]
    NllParts p;
    p.keep = cast(logical_not(ignored), logp.dtype());
    // class dim last: [N, d..., C]
    Tensor logp_last = logp;
    if (logp.dim() > 2) {
        Shape perm = {0};
        for (int64_t d = 2; d < logp.dim(); ++d) perm.push_back(d);
        perm.push_back(1);
        logp_last = permute(logp, perm);
    }
    Tensor picked = gather(logp_last, -1, safe_t.unsqueeze(-1)).squeeze(-1);  // [N, d...]
    // ignored rows contribute exactly 0 (their picked value may be -inf, and -inf * 0 would be NaN)
    picked = where(ignored, zeros_like(picked), picked);
    if (weight.defined()) {
        Tensor wt = index_select(weight, 0, safe_t.reshape({safe_t.numel()})).reshape(safe_t.sizes());
        p.weight = mul(wt, p.keep);
    } else {
        p.weight = p.keep;
    }
    p.loss = neg(mul(picked, p.weight));
    return p;
}

struct Batched {
    Tensor input;   // [N, C, d...]
    Tensor target;  // [N, d...]
    bool unbatched = false;
};

Batched batch(const char* op, const Tensor& input, const Tensor& target) {
    CXR_CHECK(input.defined() && target.defined(), op, ": undefined input or target");
    CXR_CHECK(is_floating(input.dtype()), op, ": input must be floating, got ", dtype_name(input.dtype()));
    CXR_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, op,
              ": target must hold class indices (i64 or i32), got ", dtype_name(target.dtype()));
    CXR_CHECK(input.dim() >= 1, op, ": input must be [C], [N, C] or [N, C, d1, ...], got a 0-d tensor");
    CXR_CHECK(target.device() == input.device(), op, ": target on ", target.device().str(), " but input on ",
              input.device().str());
    Batched b{input, target, false};
    if (input.dim() == 1) {
        CXR_CHECK(target.dim() == 0, op, ": unbatched input ", shape_str(input.sizes()),
                  " needs a 0-d target, got ", shape_str(target.sizes()));
        b.input = input.unsqueeze(0);
        b.target = target.unsqueeze(0);
        b.unbatched = true;
    }
    return b;
}

Tensor reduce_weighted(const Tensor& loss, const Tensor& weight, Reduction r, bool unbatched) {
    switch (r) {
        case Reduction::none: return unbatched ? loss.squeeze(0) : loss;
        case Reduction::sum: return sum(loss);
        case Reduction::mean: return div(sum(loss), sum(weight));
    }
    CXR_FAIL("unknown reduction");
}

}  // namespace

// Every loss is an f32 op under autocast (tensor/autocast.h): reduced-precision inputs are cast up first.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    if (autocast_dtype()) {
        Tensor i = autocast_f32(input), t = autocast_f32(target);
        AutocastGuard off(std::nullopt);
        return mse_loss(i, t, reduction);
    }
    check_pair("mse_loss", input, target);
    return reduce_elementwise(square(sub(input, target)), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    if (autocast_dtype()) {
        Tensor i = autocast_f32(input), t = autocast_f32(target);
        AutocastGuard off(std::nullopt);
        return l1_loss(i, t, reduction);
    }
    check_pair("l1_loss", input, target);
    return reduce_elementwise(abs(sub(input, target)), reduction);
}

Tensor bce_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight, const Tensor& pos_weight,
                       Reduction reduction) {
    if (autocast_dtype()) {
        Tensor i = autocast_f32(input), t = autocast_f32(target);
        Tensor w = autocast_f32(weight), p = autocast_f32(pos_weight);
        AutocastGuard off(std::nullopt);
        return bce_with_logits(i, t, w, p, reduction);
    }
    check_pair("bce_with_logits", input, target);
    check_broadcasts_to("bce_with_logits", "weight", weight, input);
    check_broadcasts_to("bce_with_logits", "pos_weight", pos_weight, input);
    const Tensor x = input.detach(), y = target.detach();
    const Tensor w = weight.defined() ? weight.detach() : Tensor();
    const Tensor p = pos_weight.defined() ? pos_weight.detach() : Tensor();
    Tensor s, big_l, unweighted, loss;
    {
        NoGradGuard ng;
        // s = log(1 + e^(−|x|)) + max(−x, 0) = −log σ(x), without overflow
        s = add(log(add(exp(neg(abs(x))), 1.0)), relu(neg(x)));
        big_l = p.defined() ? add(mul(sub(p, 1.0), y), 1.0) : Tensor();  // 1 + (p − 1) y
        Tensor one_minus_y = add(neg(y), 1.0);
        unweighted = add(mul(one_minus_y, x), big_l.defined() ? mul(big_l, s) : s);
        loss = w.defined() ? mul(unweighted, w) : unweighted;
    }
    loss = record("bce_with_logits", loss, {input, target, weight, pos_weight},
                  [x, y, w, p, s, big_l, unweighted](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gw_scaled = w.defined() ? mul(g, w) : g;  // g · w
                      Tensor sig = sigmoid(x);
                      // dℓ/dx = w (L σ(x) − p y)
                      Tensor dx = big_l.defined() ? sub(mul(big_l, sig), mul(p, y)) : sub(sig, y);
                      // dℓ/dy = w (−x + (p − 1) s)
                      Tensor dy = p.defined() ? add(neg(x), mul(sub(p, 1.0), s)) : neg(x);
                      std::vector<Tensor> grads(4);
                      grads[0] = grad_to(mul(gw_scaled, dx), x);
                      grads[1] = grad_to(mul(gw_scaled, dy), y);
                      if (w.defined()) grads[2] = grad_to(mul(g, unweighted), w);
                      if (p.defined()) grads[3] = grad_to(mul(gw_scaled, mul(y, s)), p);
                      return grads;
                  });
    return reduce_elementwise(loss, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                Reduction reduction) {
    if (autocast_dtype()) {
        Tensor lp = autocast_f32(log_probs), w = autocast_f32(weight);
        AutocastGuard off(std::nullopt);
        return nll_loss(lp, target, w, ignore_index, reduction);
    }
    Batched b = batch("nll_loss", log_probs, target);
    NllParts parts = nll_parts("nll_loss", b.input, b.target, weight, ignore_index);
    return reduce_weighted(parts.loss, parts.weight, reduction, b.unbatched);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     double label_smoothing, Reduction reduction) {
    if (autocast_dtype()) {
        Tensor l = autocast_f32(logits), w = autocast_f32(weight);
        AutocastGuard off(std::nullopt);
        return cross_entropy(l, target, w, ignore_index, label_smoothing, reduction);
    }
    CXR_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
              "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
    Batched b = batch("cross_entropy", logits, target);
    Tensor logp = log_softmax(b.input, 1);  // [N, C, d...]
    NllParts parts = nll_parts("cross_entropy", logp, b.target, weight, ignore_index);
    if (label_smoothing == 0.0) return reduce_weighted(parts.loss, parts.weight, reduction, b.unbatched);
    const int64_t classes = logp.size(1);
    Tensor weighted_logp = logp;
    if (weight.defined()) {
        Shape wshape(logp.dim(), 1);
        wshape[1] = classes;
        weighted_logp = mul(logp, weight.reshape(wshape));  // [N, C, d...] · [1, C, 1...]
    }
    Tensor smooth = mul(neg(sum(weighted_logp, {1})), parts.keep);  // [N, d...], 0 where ignored
    const double eps = label_smoothing;
    Tensor combined = add(mul(parts.loss, 1.0 - eps), mul(smooth, eps / (double)classes));
    return reduce_weighted(combined, parts.weight, reduction, b.unbatched);
}

}  // namespace cxr::tensor
