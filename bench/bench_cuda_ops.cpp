// Benchmark of the CUDA ops at the shapes of the Stable Diffusion UNet and DenseNet-121 (issue 3): GEMM (cuBLAS,
// the hand-written tensor-core GEMM and the SIMT tiled GEMM), conv2d (cuDNN and im2col with CXR_CUDNN=OFF),
// scaled-dot-product attention forward and backward (the fused kernels of tensor/cuda/attention.cu), and the
// memory-bound ops (group_norm, group_norm + SiLU as two ops, layer_norm, softmax, add, GELU).
// Each case is a numbered variant (V01, V02, ...) and is validated against the CPU reference BEFORE it is timed,
// on a slice or a smaller instance of the same case (the rows 0..7 of a GEMM, one image and a 16x16 window of a
// convolution, the first 64 queries of one head of attention, the first sample of a norm); a case that fails
// validation or throws is reported and not timed, and the run exits non-zero.
//
// Rates: compute-bound cases report TFLOP/s = FLOP / time with
//   GEMM   FLOP = 2·M·N·K;   conv2d  FLOP = 2·N·C_out·H_out·W_out·(C_in/groups)·kh·kw;
//   attention forward FLOP = 4·B·L·S·E (two GEMMs), backward = 2.5 × forward (the FlashAttention-2 convention:
//   five GEMMs instead of two);
// memory-bound cases report GB/s = (bytes read + bytes written once each) / time, e.g. 2·numel·elem_size for a
// norm or unary op and 3·numel·elem_size for add.
// % of peak uses the table in peak_for() (dense, no sparsity), from NVIDIA's data sheets:
//   H100 SXM5 (nvidia-smi "H100 80GB HBM3"): bf16/f16 989.4 TFLOP/s, tf32 494.7, fp32 66.9, HBM3 3.35 TB/s
//     ("NVIDIA H100 Tensor Core GPU" data sheet; its tensor figures are "with sparsity", halved here);
//   H100 PCIe: bf16/f16 756.5, tf32 378, fp32 51.2, HBM2e 2.0 TB/s (same data sheet);
//   H200 SXM: the H100 SXM compute figures, HBM3e 4.8 TB/s ("NVIDIA H200 Tensor Core GPU" data sheet);
//   A100 SXM4 80GB: bf16/f16 312, tf32 156, fp32 19.5, 2.039 TB/s (40GB: 1.555 TB/s) ("NVIDIA A100" data sheet).
// Other devices print "peak unknown". The device name comes from nvidia-smi (this file uses only the tensor API,
// no CUDA headers, so it also builds in the CPU-only configuration) or --device NAME.
//
// Timing: one warm-up call and one timed call that sets `inner`; then each repetition times `inner` back-to-back calls between two device
// synchronisations (inner chosen so a repetition lasts about 2 ms or more, at most 100 calls) and divides; the
// reported time is the median over the repetitions (20, or 5 with --quick). bench/torch_side_by_side.py uses
// the same method for PyTorch; bench/side_by_side.py joins the two JSON files.
//
// Usage: bench_cuda_ops [--quick] [--json PATH] [--filter SUBSTRING] [--device NAME]
//   Without a CUDA device it prints "no CUDA device: nothing timed" and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/norm.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"
#include "tensor/tensor.h"

using namespace cxr::tensor;

namespace {

using Clock = std::chrono::steady_clock;
const Device kGpu = Device::cuda(0);

void sync() { backend_for(DeviceType::CUDA).synchronize(kGpu); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds per call (method in the header comment).
double time_median(int reps, const std::function<void()>& fn) {
    fn();  // warm-up: handles, cuDNN plans, allocator caches
    sync();
    auto t0 = Clock::now();
    fn();  // the estimate of one call that sizes `inner`
    sync();
    const double warm = std::max(std::chrono::duration<double>(Clock::now() - t0).count(), 1e-7);
    const int inner = std::max(1, std::min(100, (int)(2e-3 / warm)));
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        sync();
        t0 = Clock::now();
        for (int i = 0; i < inner; ++i) fn();
        sync();
        t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / inner);
    }
    return median(t);
}

