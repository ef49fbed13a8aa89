// CPU reference kernels for reductions over the last axis of a contiguous [outer, n] block. Floating sums
// accumulate in double (the reference); extremes propagate NaN; arg-extremes return the first index.
#include <cmath>
#include <limits>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/reduce.h"

namespace cxr::tensor::cpu {

namespace {

template <class T>
void reduce_rows(ReduceOp op, const T* x, int64_t outer, int64_t n, const Tensor& out) {
    using C = typename ComputeType<T>::type;
    for (int64_t r = 0; r < outer; ++r) {
        const T* row = x + r * n;
        switch (op) {
            case ReduceOp::sum: {
                if constexpr (std::is_floating_point_v<C>) {
                    double acc = 0.0;
                    for (int64_t i = 0; i < n; ++i) acc += (double)C(row[i]);
                    out.data<T>()[r] = T(C(acc));
                } else {
                    int64_t acc = 0;
                    for (int64_t i = 0; i < n; ++i) acc += (int64_t)row[i];
                    out.data<int64_t>()[r] = acc;
                }
                break;
            }
            case ReduceOp::amax:
            case ReduceOp::amin:
            case ReduceOp::argmax:
            case ReduceOp::argmin: {
                const bool want_max = op == ReduceOp::amax || op == ReduceOp::argmax;
                CXR_CHECK(n > 0, "max/min over an empty dimension");
                int64_t best = 0;
                C bv = C(row[0]);
                for (int64_t i = 1; i < n && bv == bv; ++i) {  // stops at the first NaN
                    C v = C(row[i]);
                    if (v != v || (want_max ? v > bv : v < bv)) {
                        bv = v;
                        best = i;
                    }
                }
                if (op == ReduceOp::amax || op == ReduceOp::amin)
                    out.data<T>()[r] = row[best];
                else
                    out.data<int64_t>()[r] = best;
                break;
            }
        }
    }
}

void reduce_kernel(ReduceOp op, const Tensor& x, const Tensor& out) {
    CXR_DISPATCH_ALL(x.dtype(), "reduce", {
        reduce_rows<scalar_t>(op, x.data<scalar_t>(), x.size(0), x.size(1), out);
    });
}

}  // namespace

void register_reduce_kernels(KernelRegistry& r) {
    register_kernel<ReduceKernel>(r, "reduce", DeviceType::CPU, reduce_kernel);
}

}  // namespace cxr::tensor::cpu
