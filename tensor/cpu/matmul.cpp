// CPU kernel of the matmul family: a batched strided GEMM, out[i] = a[i] @ b[i] for [B, M, K] x [B, K, N].
// Transposed operands are passed to gemm<T> (tensor/cpu/gemm.h) as transpose flags, broadcast operands as batch
// stride 0, so no operand is copied here. The fast path is gemm_batched (blocked SGEMM for float); with
// set_cpu_reference_kernels(true) or CXR_CPU_REFERENCE=1 it runs gemm_reference (plain loops, double
// accumulation) instead.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/kernels.h"
#include "tensor/ops/matmul.h"

namespace cxr::tensor {

namespace {
std::atomic<bool>& reference_flag() {
    static std::atomic<bool> flag{[] {
        const char* v = std::getenv("CXR_CPU_REFERENCE");
        return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
    }()};
    return flag;
}
}  // namespace

void set_cpu_reference_kernels(bool on) { reference_flag().store(on); }
bool cpu_reference_kernels() { return reference_flag().load(); }

}  // namespace cxr::tensor

namespace cxr::tensor::cpu {

namespace {

template <class T>
void matmul_typed(const Tensor& a, const Tensor& b, const Tensor& out) {
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    // Row-major matrices have unit column stride; otherwise the matrix is stored transposed (column-major).
    const bool ta = a.stride(2) != 1, tb = b.stride(2) != 1;
    const int64_t lda = ta ? a.stride(2) : a.stride(1);
    const int64_t ldb = tb ? b.stride(2) : b.stride(1);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = out.data<T>();
    if (cpu_reference_kernels()) {
        for (int64_t i = 0; i < B; ++i)
            gemm_reference<T>(ta, tb, M, N, K, T(1), ap + i * a.stride(0), lda, bp + i * b.stride(0), ldb, T(0),
                              cp + i * M * N, N);
    } else {
        gemm_batched<T>(ta, tb, M, N, K, T(1), ap, lda, bp, ldb, T(0), cp, N, B, a.stride(0), b.stride(0), M * N);
    }
}

void matmul_kernel(const Tensor& a, const Tensor& b, const Tensor& out) {
    CXR_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3 && out.is_contiguous(),
              "matmul kernel: expected [B, M, K] x [B, K, N] -> contiguous [B, M, N], got ", shape_str(a.sizes()),
              " x ", shape_str(b.sizes()), " -> ", shape_str(out.sizes()));
    switch (a.dtype()) {
        case DType::f32: matmul_typed<float>(a, b, out); break;
        case DType::f64: matmul_typed<double>(a, b, out); break;
        default: CXR_FAIL("matmul kernel: dtype ", dtype_name(a.dtype()), " is not supported on the CPU (f32, f64)");
    }
}

}  // namespace

void register_matmul_kernels(KernelRegistry& r) {
    register_kernel<MatmulKernel>(r, "matmul", DeviceType::CPU, matmul_kernel);
}

}  // namespace cxr::tensor::cpu
