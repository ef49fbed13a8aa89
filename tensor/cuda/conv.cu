// CUDA kernels of the conv family: "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"
// (signatures and math in tensor/ops/conv.h and tensor/cpu/conv2d.h; groups, stride, padding and dilation as the
// CPU). All tensors are contiguous NCHW; outputs are overwritten.
//
// Two paths, chosen at EACH call from the environment (a test can setenv() between calls):
//   - default: cuDNN (legacy convolution API: cudnnConvolutionForward / BackwardData / BackwardFilter, with
//     cudnnSetConvolutionGroupCount for groups). The algorithm of each (direction, dtype, shape, TF32 setting) is
//     chosen ONCE with cudnnGetConvolution*Algorithm_v7 — the first algorithm in cuDNN's ranking that succeeds
//     and is CUDNN_DETERMINISTIC, run with the math type it was ranked under — and cached in a map together with
//     its descriptors; a shape with no deterministic algorithm takes the im2col path below. The workspace is an u8
//     tensor, i.e. memory of the backend allocator. f32 runs with CUDNN_FMA_MATH (no TF32) unless CXR_TF32=1;
//     f64 computes in double; f16/bf16 in float. The bias is added by a separate grid-stride kernel.
//   - CXR_CUDNN=OFF (or 0): im2col + the tiled GEMM of tensor/cuda/matmul.cu, one image at a time:
//       col [G·Cg·kH·kW, HWo],  col[(c·kH + kh)·kW + kw, oh·W_out + ow] = x[n, c, ih, iw] (0 in the padding)
//       forward          y_ng [Og, HWo]      = w_g [Og, CKK] · col_g [CKK, HWo]            (batched over g)
//       backward input   col_g [CKK, HWo]    = w_gᵀ · grad_y_ng, then col2im in GATHER form: each input
//                        pixel sums the col entries that read it in fixed (c, kh, kw) order — no atomics
//       backward weight  grad_w_g [Og, CKK] (+)= grad_y_ng · col_gᵀ, images accumulated in ascending n (beta = 1
//                        after the first), so the result is deterministic.
//     (CKK = Cg·kH·kW, HWo = H_out·W_out.)
#include <cudnn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_common.cuh"
#include "tensor/cuda/stream.h"
#include "tensor/ops/conv.h"

namespace cxr::tensor::cuda {

// Defined in tensor/cuda/matmul.cu.
bool env_switch_on(const char* name);
template <class T>
void gemm_strided_batched(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const T* A, int64_t sAb,
                          int64_t sAm, int64_t sAk, const T* B, int64_t sBb, int64_t sBk, int64_t sBn, double beta,
                          T* C, int64_t sCb, int64_t sCm, int64_t sCn);

bool cudnn_enabled() { return env_switch_on("CXR_CUDNN"); }

namespace {

template <class T> struct ConvAcc { using type = float; };
template <> struct ConvAcc<double> { using type = double; };
template <class T>
__device__ inline typename ConvAcc<T>::type cacc(T v) {
    return static_cast<typename ConvAcc<T>::type>(static_cast<typename ComputeType<T>::type>(v));
}
template <class T, class A>
__device__ inline T from_acc(A v) { return T(static_cast<typename ComputeType<T>::type>(v)); }

// ---- shared small kernels ----
template <class T>
__global__ void add_bias_kernel(T* y, const T* bias, int64_t C, int64_t HW, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = (i / HW) % C;
        y[i] = from_acc<T>(cacc(y[i]) + cacc(bias[c]));
    }
}

template <class T>
void add_bias(const Conv2dParams& p, const Tensor& bias, const Tensor& y) {
    const int64_t n = y.numel();
    if (n == 0) return;
    add_bias_kernel<T><<<grid_blocks(n), 256>>>(y.data<T>(), bias.data<T>(), p.C_out, p.H_out() * p.W_out(), n);
    after_launch("conv2d add_bias_kernel");
}

// col [C_in·kH·kW, HWo] of one image x_n [C_in, H, W].
template <class T>
__global__ void im2col_kernel(Conv2dParams p, int64_t Ho, int64_t Wo, const T* x, T* col, int64_t n) {
    const int64_t HWo = Ho * Wo;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / HWo, q = e % HWo;
        const int64_t c = r / (p.kH * p.kW), kh = (r / p.kW) % p.kH, kw = r % p.kW;
        const int64_t ih = (q / Wo) * p.stride_h - p.pad_h + kh * p.dil_h;
        const int64_t iw = (q % Wo) * p.stride_w - p.pad_w + kw * p.dil_w;
        col[e] = (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W) ? x[(c * p.H + ih) * p.W + iw] : T(0.0f);
    }
}

