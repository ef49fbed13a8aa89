// Shared vocabulary of the 2-D spatial op families (conv, pool, resize): Size2 = {height, width} pairs for
// kernel sizes, strides, paddings, dilations and output sizes, in PyTorch's (h, w) order.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cxr::tensor {

using Size2 = std::array<int64_t, 2>;  // {h, w}

inline std::string size2_str(const Size2& s) { return "(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ")"; }

}  // namespace cxr::tensor
