// Activation layers (torch.nn names; no parameters), each calling its op of tensor/ops/elementwise.h:
//   ReLU: max(x, 0)          LeakyReLU(a = 0.01): x ≥ 0 ? x : a·x      SiLU: x·σ(x)  (Hendrycks & Gimpel 2016)
//   GELU(approximate = none | tanh): x·Φ(x), or its tanh approximation   Sigmoid: σ(x) = 1/(1 + e^(−x))
//   Tanh: tanh(x)
#pragma once

#include <sstream>

#include "nn/module.h"
#include "tensor/ops/elementwise.h"

namespace cxr::nn {

class ReLU : public Module {
public:
    ReLU() : Module("ReLU") {}
    Tensor forward(const Tensor& x) override { return tensor::relu(x); }
};

class LeakyReLU : public Module {
public:
    explicit LeakyReLU(double negative_slope_ = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope_) {}
    Tensor forward(const Tensor& x) override { return tensor::leaky_relu(x, negative_slope); }
    std::string extra_repr() const override {
        std::ostringstream os;
        os << "negative_slope=" << negative_slope;
        return os.str();
    }
    double negative_slope;
};

class SiLU : public Module {
public:
    SiLU() : Module("SiLU") {}
    Tensor forward(const Tensor& x) override { return tensor::silu(x); }
};

class GELU : public Module {
public:
    explicit GELU(tensor::GeluApprox approximate_ = tensor::GeluApprox::none)
        : Module("GELU"), approximate(approximate_) {}
    Tensor forward(const Tensor& x) override { return tensor::gelu(x, approximate); }
    std::string extra_repr() const override {
        return approximate == tensor::GeluApprox::tanh ? "approximate='tanh'" : "approximate='none'";
    }
    tensor::GeluApprox approximate;
};

class Sigmoid : public Module {
public:
    Sigmoid() : Module("Sigmoid") {}
    Tensor forward(const Tensor& x) override { return tensor::sigmoid(x); }
};

class Tanh : public Module {
public:
    Tanh() : Module("Tanh") {}
    Tensor forward(const Tensor& x) override { return tensor::tanh(x); }
};

}  // namespace cxr::nn
