// Benchmark of scaled_dot_product_attention on the CPU (tensor/ops/attention.h): the fused tiled kernels
// (tensor/cpu/attention.cpp) against the composed reference (the same op with CXR_ATTN_FUSED=OFF: the
// [B, H, L, S] score matrix materialised), at the Stable Diffusion 1.5 UNet's attention shapes for one guided
// step at 512 px (batch 2 = unconditional + conditional, 8 heads):
//   self 64×64 latents   q, k, v [2, 8, 4096, 40]
//   self 32×32 latents   q, k, v [2, 8, 1024, 80]
//   cross 64×64 latents  q [2, 8, 4096, 40], k, v [2, 8, 77, 40]   (the 77 text tokens)
// The fused output is validated against the composed one (max |Δ| ≤ 1e-5 + 1e-4 |ref|, both f32) BEFORE timing;
// a mismatch stops the run with exit code 1. With --backward the forward+backward (L = Σ out ⊙ w, gradients of
// q, k, v) is timed too and its gradients validated the same way.
// Timing: one warm-up call, then the median of --repeat calls (default 3). Peak memory: the process's peak
// resident set (VmHWM) reset before each variant through /proc/self/clear_refs ("5"), minus the resident set
// before the call; printed as "n/a" where the kernel refuses the reset. So that freed tensors leave the resident
// set at once (and the next variant's peak is its own), glibc is told to map every block of 1 MiB or more on
// its own (mallopt M_MMAP_THRESHOLD); smaller blocks stay in the heap, so figures under a few MiB are noise.
//
// Usage: bench_cpu_attention [--repeat N] [--backward] [--filter SUBSTRING]   (threads: OMP_NUM_THREADS)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/attention.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace T = cxr::tensor;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), -1 if absent.
double status_kib(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const size_t n = std::strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') return std::atof(line.c_str() + n + 1);
    return -1;
}

// Resets VmHWM to the current resident set; false if the kernel does not allow it.
bool reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    if (!f) return false;
    f << "5";
    f.close();
    return !f.fail();
}

struct Case {
    const char* name;
    T::Shape q, kv;
};

struct Timing {
    double seconds = 0, peak_gib = -1;
};

Timing time_variant(bool fused, int repeat, const std::function<void()>& fn) {
    if (fused) unsetenv("CXR_ATTN_FUSED");
    else setenv("CXR_ATTN_FUSED", "OFF", 1);
    const double rss0 = status_kib("VmRSS");
    const bool reset = reset_peak_rss();
    fn();  // warm-up
    std::vector<double> t;
    for (int r = 0; r < repeat; ++r) {
        const auto t0 = Clock::now();
        fn();
        t.push_back(seconds_since(t0));
    }
    std::sort(t.begin(), t.end());
    Timing res;
    res.seconds = t[t.size() / 2];
    if (reset) res.peak_gib = std::max(0.0, (status_kib("VmHWM") - rss0) / (1024.0 * 1024.0));
    unsetenv("CXR_ATTN_FUSED");
    return res;
}

bool validate(const char* what, const T::Tensor& got, const T::Tensor& ref) {
    const auto g = got.to_vector<double>(), r = ref.to_vector<double>();
    double worst = 0, max_abs = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        const double d = std::abs(g[i] - r[i]);
        max_abs = std::max(max_abs, d);
        worst = std::max(worst, d / (1e-5 + 1e-4 * std::abs(r[i])));
    }
    std::printf("  validate %-5s max |fused - composed| = %.2e  %s\n", what, max_abs, worst <= 1 ? "ok" : "FAIL");
    return worst <= 1;
}

std::string peak_str(double gib) {
    if (gib < 0) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.3f GiB", gib);
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 3;
    bool backward = false;
    std::string filter;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
        else if (a == "--backward") backward = true;
        else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--repeat N] [--backward] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    std::printf("scaled_dot_product_attention on the CPU, f32, %d threads, median of %d\n", threads, repeat);
    const std::vector<Case> cases = {
        {"self  4096 E=40", {2, 8, 4096, 40}, {2, 8, 4096, 40}},
        {"self  1024 E=80", {2, 8, 1024, 80}, {2, 8, 1024, 80}},
        {"cross 4096x77 E=40", {2, 8, 4096, 40}, {2, 8, 77, 40}},
    };
    bool ok = true;
    T::manual_seed(0);
    for (const Case& c : cases) {
        if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
        std::printf("%s: q %s, k, v %s\n", c.name, T::shape_str(c.q).c_str(), T::shape_str(c.kv).c_str());
        const T::Tensor q = T::randn(c.q), k = T::randn(c.kv), v = T::randn(c.kv);
        T::Tensor out_f, out_c;
        auto fwd = [&](T::Tensor& out) {
            T::NoGradGuard ng;
            out = T::scaled_dot_product_attention(q, k, v);
        };
        {
            unsetenv("CXR_ATTN_FUSED");
            if (!T::attention_uses_fused_kernel(q, k, v)) {
                std::printf("  the fused kernels are not registered for the CPU\n");
                return 1;
            }
            fwd(out_f);
            setenv("CXR_ATTN_FUSED", "OFF", 1);
            fwd(out_c);
            unsetenv("CXR_ATTN_FUSED");
            ok = validate("out", out_f, out_c) && ok;
            if (!ok) return 1;
        }
        const Timing tf = time_variant(true, repeat, [&] { fwd(out_f); });
        const Timing tc = time_variant(false, repeat, [&] { fwd(out_c); });
        std::printf("  forward            fused %8.3f s  peak +%s | composed %8.3f s  peak +%s | speedup %.1fx\n",
                    tf.seconds, peak_str(tf.peak_gib).c_str(), tc.seconds, peak_str(tc.peak_gib).c_str(),
                    tc.seconds / tf.seconds);
        if (!backward) continue;
        const T::Tensor w = T::randn(c.q);
        auto fwd_bwd = [&](std::vector<T::Tensor>& grads) {
            T::Tensor ql = q.detach().set_requires_grad(), kl = k.detach().set_requires_grad();
            T::Tensor vl = v.detach().set_requires_grad();
            T::sum(T::mul(T::scaled_dot_product_attention(ql, kl, vl), w)).backward();
            grads = {ql.grad(), kl.grad(), vl.grad()};
        };
        std::vector<T::Tensor> gf, gc;
        fwd_bwd(gf);
        setenv("CXR_ATTN_FUSED", "OFF", 1);
        fwd_bwd(gc);
        unsetenv("CXR_ATTN_FUSED");
        const char* names[3] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; ++i) ok = validate(names[i], gf[i], gc[i]) && ok;
        if (!ok) return 1;
        const Timing bf = time_variant(true, repeat, [&] { fwd_bwd(gf); });
        const Timing bc = time_variant(false, repeat, [&] { fwd_bwd(gc); });
        std::printf("  forward+backward   fused %8.3f s  peak +%s | composed %8.3f s  peak +%s | speedup %.1fx\n",
                    bf.seconds, peak_str(bf.peak_gib).c_str(), bc.seconds, peak_str(bc.peak_gib).c_str(),
                    bc.seconds / bf.seconds);
    }
    return ok ? 0 : 1;
}
