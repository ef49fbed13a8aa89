// Strided N-dimensional loops for CPU kernels. Operands are views with element strides (0 for broadcast dims)
// over a common shape; the loop walks the shape in row-major order and hands the body one element offset per
// operand. Dimensions that can be merged (contiguous in every operand) are merged first, so a contiguous tensor
// becomes a single flat loop that the compiler vectorises.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::tensor::cpu {

template <size_t N>
struct LoopPlan {
    std::vector<int64_t> sizes;                       // merged shape
    std::array<std::vector<int64_t>, N> strides;      // per operand, per merged dim
};

template <size_t N>
LoopPlan<N> plan_loop(const Shape& sizes, const std::array<Shape, N>& strides) {
    LoopPlan<N> plan;
    // Drop size-1 dims, then merge dim i into i+1 when stride[i] == stride[i+1] * size[i+1] for every operand.
    for (size_t d = 0; d < sizes.size(); ++d) {
        if (sizes[d] == 1) continue;
        if (!plan.sizes.empty()) {
            bool mergeable = true;
            for (size_t k = 0; k < N; ++k)
                if (plan.strides[k].back() != strides[k][d] * sizes[d]) mergeable = false;
            if (mergeable) {
                plan.sizes.back() *= sizes[d];
                for (size_t k = 0; k < N; ++k) plan.strides[k].back() = strides[k][d];
                continue;
            }
        }
        plan.sizes.push_back(sizes[d]);
        for (size_t k = 0; k < N; ++k) plan.strides[k].push_back(strides[k][d]);
    }
    if (plan.sizes.empty()) {  // a single element
        plan.sizes.push_back(1);
        for (size_t k = 0; k < N; ++k) plan.strides[k].push_back(0);
    }
    return plan;
}

// Calls body(offsets) for every element, offsets[k] being the element offset of operand k.
template <size_t N, class Body>
void strided_loop(const Shape& sizes, const std::array<Shape, N>& strides, Body&& body) {
    for (int64_t s : sizes)
        if (s == 0) return;
    LoopPlan<N> plan = plan_loop<N>(sizes, strides);
    const int64_t nd = (int64_t)plan.sizes.size();
    const int64_t inner = plan.sizes[nd - 1];
    std::array<int64_t, N> inner_stride;
    for (size_t k = 0; k < N; ++k) inner_stride[k] = plan.strides[k][nd - 1];
    std::vector<int64_t> counter(nd, 0);
    std::array<int64_t, N> base{};
    while (true) {
        std::array<int64_t, N> off = base;
        for (int64_t i = 0; i < inner; ++i) {
            body(off);
            for (size_t k = 0; k < N; ++k) off[k] += inner_stride[k];
        }
        // advance the outer counter
        int64_t d = nd - 2;
        for (; d >= 0; --d) {
            ++counter[d];
            for (size_t k = 0; k < N; ++k) base[k] += plan.strides[k][d];
            if (counter[d] < plan.sizes[d]) break;
            for (size_t k = 0; k < N; ++k) base[k] -= plan.strides[k][d] * plan.sizes[d];
            counter[d] = 0;
        }
        if (d < 0) break;
    }
}

}  // namespace cxr::tensor::cpu