// ---- device and peaks ----
std::string device_name_from_smi() {
    std::string name;
    if (FILE* p = popen("nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null", "r")) {
        char buf[256];
        if (std::fgets(buf, sizeof buf, p)) name = buf;
        pclose(p);
    }
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
    return name.empty() ? "unknown CUDA device" : name;
}

struct Peaks {
    bool known = false;
    double bf16 = 0, tf32 = 0, fp32 = 0;  // dense TFLOP/s
    double bw = 0;                         // TB/s
    std::string source;
};

Peaks peak_for(const std::string& dev) {
    auto has = [&](const char* s) { return dev.find(s) != std::string::npos; };
    Peaks p;
    if (has("H200")) p = {true, 989.4, 494.7, 66.9, 4.8, "H200 SXM data sheet"};
    else if (has("H100") && has("PCIe")) p = {true, 756.5, 378.0, 51.2, 2.0, "H100 PCIe data sheet"};
    else if (has("H100")) p = {true, 989.4, 494.7, 66.9, 3.35, "H100 SXM5 data sheet"};
    else if (has("A100") && has("80GB")) p = {true, 312.0, 156.0, 19.5, 2.039, "A100 SXM4 80GB data sheet"};
    else if (has("A100")) p = {true, 312.0, 156.0, 19.5, 1.555, "A100 40GB data sheet"};
    return p;
}

// ---- validation ----
// Max over elements of |y - ref| / (atol + rtol·|ref|) (<= 1 passes), both read as f64 on the CPU.
double limit_used(const Tensor& y, const Tensor& ref, double atol, double rtol) {
    Tensor a = y.to(Device::cpu()).to(DType::f64).contiguous();
    Tensor b = ref.to(Device::cpu()).to(DType::f64).contiguous();
    CXR_CHECK(a.sizes() == b.sizes(), "validation: shape ", shape_str(a.sizes()), " vs reference ",
              shape_str(b.sizes()));
    const double* pa = a.data<double>();
    const double* pb = b.data<double>();
    double worst = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        const double lim = atol + rtol * std::fabs(pb[i]);
        const double e = std::fabs(pa[i] - pb[i]);
        if (!(e <= lim)) worst = std::max(worst, std::isfinite(e) ? e / lim : INFINITY);
        else worst = std::max(worst, e / lim);
    }
    return worst;
}

// Output rounding (relative) of a dtype: 2 units of roundoff.
double rtol_of(DType dt, bool tf32 = false) {
    if (dt == DType::bf16) return std::ldexp(1.0, -7);
    if (dt == DType::f16) return std::ldexp(1.0, -9);
    return tf32 ? std::ldexp(1.0, -9) : 1e-5;
}

Tensor rnd(const Shape& s, DType dt, uint64_t seed) {
    // U[-1, 1) drawn on the GPU (Philox: same values as on the CPU for the same seed).
    Generator* gen = nullptr;
    (void)seed;
    Tensor u = rand(s, Options(DType::f32, kGpu), gen);
    return add(mul(u, 2.0), -1.0).to(dt);
}

Tensor cpu_f32(const Tensor& t) { return t.to(Device::cpu()).to(DType::f32); }

// ---- cases ----
struct Case {
    std::string name, shape, dtype, path, unit;  // unit "TFLOP/s" or "GB/s"
    double work = 0;                             // FLOP or bytes per call
    std::vector<std::pair<std::string, std::string>> env;
    // Builds the inputs, validates (returns the fraction of the tolerance used, <= 1 passes) and returns the
    // callable to time.
    std::function<std::pair<double, std::function<void()>>()> prepare;
};

struct Result {
    std::string id, name, shape, dtype, path, unit, status;
    double ms = 0, rate = 0, pct = -1, used = 0;
};

