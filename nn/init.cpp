// Parameter initialisers (formulas in nn/init.h, after torch.nn.init). Values are drawn on the CPU from the
// Philox stream (tensor/ops/creation.h rand/randn; the same stream the CUDA backend implements) in f64 and copied
// into the parameter (any dtype, any device).
#include "nn/init.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"

namespace cxr::nn::init {

using tensor::DType;

Fans compute_fans(const Tensor& w) {
    CXR_CHECK(w.defined() && w.dim() >= 2, "fan in and fan out need a tensor with at least 2 dims, got ",
              w.defined() ? tensor::shape_str(w.sizes()) : std::string("undefined"));
    int64_t receptive = 1;
    for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
    return {w.size(1) * receptive, w.size(0) * receptive};
}

double calculate_gain(Nonlinearity nonlinearity, double param) {
    switch (nonlinearity) {
        case Nonlinearity::linear:
        case Nonlinearity::conv:
        case Nonlinearity::sigmoid: return 1.0;
        case Nonlinearity::tanh: return 5.0 / 3.0;
        case Nonlinearity::relu: return std::sqrt(2.0);
        case Nonlinearity::leaky_relu: {
            const double a = param < 0 ? 0.01 : param;
            return std::sqrt(2.0 / (1.0 + a * a));
        }
        case Nonlinearity::selu: return 0.75;
    }
    CXR_FAIL("calculate_gain: unknown nonlinearity");
}

namespace {
thread_local bool skip_random_init = false;
}

SkipRandomInit::SkipRandomInit() : prev_(skip_random_init) { skip_random_init = true; }
SkipRandomInit::~SkipRandomInit() { skip_random_init = prev_; }
bool SkipRandomInit::active() { return skip_random_init; }

Tensor& uniform_(Tensor& w, double lo, double hi, Generator* gen) {
    CXR_CHECK(w.defined() && tensor::is_floating(w.dtype()), "uniform_ needs a defined floating tensor");
    CXR_CHECK(lo <= hi, "uniform_: lo ", lo, " > hi ", hi);
    tensor::NoGradGuard ng;
    if (skip_random_init) return w.fill_(0.0), w;
    Tensor u = tensor::rand(w.sizes(), DType::f64, gen);  // U[0, 1)
    w.copy_(tensor::add(tensor::mul(u, hi - lo), lo));
    return w;
}

Tensor& normal_(Tensor& w, double mean, double std, Generator* gen) {
    CXR_CHECK(w.defined() && tensor::is_floating(w.dtype()), "normal_ needs a defined floating tensor");
    CXR_CHECK(std >= 0, "normal_: negative std ", std);
    tensor::NoGradGuard ng;
    if (skip_random_init) return w.fill_(0.0), w;
    Tensor z = tensor::randn(w.sizes(), DType::f64, gen);
    w.copy_(tensor::add(tensor::mul(z, std), mean));
    return w;
}

Tensor& constant_(Tensor& w, double value) {
    tensor::NoGradGuard ng;
    w.fill_(value);
    return w;
}
Tensor& zeros_(Tensor& w) { return constant_(w, 0.0); }
Tensor& ones_(Tensor& w) { return constant_(w, 1.0); }

static int64_t pick_fan(const Tensor& w, FanMode mode) {
    const Fans f = compute_fans(w);
    return mode == FanMode::fan_in ? f.fan_in : f.fan_out;
}

Tensor& kaiming_uniform_(Tensor& w, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
    if (w.defined() && w.numel() == 0) return w;  // nothing to draw (torch warns and returns)
    const int64_t fan = pick_fan(w, mode);
    CXR_CHECK(fan > 0, "kaiming_uniform_ on a tensor with a zero fan: ", tensor::shape_str(w.sizes()));
    const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / (double)fan);
    return uniform_(w, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& w, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
    if (w.defined() && w.numel() == 0) return w;
    const int64_t fan = pick_fan(w, mode);
    CXR_CHECK(fan > 0, "kaiming_normal_ on a tensor with a zero fan: ", tensor::shape_str(w.sizes()));
    return normal_(w, 0.0, calculate_gain(nonlinearity, a) / std::sqrt((double)fan), gen);
}

Tensor& xavier_uniform_(Tensor& w, double gain, Generator* gen) {
    const Fans f = compute_fans(w);
    const double a = gain * std::sqrt(6.0 / (double)(f.fan_in + f.fan_out));
    return uniform_(w, -a, a, gen);
}

Tensor& xavier_normal_(Tensor& w, double gain, Generator* gen) {
    const Fans f = compute_fans(w);
    return normal_(w, 0.0, gain * std::sqrt(2.0 / (double)(f.fan_in + f.fan_out)), gen);
}

void default_weight_bias_init(Tensor& weight, Tensor& bias, Generator* gen) {
    kaiming_uniform_(weight, std::sqrt(5.0), FanMode::fan_in, Nonlinearity::leaky_relu, gen);
    if (!bias.defined()) return;
    const int64_t fan_in = compute_fans(weight).fan_in;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt((double)fan_in) : 0.0;
    uniform_(bias, -bound, bound, gen);
}

}  // namespace cxr::nn::init