// gx_n [C_in, H, W] = col2im(col): gather form, fixed (kh, kw) order, accumulation in float/double.
template <class T>
__global__ void col2im_kernel(Conv2dParams p, int64_t Ho, int64_t Wo, const T* col, T* gx, int64_t n) {
    using A = typename ConvAcc<T>::type;
    const int64_t HWo = Ho * Wo;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = e / (p.H * p.W), ih = (e / p.W) % p.H, iw = e % p.W;
        A acc = A(0);
        for (int64_t kh = 0; kh < p.kH; ++kh) {
            const int64_t th = ih + p.pad_h - kh * p.dil_h;
            if (th < 0 || th % p.stride_h != 0) continue;
            const int64_t oh = th / p.stride_h;
            if (oh >= Ho) continue;
            for (int64_t kw = 0; kw < p.kW; ++kw) {
                const int64_t tw = iw + p.pad_w - kw * p.dil_w;
                if (tw < 0 || tw % p.stride_w != 0) continue;
                const int64_t ow = tw / p.stride_w;
                if (ow >= Wo) continue;
                acc += cacc(col[((c * p.kH + kh) * p.kW + kw) * HWo + oh * Wo + ow]);
            }
        }
        gx[e] = from_acc<T>(acc);
    }
}

// ---- im2col + GEMM fallback ----
template <class T>
void im2col(const Conv2dParams& p, const T* x_n, T* col) {
    const int64_t Ho = p.H_out(), Wo = p.W_out(), n = p.C_in * p.kH * p.kW * Ho * Wo;
    im2col_kernel<T><<<grid_blocks(n), 256>>>(p, Ho, Wo, x_n, col, n);
    after_launch("conv2d im2col_kernel");
}

template <class T>
void fallback_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
    const int64_t G = p.groups, Og = p.C_out / G, CKK = (p.C_in / G) * p.kH * p.kW, HWo = p.H_out() * p.W_out();
    Tensor col = Tensor::empty({G * CKK, HWo}, x.dtype(), x.device());
    for (int64_t n = 0; n < p.N; ++n) {
        im2col<T>(p, x.data<T>() + n * p.C_in * p.H * p.W, col.data<T>());
        gemm_strided_batched<T>(G, Og, HWo, CKK, 1.0, w.data<T>(), Og * CKK, CKK, 1, col.data<T>(), CKK * HWo, HWo,
                                1, 0.0, y.data<T>() + n * p.C_out * HWo, Og * HWo, HWo, 1);
    }
    if (bias.defined()) add_bias<T>(p, bias, y);
}

template <class T>
void fallback_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w, const Tensor& gx) {
    const int64_t G = p.groups, Og = p.C_out / G, CKK = (p.C_in / G) * p.kH * p.kW, HWo = p.H_out() * p.W_out();
    Tensor col = Tensor::empty({G * CKK, HWo}, gy.dtype(), gy.device());
    const int64_t n_in = p.C_in * p.H * p.W;
    for (int64_t n = 0; n < p.N; ++n) {
        // col_g [CKK, HWo] = w_gᵀ [CKK, Og] · gy_ng [Og, HWo]
        gemm_strided_batched<T>(G, CKK, HWo, Og, 1.0, w.data<T>(), Og * CKK, 1, CKK,
                                gy.data<T>() + n * p.C_out * HWo, Og * HWo, HWo, 1, 0.0, col.data<T>(), CKK * HWo,
                                HWo, 1);
        col2im_kernel<T><<<grid_blocks(n_in), 256>>>(p, p.H_out(), p.W_out(), col.data<T>(), gx.data<T>() + n * n_in,
                                                   n_in);
        after_launch("conv2d col2im_kernel");
    }
}

template <class T>
void fallback_backward_weight(const Conv2dParams& p, const Tensor& x, const Tensor& gy, const Tensor& gw) {
    const int64_t G = p.groups, Og = p.C_out / G, CKK = (p.C_in / G) * p.kH * p.kW, HWo = p.H_out() * p.W_out();
    Tensor col = Tensor::empty({G * CKK, HWo}, x.dtype(), x.device());
    for (int64_t n = 0; n < p.N; ++n) {
        im2col<T>(p, x.data<T>() + n * p.C_in * p.H * p.W, col.data<T>());
        // gw_g [Og, CKK] (+)= gy_ng [Og, HWo] · col_gᵀ [HWo, CKK]
        gemm_strided_batched<T>(G, Og, CKK, HWo, 1.0, gy.data<T>() + n * p.C_out * HWo, Og * HWo, HWo, 1,
                                col.data<T>(), CKK * HWo, 1, HWo, n == 0 ? 0.0 : 1.0, gw.data<T>(), Og * CKK, CKK, 1);
    }
}

