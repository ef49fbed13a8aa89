// Pair2: a (height, width) argument of the 2-D layers that accepts one integer for both (kernel_size=3) or a
// pair ({3, 1}), as PyTorch's int-or-tuple arguments; converts to tensor::Size2.
#pragma once

#include <cstdint>

#include "tensor/ops/spatial.h"

namespace cxr::nn {

struct Pair2 {
    int64_t h = 0, w = 0;
    Pair2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit by design (Conv2d(3, 8, 3))
    Pair2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
    operator tensor::Size2() const { return {h, w}; }  // NOLINT
};

}  // namespace cxr::nn
