// CUDA kernels of the matmul family ("matmul", MatmulKernel of tensor/ops/matmul.h): a batched strided GEMM
// out[b] = a[b] @ b[b] for a [B, M, K], b [B, K, N] (batch stride 0 = broadcast; each matrix row-major or
// column-major, see the kernel signature) and out contiguous [B, M, N].
//
// Two paths, chosen at EACH call from the environment (so a test can setenv() between calls):
//   - default: cuBLAS cublasGemmStridedBatchedEx. cuBLAS is column-major, so the row-major product C = A B is
//     computed as Cᵀ = Bᵀ Aᵀ: a row-major operand with leading dim ld is the column-major transpose with the same
//     ld (op N), a column-major operand is passed with op T. f32 uses CUBLAS_COMPUTE_32F (exact fp32 FMA) unless
//     CXR_TF32=1 selects CUBLAS_COMPUTE_32F_FAST_TF32; f64 uses CUBLAS_COMPUTE_64F; f16/bf16 use f32 compute.
//     Batches run in chunks of at most 65535.
//   - CXR_CUBLAS=OFF (or 0): the hand-written tiled GEMM below, gemm_strided_batched<T>: C(b, m, n) =
//     alpha · Σ_k A(b, m, k) B(b, k, n) + beta · C(b, m, n) over arbitrary element strides. One 256-thread block
//     computes a 64x64 tile of C; the K loop walks 16-wide slabs staged in shared memory (As[16][64],
//     Bs[16][64]); each thread accumulates a 4x4 micro-tile in registers (float for f32/f16/bf16, double for
//     f64) in ascending k order, so results are deterministic. grid = (⌈N/64⌉, ⌈M/64⌉, batch chunk).
// The tiled GEMM is also the GEMM of the im2col convolution fallback (tensor/cuda/conv.cu declares it).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/ops/matmul.h"

namespace cxr::tensor::cuda {

// Shared with tensor/cuda/conv.cu (declared there too): the switches and the tiled GEMM.
bool cublas_enabled();  // CXR_CUBLAS is not OFF
template <class T>
void gemm_strided_batched(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const T* A, int64_t sAb,
                          int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, double beta,
                          T* C, int64_t sCb, int64_t sCm, int64_t sCn);

// True unless the environment variable `name` is "OFF", "off", "0" or "false" (read at each call).
bool env_switch_on(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return true;
    return !(std::strcmp(v, "OFF") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "0") == 0 ||
             std::strcmp(v, "false") == 0);
}

namespace {

constexpr int kTile = 64, kSlab = 16, kThreads = 256;

template <class T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <class T>
__device__ inline typename Acc<T>::type to_acc(T v) { return static_cast<typename Acc<T>::type>(static_cast<typename ComputeType<T>::type>(v)); }

template <class T>
__global__ void tiled_gemm_kernel(int64_t M, int64_t N, int64_t K, typename Acc<T>::type alpha, const T* A,
                                  int64_t sAb, int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk,
                                  int64_t sBn, typename Acc<T>::type beta, T* C, int64_t sCb, int64_t sCm,
                                  int64_t sCn, int64_t batch0) {
    using AT = typename Acc<T>::type;
    __shared__ AT As[kSlab][kTile];  // As[k][m]
    __shared__ AT Bs[kSlab][kTile];  // Bs[k][n]
    const int64_t b = batch0 + blockIdx.z;
    const int64_t m0 = (int64_t)blockIdx.y * kTile, n0 = (int64_t)blockIdx.x * kTile;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;  // micro-tile (ty*4.., tx*4..)
    A += b * sAb;
    B += b * sBb;
    C += b * sCb;
    AT acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = AT(0);
    for (int64_t k0 = 0; k0 < K; k0 += kSlab) {
        // 64*16 = 1024 elements of each slab, 4 per thread.
        for (int e = threadIdx.x; e < kSlab * kTile; e += kThreads) {
            const int kk = e / kTile, mm = e % kTile;
            const int64_t gk = k0 + kk, gm = m0 + mm, gn = n0 + mm;
            As[kk][mm] = (gk < K && gm < M) ? to_acc(A[gm * sAm + gk * sAk]) : AT(0);
            Bs[kk][mm] = (gk < K && gn < N) ? to_acc(B[gk * sBk + gn * sBn]) : AT(0);
        }
        __syncthreads();
        for (int kk = 0; kk < kSlab; ++kk) {
            AT av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
            for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const int64_t gm = m0 + ty * 4 + i;
        if (gm >= M) continue;
        for (int j = 0; j < 4; ++j) {
            const int64_t gn = n0 + tx * 4 + j;
            if (gn >= N) continue;
            T* c = C + gm * sCm + gn * sCn;
            AT v = alpha * acc[i][j];
            if (beta != AT(0)) v += beta * to_acc(*c);
            *c = T(static_cast<typename ComputeType<T>::type>(v));
        }
    }
}

// ---- cuBLAS ----
cublasHandle_t cublas_handle() {
    static std::mutex mu;
    static std::map<int, cublasHandle_t> handles;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(dev);
    if (it != handles.end()) return it->second;
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) CXR_FAIL("cublasCreate failed (status ", (int)st, ")");
    handles[dev] = h;
    return h;
}

bool tf32_enabled() {
    const char* v = std::getenv("CXR_TF32");
    return v && std::strcmp(v, "1") == 0;
}

void cublas_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    const bool ta = a.stride(2) != 1, tb = b.stride(2) != 1;  // column-major operands
    const int64_t lda = ta ? a.stride(2) : a.stride(1), ldb = tb ? b.stride(2) : b.stride(1);
    CXR_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX,
              "matmul (cuBLAS): sizes exceed 32-bit limits");
    cudaDataType_t dt;
    cublasComputeType_t ct;
    float alpha_f = 1.0f, beta_f = 0.0f;
    double alpha_d = 1.0, beta_d = 0.0;
    const void* alpha = &alpha_f;
    const void* beta = &beta_f;
    switch (a.dtype()) {
        case DType::f32: dt = CUDA_R_32F; ct = tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F; break;
        case DType::f64: dt = CUDA_R_64F; ct = CUBLAS_COMPUTE_64F; alpha = &alpha_d; beta = &beta_d; break;
        case DType::f16: dt = CUDA_R_16F; ct = CUBLAS_COMPUTE_32F; break;
        case DType::bf16: dt = CUDA_R_16BF; ct = CUBLAS_COMPUTE_32F; break;
        default: CXR_FAIL("matmul kernel: dtype ", dtype_name(a.dtype()), " is not supported on CUDA");
    }
    cublasHandle_t h = cublas_handle();
    const size_t es = dtype_size(a.dtype());
    // Column-major view: Cᵀ [N, M] = op(Bᵀ) [N, K] · op(Aᵀ) [K, M].
    const cublasOperation_t opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    for (int64_t b0 = 0; b0 < B; b0 += 65535) {
        const int64_t nb = std::min<int64_t>(65535, B - b0);
        const char* ap = static_cast<const char*>(a.raw_data()) + b0 * a.stride(0) * es;
        const char* bp = static_cast<const char*>(b.raw_data()) + b0 * b.stride(0) * es;
        char* cp = static_cast<char*>(out.raw_data()) + b0 * M * N * es;
        const cublasStatus_t st = cublasGemmStridedBatchedEx(
            h, opB, opA, (int)N, (int)M, (int)K, alpha, bp, dt, (int)ldb, b.stride(0), ap, dt, (int)lda, a.stride(0),
            beta, cp, dt, (int)N, M * N, (int)nb, ct, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            CXR_FAIL("matmul: cublasGemmStridedBatchedEx failed (status ", (int)st, ") for [", B, ", ", M, ", ", K,
                     "] x [", B, ", ", K, ", ", N, "] ", dtype_name(a.dtype()));
        after_launch("cublasGemmStridedBatchedEx");
    }
}