// Environment for one case (the kernels read CXR_CUBLAS, CXR_CUDNN, CXR_TF32, CXR_GEMM_TC at each call).
class ScopedEnv {
public:
    explicit ScopedEnv(const std::vector<std::pair<std::string, std::string>>& vars) {
        for (const auto& [k, v] : vars) {
            const char* old = std::getenv(k.c_str());
            saved_.push_back({k, old ? std::make_unique<std::string>(old) : nullptr});
            setenv(k.c_str(), v.c_str(), 1);
        }
    }
    ~ScopedEnv() {
        for (auto& [k, v] : saved_) {
            if (v) setenv(k.c_str(), v->c_str(), 1);
            else unsetenv(k.c_str());
        }
    }

private:
    std::vector<std::pair<std::string, std::unique_ptr<std::string>>> saved_;
};

DType parse_dtype(const std::string& s) {
    if (s == "bf16") return DType::bf16;
    if (s == "f16") return DType::f16;
    return DType::f32;  // "f32" and "tf32"
}

std::string dims(std::initializer_list<int64_t> d) {
    std::string s;
    for (int64_t v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
    return s;
}

// GEMM C[M, N] = A[M, K] B[K, N], row-major; validated on rows 0..7 against the CPU in f32.
Case gemm_case(const std::string& name, int64_t M, int64_t K, int64_t N, const std::string& dt,
               const std::string& path) {
    Case c;
    c.name = name;
    c.shape = "M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N);
    c.dtype = dt;
    c.path = path;
    c.unit = "TFLOP/s";
    c.work = 2.0 * M * N * K;
    if (path == "cublas") c.env = {{"CXR_CUBLAS", "ON"}, {"CXR_TF32", dt == "tf32" ? "1" : "0"}};
    else if (path == "handwritten-tc") c.env = {{"CXR_CUBLAS", "OFF"}, {"CXR_GEMM_TC", "ON"}};
    else c.env = {{"CXR_CUBLAS", "OFF"}, {"CXR_GEMM_TC", "OFF"}};  // "handwritten-simt"
    c.prepare = [=]() {
        const DType d = parse_dtype(dt);
        Tensor a = rnd({M, K}, d, 1), b = rnd({K, N}, d, 2);
        Tensor y = matmul(a, b);
        const int64_t rows = std::min<int64_t>(8, M);
        Tensor ref = matmul(cpu_f32(narrow(a, 0, 0, rows)), cpu_f32(b));
        // |sum| ~ sqrt(K)/3 for U[-1,1] inputs; accumulation and input rounding (tf32: 2^-11 per product)
        // contribute ~ sqrt(K)·2^-9 at most.
        const double used = limit_used(narrow(y, 0, 0, rows), ref, std::sqrt((double)K) * std::ldexp(1.0, -9),
                                       rtol_of(d, dt == "tf32"));
        return std::make_pair(used, std::function<void()>([a, b]() { matmul(a, b); }));
    };
    return c;
}

// conv2d x [N, C, H, W] (kh x kw, stride, padding) -> C_out; validated on image 0 cropped to a 16x16 window (at
// least the kernel size), against the CPU in f32.
Case conv_case(const std::string& name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Co, int64_t k,
               int64_t stride, int64_t pad, const std::string& dt, const std::string& path) {
    Case c;
    c.name = name;
    c.shape = "x=" + dims({N, C, H, W}) + " w=" + dims({Co, C, k, k}) + " s" + std::to_string(stride) + " p" +
              std::to_string(pad);
    c.dtype = dt;
    c.path = path;
    c.unit = "TFLOP/s";
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    c.work = 2.0 * N * Co * Ho * Wo * C * k * k;
    c.env = {{"CXR_CUDNN", path == "cudnn" ? "ON" : "OFF"}, {"CXR_TF32", "0"}};
    c.prepare = [=]() {
        const DType d = parse_dtype(dt);
        Tensor x = rnd({N, C, H, W}, d, 3), w = mul(rnd({Co, C, k, k}, d, 4), 1.0 / std::sqrt((double)C * k * k));
        const int64_t win = std::max<int64_t>(16, k);
        Tensor xs = contiguous(narrow(narrow(narrow(x, 0, 0, 1), 2, 0, std::min(win, H)), 3, 0, std::min(win, W)));
        Tensor ys = conv2d(xs, w, Tensor(), {stride, stride}, {pad, pad});
        Tensor ref = conv2d(cpu_f32(xs), cpu_f32(w), Tensor(), {stride, stride}, {pad, pad});
        const double used = limit_used(ys, ref, 1e-2, rtol_of(d));
        return std::make_pair(used, std::function<void()>([x, w, stride, pad]() {
                                  conv2d(x, w, Tensor(), {stride, stride}, {pad, pad});
                              }));
    };
    return c;
}

// Attention q [B, L, E], k, v [B, S, E]; validated on head 0 and the first 64 queries against the CPU composed
// reference in f32 (forward: out; backward: dq, dk, dv).
// path: "fused-tc" (the tensor-core forward for f16/bf16, CXR_ATTN_TC on) or "fused-simt" (CXR_ATTN_TC=OFF); the
// backward kernels are shared by both.
Case attention_case(const std::string& name, int64_t B, int64_t L, int64_t S, int64_t E, const std::string& dt,
                    bool backward, const std::string& path = "fused-tc") {
    Case c;
    c.name = name;
    c.shape = "q=" + dims({B, L, E}) + " kv=" + dims({B, S, E});
    c.dtype = dt;
    c.path = path;
    c.env = {{"CXR_ATTN_TC", path == "fused-simt" ? "OFF" : "ON"}};
    c.unit = "TFLOP/s";
    c.work = 4.0 * B * L * S * E * (backward ? 2.5 : 1.0);
    c.prepare = [=]() {
        const DType d = parse_dtype(dt);
        Tensor q = rnd({B, L, E}, d, 5), k = rnd({B, S, E}, d, 6), v = rnd({B, S, E}, d, 7);
        if (!attention_uses_fused_kernel(q, k, v))
            std::printf("  note: %s takes the composed (unfused) path\n", name.c_str());
        const int64_t Ls = std::min<int64_t>(64, L);
        Tensor qs = contiguous(narrow(narrow(q, 0, 0, 1), 1, 0, Ls)), ks = contiguous(narrow(k, 0, 0, 1)),
               vs = contiguous(narrow(v, 0, 0, 1));
        double used = 0;
        if (!backward) {
            NoGradGuard ng;
            used = limit_used(scaled_dot_product_attention(qs, ks, vs),
                              scaled_dot_product_attention(cpu_f32(qs), cpu_f32(ks), cpu_f32(vs)), 2e-3, rtol_of(d));
            return std::make_pair(used, std::function<void()>([q, k, v]() {
                                      NoGradGuard g;
                                      scaled_dot_product_attention(q, k, v);
                                  }));
        }
        // Backward: gradients of Σ out ⊙ g on the slice, GPU vs CPU.
        Tensor g = rnd({1, Ls, E}, d, 8);
        auto grads = [&](const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& g0) {
            Tensor qq = q0.detach(), kk = k0.detach(), vv = v0.detach();
            qq.set_requires_grad(true), kk.set_requires_grad(true), vv.set_requires_grad(true);
            scaled_dot_product_attention(qq, kk, vv).backward(g0);
            return std::vector<Tensor>{qq.grad(), kk.grad(), vv.grad()};
        };
        auto gg = grads(qs, ks, vs, g);
        auto gc = grads(cpu_f32(qs), cpu_f32(ks), cpu_f32(vs), cpu_f32(g));
        for (int i = 0; i < 3; ++i) used = std::max(used, limit_used(gg[i], gc[i], 5e-3, 4 * rtol_of(d)));
        // Timed: the backward of one forward graph (retain_graph), gradients reset each call.
        Tensor qq = q.detach(), kk = k.detach(), vv = v.detach();
        qq.set_requires_grad(true), kk.set_requires_grad(true), vv.set_requires_grad(true);
        Tensor out = scaled_dot_product_attention(qq, kk, vv);
        Tensor gout = rnd({B, L, E}, d, 9);
        return std::make_pair(used, std::function<void()>([qq, kk, vv, out, gout]() mutable {
                                  qq.zero_grad(), kk.zero_grad(), vv.zero_grad();
                                  out.backward(gout, true);
                              }));
    };
    return c;
}

// A memory-bound op on x of `shape`: `op` is applied on the GPU and (for validation, to sample 0) on the CPU in
// f32; bytes_per_elem = (reads + writes) per element of x, in elements.
Case membound_case(const std::string& name, const Shape& shape, const std::string& dt, double accesses,
                   std::function<Tensor(const Tensor&)> op) {
    Case c;
    c.name = name;
    c.shape = shape_str(shape);
    c.dtype = dt;
    c.path = "default";
    c.unit = "GB/s";
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    c.work = accesses * (double)n * (double)dtype_size(parse_dtype(dt));
    c.prepare = [=]() {
        NoGradGuard ng;
        Tensor x = rnd(shape, parse_dtype(dt), 10);
        Tensor xs = contiguous(narrow(x, 0, 0, 1));
        const double used = limit_used(op(xs), op(cpu_f32(xs)), 1e-2, rtol_of(parse_dtype(dt)));
        return std::make_pair(used, std::function<void()>([x, op]() {
                                  NoGradGuard g;
                                  op(x);
                              }));
    };
    return c;
}

std::vector<Case> all_cases() {
    std::vector<Case> cs;
    // GEMM 4096^3: every path and dtype.
    const std::string g4 = "gemm_4096x4096x4096";
    for (const char* dt : {"bf16", "f16"}) {
        cs.push_back(gemm_case(g4, 4096, 4096, 4096, dt, "cublas"));
        cs.push_back(gemm_case(g4, 4096, 4096, 4096, dt, "handwritten-tc"));
    }
    cs.push_back(gemm_case(g4, 4096, 4096, 4096, "bf16", "handwritten-simt"));
    cs.push_back(gemm_case(g4, 4096, 4096, 4096, "f32", "cublas"));
    cs.push_back(gemm_case(g4, 4096, 4096, 4096, "tf32", "cublas"));
    cs.push_back(gemm_case(g4, 4096, 4096, 4096, "f32", "handwritten-simt"));
    // SD UNet GEMMs (tokens x in -> out): attention projections at 64x64 and 32x32 latents, feed-forward in/out,
    // and DenseNet-121 1x1 convolutions as GEMMs (batch 32 x H x W rows, in channels -> 128 bottleneck).
    struct G {
        const char* name;
        int64_t M, K, N;
    };
    const G shapes[] = {
        {"gemm_sd_attn_proj_64", 4096, 320, 320},  {"gemm_sd_attn_proj_32", 1024, 640, 640},
        {"gemm_sd_ff_in_64", 4096, 320, 1280},     {"gemm_sd_ff_out_64", 4096, 1280, 320},
        {"gemm_densenet_1x1_b1", 100352, 256, 128}, {"gemm_densenet_1x1_b2", 25088, 512, 128},
        {"gemm_densenet_1x1_b3", 6272, 1024, 128},  {"gemm_densenet_1x1_b4", 1568, 1024, 128},
    };
    for (const G& g : shapes)
        for (const char* path : {"cublas", "handwritten-tc"}) cs.push_back(gemm_case(g.name, g.M, g.K, g.N, "bf16", path));
    // conv2d: SD UNet 3x3 convolutions (bf16) and DenseNet-121 at 224 px (f32).
    for (const char* path : {"cudnn", "im2col"}) {
        cs.push_back(conv_case("conv_sd_320x64", 2, 320, 64, 64, 320, 3, 1, 1, "bf16", path));
        cs.push_back(conv_case("conv_sd_640x32", 2, 640, 32, 32, 640, 3, 1, 1, "bf16", path));
        cs.push_back(conv_case("conv_sd_1280x16", 2, 1280, 16, 16, 1280, 3, 1, 1, "bf16", path));
        cs.push_back(conv_case("conv_densenet_3x3_b1", 32, 128, 56, 56, 32, 3, 1, 1, "f32", path));
        cs.push_back(conv_case("conv_densenet_stem", 32, 3, 224, 224, 64, 7, 2, 3, "f32", path));
    }
    // Attention: SD self-attention (2 images x 8 heads, 4096 tokens) at head dims 40, 64, 80, 160, and
    // cross-attention to the 77 text tokens.
    for (const char* path : {"fused-tc", "fused-simt"}) {
        for (int64_t E : {40, 64, 80, 128, 160})
            cs.push_back(attention_case("sdpa_fwd_self_E" + std::to_string(E), 16, 4096, 4096, E, "bf16", false, path));
        cs.push_back(attention_case("sdpa_fwd_cross_E40", 16, 4096, 77, 40, "bf16", false, path));
    }
    for (int64_t E : {40, 64})
        cs.push_back(attention_case("sdpa_bwd_self_E" + std::to_string(E), 16, 4096, 4096, E, "bf16", true));
    // Memory-bound ops at SD shapes.
    for (const Shape& s : {Shape{2, 320, 64, 64}, Shape{2, 640, 32, 32}, Shape{2, 1280, 16, 16}}) {
        const std::string tag = std::to_string(s[1]) + "x" + std::to_string(s[2]);
        cs.push_back(membound_case("group_norm_" + tag, s, "bf16", 2, [](const Tensor& x) { return group_norm(x, 32); }));
        cs.push_back(membound_case("group_norm_silu_" + tag, s, "bf16", 4,
                                   [](const Tensor& x) { return silu(group_norm(x, 32)); }));
    }
    cs.push_back(membound_case("layer_norm_4096x320", {2, 4096, 320}, "bf16", 2,
                               [](const Tensor& x) { return layer_norm(x, {320}); }));
    cs.push_back(membound_case("softmax_cross_4096x77", {16, 4096, 77}, "bf16", 2,
                               [](const Tensor& x) { return softmax(x, -1); }));
    cs.push_back(membound_case("softmax_self_1024x1024", {16, 1024, 1024}, "bf16", 2,
                               [](const Tensor& x) { return softmax(x, -1); }));
    cs.push_back(membound_case("add_320x64", {2, 320, 64, 64}, "bf16", 3, [](const Tensor& x) { return add(x, x); }));
    cs.push_back(membound_case("add_320x64", {2, 320, 64, 64}, "f32", 3, [](const Tensor& x) { return add(x, x); }));
    cs.push_back(membound_case("gelu_4096x1280", {2, 4096, 1280}, "bf16", 2, [](const Tensor& x) { return gelu(x); }));
    return cs;
}

double peak_of(const Peaks& p, const Case& c) {
    if (c.unit == "GB/s") return p.bw * 1e3;  // GB/s
    if (c.dtype == "bf16" || c.dtype == "f16") return p.bf16;
    if (c.dtype == "tf32") return p.tf32;
    return p.fp32;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') o += '\\';
        if ((unsigned char)ch < 0x20) continue;
        o += ch;
    }
    return o;
}

