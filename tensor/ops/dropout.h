// Dropout (Srivastava et al. 2014) in its "inverted" form, as torch.nn.functional.dropout:
//   training:  y = x ⊙ m / (1 − p),  m_i ~ Bernoulli(1 − p) drawn from the Philox stream of `gen`
//              (the default generator when null);  dy/dx = m / (1 − p)
//   p == 1:    y = 0 (zero gradient);   !training or p == 0:  y = x (the input itself, nothing drawn).
// The mask is exactly bernoulli(x.sizes(), 1 − p, gen) of tensor/ops/creation.h (a uniform f32 per element,
// kept when u < 1 − p), so a (seed, offset) gives the same mask on every device. It is not PyTorch's stream,
// so dropout has no PyTorch fixture.
#pragma once

#include "tensor/tensor.h"

namespace cxr::tensor {

class Generator;  // tensor/generator.h

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace cxr::tensor