void tiled_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    CXR_DISPATCH_FLOAT(a.dtype(), "matmul", {
        gemm_strided_batched<scalar_t>(B, M, N, K, 1.0, a.data<scalar_t>(), a.stride(0), a.stride(1), a.stride(2),
                                       b.data<scalar_t>(), b.stride(0), b.stride(1), b.stride(2), 0.0,
                                       out.data<scalar_t>(), M * N, N, 1);
    });
}

void matmul_kernel(const Tensor& a, const Tensor& b, const Tensor& out) {
    CXR_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3 && out.is_contiguous(),
              "matmul kernel: expected [B, M, K] x [B, K, N] -> contiguous [B, M, N], got ", shape_str(a.sizes()),
              " x ", shape_str(b.sizes()), " -> ", shape_str(out.sizes()));
    CXR_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "matmul kernel: operands of different dtypes");
    if (cublas_enabled())
        cublas_matmul(a, b, out);
    else
        tiled_matmul(a, b, out);
}

}  // namespace

bool cublas_enabled() { return env_switch_on("CXR_CUBLAS"); }

template <class T>
void gemm_strided_batched(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const T* A, int64_t sAb,
                          int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, double beta,
                          T* C, int64_t sCb, int64_t sCm, int64_t sCn) {
    if (batch == 0 || M == 0 || N == 0) return;
    using AT = typename Acc<T>::type;
    const dim3 grid((unsigned)((N + kTile - 1) / kTile), (unsigned)((M + kTile - 1) / kTile), 1);
    CXR_CHECK(grid.y <= 65535, "tiled GEMM: M = ", M, " is too large");
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
        const dim3 g(grid.x, grid.y, (unsigned)std::min<int64_t>(65535, batch - b0));
        tiled_gemm_kernel<T><<<g, kThreads>>>(M, N, K, AT(alpha), A, sAb, sAm, sAk, B, sBb, sBk, sBn, AT(beta), C,
                                              sCb, sCm, sCn, b0);
        after_launch("tiled_gemm_kernel");
    }
}

#define CXR_INSTANTIATE_GEMM(T)                                                                                   \
    template void gemm_strided_batched<T>(int64_t, int64_t, int64_t, int64_t, double, const T*, int64_t, int64_t, \
                                          int64_t, const T*, int64_t, int64_t, int64_t, double, T*, int64_t,     \
                                          int64_t, int64_t);
CXR_INSTANTIATE_GEMM(float)
CXR_INSTANTIATE_GEMM(double)
CXR_INSTANTIATE_GEMM(Half)
CXR_INSTANTIATE_GEMM(BFloat16)
#undef CXR_INSTANTIATE_GEMM

void register_matmul_kernels(KernelRegistry& r) {
    register_kernel<MatmulKernel>(r, "matmul", DeviceType::CUDA, matmul_kernel);
}

}  // namespace cxr::tensor::cuda