// ---- cuDNN ----
void cudnn_check(cudnnStatus_t st, const char* what) {
    if (st != CUDNN_STATUS_SUCCESS) CXR_FAIL("cuDNN error in ", what, ": ", cudnnGetErrorString(st));
}

cudnnHandle_t cudnn_handle() {
    static std::mutex mu;
    static std::map<int, cudnnHandle_t> handles;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(dev);
    if (it != handles.end()) return it->second;
    cudnnHandle_t h = nullptr;
    cudnn_check(cudnnCreate(&h), "cudnnCreate");
    handles[dev] = h;
    return h;
}

bool conv_tf32() {
    const char* v = std::getenv("CXR_TF32");
    return v && std::strcmp(v, "1") == 0;
}

enum class Dir { forward, backward_input, backward_weight };

// Descriptors and the chosen algorithm of one (direction, device, dtype, shape, TF32) key; created once.
struct ConvPlan {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    int algo = 0;
    size_t workspace = 0;
    bool use_fallback = false;  // cuDNN offers no deterministic algorithm for this shape: im2col instead
};

using PlanKey = std::tuple<int, int, int, bool, std::vector<int64_t>>;

cudnnDataType_t cudnn_dtype(DType d) {
    switch (d) {
        case DType::f32: return CUDNN_DATA_FLOAT;
        case DType::f64: return CUDNN_DATA_DOUBLE;
        case DType::f16: return CUDNN_DATA_HALF;
        case DType::bf16: return CUDNN_DATA_BFLOAT16;
        default: CXR_FAIL("conv2d: dtype ", dtype_name(d), " is not supported on CUDA (f32, f64, f16, bf16)");
    }
}

int to_int(int64_t v, const char* what) {
    CXR_CHECK(v <= INT32_MAX, "conv2d (cuDNN): ", what, " = ", v, " exceeds 32 bits");
    return (int)v;
}

// The first deterministic algorithm of the heuristics' list, with the math type it was ranked under (as PyTorch
// sets it); false when there is none (the plan then uses the im2col path, which is deterministic).
template <class Perf>
bool pick(const Perf* perf, int returned, ConvPlan& plan) {
    for (int i = 0; i < returned; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC) {
            plan.algo = (int)perf[i].algo;
            cudnn_check(cudnnSetConvolutionMathType(plan.conv, perf[i].mathType), "cudnnSetConvolutionMathType");
            return true;
        }
    return false;
}

void destroy_plan(ConvPlan& plan) {
    if (plan.x) cudnnDestroyTensorDescriptor(plan.x);
    if (plan.y) cudnnDestroyTensorDescriptor(plan.y);
    if (plan.w) cudnnDestroyFilterDescriptor(plan.w);
    if (plan.conv) cudnnDestroyConvolutionDescriptor(plan.conv);
    plan = ConvPlan{};
}

