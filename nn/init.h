// Parameter initialisers with the formulas of torch.nn.init, drawn from cxr's Philox generator
// (tensor/generator.h; the default generator when `gen` is null). The distributions match PyTorch's; the values
// do not (different random streams, by design). Each fills `w` in place, outside autograd, and returns it.
//
//   fans (torch's _calculate_fan_in_and_fan_out): w has >= 2 dims, receptive = Π sizes[2:],
//        fan_in = sizes[1]·receptive, fan_out = sizes[0]·receptive
//        (so a ConvTranspose2d weight [C_in, C_out/G, kH, kW] has fan_in = C_out/G·kH·kW, as in torch).
//   gain (calculate_gain): linear, conv*, sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu(a): √(2/(1 + a²));
//        selu: 3/4.
//   kaiming_uniform (He et al. 2015): U(−b, b), b = gain·√(3/fan)       fan = fan_in or fan_out (mode)
//   kaiming_normal:                   N(0, std²), std = gain/√fan
//   xavier_uniform (Glorot & Bengio 2010): U(−a, a), a = gain·√(6/(fan_in + fan_out))
//   xavier_normal:                    N(0, std²), std = gain·√(2/(fan_in + fan_out))
// The PyTorch default for Linear and Conv weights is kaiming_uniform with a = √5 and leaky_relu, which gives
// b = √(2/6)·√(3/fan_in) = 1/√fan_in (torch.nn.Linear.reset_parameters).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::nn::init {

using tensor::Generator;
using tensor::Tensor;

struct Fans {
    int64_t fan_in = 0;
    int64_t fan_out = 0;
};
Fans compute_fans(const Tensor& w);

enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };
enum class FanMode { fan_in, fan_out };

// `param` is leaky_relu's negative slope (0.01 when negative, as torch's default when param is None).
double calculate_gain(Nonlinearity nonlinearity, double param = -1.0);

Tensor& uniform_(Tensor& w, double lo, double hi, Generator* gen = nullptr);
Tensor& normal_(Tensor& w, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& constant_(Tensor& w, double value);
Tensor& zeros_(Tensor& w);
Tensor& ones_(Tensor& w);
Tensor& kaiming_uniform_(Tensor& w, double a = 0.0, FanMode mode = FanMode::fan_in,
                         Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* gen = nullptr);
Tensor& kaiming_normal_(Tensor& w, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* gen = nullptr);
Tensor& xavier_uniform_(Tensor& w, double gain = 1.0, Generator* gen = nullptr);
Tensor& xavier_normal_(Tensor& w, double gain = 1.0, Generator* gen = nullptr);

// While a SkipRandomInit exists on this thread, uniform_ and normal_ (and so every random initialiser above) fill
// their tensor with zeros instead of drawing, and leave the generator untouched: for building a model whose every
// parameter a strict load_state_dict overwrites next (a pretrained checkpoint), where drawing ~1e9 numbers would
// cost tens of seconds for nothing. torch's analogue is building under init_empty_weights / skip_init.
class SkipRandomInit {
public:
    SkipRandomInit();
    ~SkipRandomInit();
    SkipRandomInit(const SkipRandomInit&) = delete;
    SkipRandomInit& operator=(const SkipRandomInit&) = delete;
    static bool active();

private:
    bool prev_;
};

// PyTorch's default Linear/Conv initialisation: weight kaiming_uniform(a = √5) → U(−1/√fan_in, 1/√fan_in),
// and bias (when defined) U(−1/√fan_in, 1/√fan_in) with fan_in from the weight (0 when fan_in is 0).
void default_weight_bias_init(Tensor& weight, Tensor& bias, Generator* gen = nullptr);

}  // namespace cxr::nn::init