void write_json(const std::string& path, const std::string& device, const Peaks& p, const std::vector<Result>& rs) {
    std::ofstream os(path);
    CXR_CHECK(os.good(), "cannot write ", path);
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    os << "{\n  \"tool\": \"bench_cuda_ops\",\n  \"date\": \"" << stamp << "\",\n  \"device\": \"" << json_escape(device)
       << "\",\n  \"peaks\": ";
    if (p.known)
        os << "{\"bf16_tflops\": " << p.bf16 << ", \"tf32_tflops\": " << p.tf32 << ", \"fp32_tflops\": " << p.fp32
           << ", \"bandwidth_tbs\": " << p.bw << ", \"source\": \"" << p.source << "\"}";
    else
        os << "null";
    os << ",\n  \"cases\": [";
    for (size_t i = 0; i < rs.size(); ++i) {
        const Result& r = rs[i];
        os << (i ? ",\n" : "\n") << "    {\"id\": \"" << r.id << "\", \"name\": \"" << r.name << "\", \"shape\": \""
           << json_escape(r.shape) << "\", \"dtype\": \"" << r.dtype << "\", \"path\": \"" << r.path
           << "\", \"status\": \"" << json_escape(r.status) << "\", \"ms\": ";
        if (r.status == "ok") {
            os << r.ms << ", \"" << (r.unit == "GB/s" ? "gbs" : "tflops") << "\": " << r.rate << ", \"pct_peak\": ";
            if (r.pct >= 0) os << r.pct;
            else os << "null";
        } else {
            os << "null";
        }
        os << ", \"tolerance_used\": " << r.used << "}";
    }
    os << "\n  ]\n}\n";
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string json_path, filter, device;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") quick = true;
        else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
        else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
        else if (a == "--device" && i + 1 < argc) device = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--quick] [--json PATH] [--filter SUBSTRING] [--device NAME]\n", argv[0]);
            return 2;
        }
    }
    if (!device_available(DeviceType::CUDA)) {
        std::printf("no CUDA device: nothing timed\n");
        return 0;
    }
    if (device.empty()) device = device_name_from_smi();
    const Peaks peaks = peak_for(device);
    const int reps = quick ? 5 : 20;
    std::printf("bench_cuda_ops on %s (%s)\n", device.c_str(),
                peaks.known ? ("peaks: " + peaks.source).c_str() : "peak unknown");
    std::printf("%-4s %-26s %-30s %-5s %-17s %10s %12s %8s  %s\n", "id", "case", "shape", "dtype", "path", "ms",
                "rate", "%peak", "status");
    std::vector<Result> results;
    int failures = 0, idx = 0;
    for (const Case& c : all_cases()) {
        ++idx;
        char id[16];
        std::snprintf(id, sizeof id, "V%02d", idx);
        if (!filter.empty() && (c.name + " " + c.path + " " + c.dtype).find(filter) == std::string::npos) continue;
        Result r{id, c.name, c.shape, c.dtype, c.path, c.unit, "ok"};
        try {
            ScopedEnv env(c.env);
            auto [used, fn] = c.prepare();
            r.used = used;
            if (!(used <= 1.0)) {
                r.status = "INVALID (validation used " + std::to_string(used) + " of the tolerance)";
            } else {
                const double s = time_median(reps, fn);
                r.ms = s * 1e3;
                r.rate = c.unit == "GB/s" ? c.work / s / 1e9 : c.work / s / 1e12;
                const double peak = peaks.known ? peak_of(peaks, c) : 0;
                r.pct = peak > 0 ? 100.0 * r.rate / peak : -1;
            }
        } catch (const std::exception& e) {
            r.status = std::string("ERROR: ") + e.what();
        }
        if (r.status != "ok") ++failures;
        char rate[32] = "-", pct[16] = "-";
        if (r.status == "ok") {
            std::snprintf(rate, sizeof rate, "%.1f %s", r.rate, c.unit == "GB/s" ? "GB/s" : "TF/s");
            if (r.pct >= 0) std::snprintf(pct, sizeof pct, "%.1f", r.pct);
            else std::snprintf(pct, sizeof pct, "unknown");
        }
        std::printf("%-4s %-26s %-30s %-5s %-17s %10.4f %12s %8s  %s\n", r.id.c_str(), r.name.c_str(),
                    r.shape.c_str(), r.dtype.c_str(), r.path.c_str(), r.ms, rate, pct, r.status.c_str());
        std::fflush(stdout);
        results.push_back(r);
    }
    if (!json_path.empty()) {
        write_json(json_path, device, peaks, results);
        std::printf("wrote %s\n", json_path.c_str());
    }
    if (failures) std::printf("bench_cuda_ops: %d case(s) failed validation or raised an error\n", failures);
    return failures ? 1 : 0;
}