const ConvPlan& get_plan(Dir dir, const Conv2dParams& p, DType dt) {
    static std::mutex mu;
    static std::map<PlanKey, ConvPlan> plans;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    const bool tf32 = conv_tf32();
    PlanKey key{(int)dir, dev, (int)dt, tf32,
                {p.N, p.C_in, p.H, p.W, p.C_out, p.kH, p.kW, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h,
                 p.dil_w, p.groups}};
    std::lock_guard<std::mutex> lock(mu);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    ConvPlan plan;
    try {  // a failure destroys the descriptors made so far; nothing is cached then
    const cudnnDataType_t cdt = cudnn_dtype(dt);
    cudnn_check(cudnnCreateTensorDescriptor(&plan.x), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateTensorDescriptor(&plan.y), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateFilterDescriptor(&plan.w), "cudnnCreateFilterDescriptor");
    cudnn_check(cudnnCreateConvolutionDescriptor(&plan.conv), "cudnnCreateConvolutionDescriptor");
    cudnn_check(cudnnSetTensor4dDescriptor(plan.x, CUDNN_TENSOR_NCHW, cdt, to_int(p.N, "N"), to_int(p.C_in, "C_in"),
                                           to_int(p.H, "H"), to_int(p.W, "W")),
                "cudnnSetTensor4dDescriptor(x)");
    cudnn_check(cudnnSetTensor4dDescriptor(plan.y, CUDNN_TENSOR_NCHW, cdt, to_int(p.N, "N"), to_int(p.C_out, "C_out"),
                                           to_int(p.H_out(), "H_out"), to_int(p.W_out(), "W_out")),
                "cudnnSetTensor4dDescriptor(y)");
    cudnn_check(cudnnSetFilter4dDescriptor(plan.w, cdt, CUDNN_TENSOR_NCHW, to_int(p.C_out, "C_out"),
                                           to_int(p.C_in / p.groups, "C_in/groups"), to_int(p.kH, "kH"),
                                           to_int(p.kW, "kW")),
                "cudnnSetFilter4dDescriptor");
    cudnn_check(cudnnSetConvolution2dDescriptor(plan.conv, to_int(p.pad_h, "pad"), to_int(p.pad_w, "pad"),
                                                to_int(p.stride_h, "stride"), to_int(p.stride_w, "stride"),
                                                to_int(p.dil_h, "dilation"), to_int(p.dil_w, "dilation"),
                                                CUDNN_CROSS_CORRELATION,
                                                dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    cudnn_check(cudnnSetConvolutionGroupCount(plan.conv, to_int(p.groups, "groups")), "cudnnSetConvolutionGroupCount");
    const cudnnMathType_t math = (dt == DType::f16 || dt == DType::bf16) ? CUDNN_TENSOR_OP_MATH
                                 : (dt == DType::f32 && tf32)          ? CUDNN_DEFAULT_MATH
                                                                       : CUDNN_FMA_MATH;
    cudnn_check(cudnnSetConvolutionMathType(plan.conv, math), "cudnnSetConvolutionMathType");
    cudnnHandle_t h = cudnn_handle();
    int returned = 0;
    switch (dir) {
        case Dir::forward: {
            cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            cudnn_check(cudnnGetConvolutionForwardAlgorithm_v7(h, plan.x, plan.w, plan.conv, plan.y,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf),
                        "cudnnGetConvolutionForwardAlgorithm_v7");
            if (!(plan.use_fallback = !pick(perf, returned, plan)))
            cudnn_check(cudnnGetConvolutionForwardWorkspaceSize(h, plan.x, plan.w, plan.conv, plan.y,
                                                                (cudnnConvolutionFwdAlgo_t)plan.algo, &plan.workspace),
                        "cudnnGetConvolutionForwardWorkspaceSize");
            break;
        }
        case Dir::backward_input: {
            cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
            cudnn_check(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.w, plan.y, plan.conv, plan.x,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned,
                                                                    perf),
                        "cudnnGetConvolutionBackwardDataAlgorithm_v7");
            if (!(plan.use_fallback = !pick(perf, returned, plan)))
            cudnn_check(cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.w, plan.y, plan.conv, plan.x,
                                                                     (cudnnConvolutionBwdDataAlgo_t)plan.algo,
                                                                     &plan.workspace),
                        "cudnnGetConvolutionBackwardDataWorkspaceSize");
            break;
        }
        case Dir::backward_weight: {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
            cudnn_check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.x, plan.y, plan.conv, plan.w,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                      &returned, perf),
                        "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
            if (!(plan.use_fallback = !pick(perf, returned, plan)))
            cudnn_check(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.x, plan.y, plan.conv, plan.w,
                                                                       (cudnnConvolutionBwdFilterAlgo_t)plan.algo,
                                                                       &plan.workspace),
                        "cudnnGetConvolutionBackwardFilterWorkspaceSize");
            break;
        }
    }
    } catch (...) {
        destroy_plan(plan);
        throw;
    }
    return plans.emplace(key, plan).first->second;
}

// Runs one cuDNN convolution call (out = 1·op(in1, in2) + 0·out) with a workspace from the backend allocator.
// Returns false (nothing done) when the shape has no deterministic cuDNN algorithm: the caller takes im2col.
bool cudnn_run(Dir dir, const Conv2dParams& p, DType dt, Device dev, const void* a, const void* b, void* out) {
    const ConvPlan& plan = get_plan(dir, p, dt);
    if (plan.use_fallback) return false;
    Tensor ws;
    if (plan.workspace > 0) ws = Tensor::empty({(int64_t)plan.workspace}, DType::u8, dev);
    void* wsp = plan.workspace > 0 ? ws.raw_data() : nullptr;
    float one_f = 1.0f, zero_f = 0.0f;
    double one_d = 1.0, zero_d = 0.0;
    const void* one = dt == DType::f64 ? (const void*)&one_d : (const void*)&one_f;
    const void* zero = dt == DType::f64 ? (const void*)&zero_d : (const void*)&zero_f;
    cudnnHandle_t h = cudnn_handle();
    switch (dir) {
        case Dir::forward:  // a = x, b = w, out = y
            cudnn_check(cudnnConvolutionForward(h, one, plan.x, a, plan.w, b, plan.conv,
                                                (cudnnConvolutionFwdAlgo_t)plan.algo, wsp, plan.workspace, zero,
                                                plan.y, out),
                        "cudnnConvolutionForward");
            break;
        case Dir::backward_input:  // a = w, b = grad_y, out = grad_x
            cudnn_check(cudnnConvolutionBackwardData(h, one, plan.w, a, plan.y, b, plan.conv,
                                                     (cudnnConvolutionBwdDataAlgo_t)plan.algo, wsp, plan.workspace,
                                                     zero, plan.x, out),
                        "cudnnConvolutionBackwardData");
            break;
        case Dir::backward_weight:  // a = x, b = grad_y, out = grad_w
            cudnn_check(cudnnConvolutionBackwardFilter(h, one, plan.x, a, plan.y, b, plan.conv,
                                                       (cudnnConvolutionBwdFilterAlgo_t)plan.algo, wsp,
                                                       plan.workspace, zero, plan.w, out),
                        "cudnnConvolutionBackwardFilter");
            break;
    }
    after_launch(dir == Dir::forward ? "cudnnConvolutionForward"
                 : dir == Dir::backward_input ? "cudnnConvolutionBackwardData"
                                              : "cudnnConvolutionBackwardFilter");
    return true;
}

void check_args(const char* what, const Conv2dParams& p, std::initializer_list<const Tensor*> ts) {
    p.validate();
    for (const Tensor* t : ts) {
        if (!t->defined()) continue;
        CXR_CHECK(t->is_contiguous(), what, ": CUDA kernel expects contiguous tensors, got strides ",
                  shape_str(t->strides()), " for shape ", shape_str(t->sizes()));
        CXR_CHECK(t->dtype() == (*ts.begin())->dtype(), what, ": tensors of different dtypes");
        CXR_CHECK(t->is_cuda(), what, ": expected CUDA tensors");
    }
}

void forward_kernel(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
    check_args("conv2d_forward", p, {&x, &w, &bias, &y});
    const DeviceGuard device_guard(y.device().index);
    if (cudnn_enabled() && cudnn_run(Dir::forward, p, x.dtype(), x.device(), x.raw_data(), w.raw_data(), y.raw_data())) {
        if (bias.defined()) CXR_DISPATCH_FLOAT(x.dtype(), "conv2d_forward", { add_bias<scalar_t>(p, bias, y); });
        return;
    }
    CXR_DISPATCH_FLOAT(x.dtype(), "conv2d_forward", { fallback_forward<scalar_t>(p, x, w, bias, y); });
}

void backward_input_kernel(const Conv2dParams& p, const Tensor& grad_y, const Tensor& w, const Tensor& grad_x) {
    check_args("conv2d_backward_input", p, {&grad_y, &w, &grad_x});
    const DeviceGuard device_guard(grad_x.device().index);
    if (cudnn_enabled() && cudnn_run(Dir::backward_input, p, grad_y.dtype(), grad_y.device(), w.raw_data(),
                                     grad_y.raw_data(), grad_x.raw_data()))
        return;
    CXR_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_input",
                       { fallback_backward_input<scalar_t>(p, grad_y, w, grad_x); });
}

void backward_weight_kernel(const Conv2dParams& p, const Tensor& x, const Tensor& grad_y, const Tensor& grad_w) {
    check_args("conv2d_backward_weight", p, {&x, &grad_y, &grad_w});
    const DeviceGuard device_guard(grad_w.device().index);
    if (cudnn_enabled() && cudnn_run(Dir::backward_weight, p, x.dtype(), x.device(), x.raw_data(),
                                     grad_y.raw_data(), grad_w.raw_data()))
        return;
    CXR_DISPATCH_FLOAT(x.dtype(), "conv2d_backward_weight",
                       { fallback_backward_weight<scalar_t>(p, x, grad_y, grad_w); });
}

}  // namespace

void register_conv_kernels(KernelRegistry& r) {
    register_kernel<Conv2dForwardKernel>(r, "conv2d_forward", DeviceType::CUDA, forward_kernel);
    register_kernel<Conv2dBackwardInputKernel>(r, "conv2d_backward_input", DeviceType::CUDA, backward_input_kernel);
    register_kernel<Conv2dBackwardWeightKernel>(r, "conv2d_backward_weight", DeviceType::CUDA, backward_weight_kernel);
}

}  // namespace cxr::tensor::cuda
