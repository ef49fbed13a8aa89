// Benchmark of the CPU GEMM and conv2d kernels (tensor/cpu/gemm.*, tensor/cpu/conv2d.*): reference vs fast
// GFLOP/s, speedup and % of the machine's peak fp32 throughput, for square SGEMM and convolution layers of
// ResNet-50, DenseNet-121 and the Stable Diffusion UNet. Every fast kernel is validated against the reference
// on the benchmarked data (a subset of rows / images when the full reference would be too slow) BEFORE it is
// timed; a validation failure stops the run with a non-zero exit code.
//
// Peak fp32 FLOP/s = cores x clock x FLOP/cycle/core, where
//   FLOP/cycle/core = FMA units x SIMD lanes x 2 (an FMA is 2 FLOP), from /proc/cpuinfo flags:
//     avx512f: 2 x 16 x 2 = 64 (assumes two 512-bit FMA units), avx2+fma: 2 x 8 x 2 = 32 (two 256-bit FMA
//     units: Haswell and later, AMD Zen 1-4 count Zen 1 as 2 x 128-bit = 16, not distinguished here),
//     avx (no fma): 8 add + 8 mul lanes = 16, else SSE: 8;
//   clock = measured with a chain of dependent integer adds (1 cycle latency each) running on all cores at once,
//     so it is the all-core clock under load; /proc/cpuinfo "cpu MHz" is printed for comparison (in a VM it is
//     usually the nominal TSC rate). An FMA-throughput loop is also timed as an empirical ceiling.
// Timing: one warm-up run, then the median of at least R repetitions (R = 7 for SGEMM and 5 for conv, 3 with
// --quick; kernels shorter than 50 ms get more, up to 50 runs or about 0.25 s).
// Reference kernels are single-threaded direct loops with double accumulation; they are timed on reduced
// problems of the same layout (fewer rows for GEMM, one image for conv) and their rate is reported as GFLOP/s.
//
// Usage: bench_cpu_kernels [--quick] [--json PATH] [--filter SUBSTRING]
//        (threads: OMP_NUM_THREADS; run on an idle machine: the run reports the CPU time other processes took)
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
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "tensor/cpu/conv2d.h"
#include "tensor/cpu/gemm.h"
#include "tensor/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CXR_BENCH_X86 1
#include <immintrin.h>
#else
#define CXR_BENCH_X86 0
#endif

using namespace cxr::tensor::cpu;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median wall time of at least `reps` runs after one warm-up run; short kernels get more runs (up to 50, about
// 0.25 s in all) so that a single disturbance cannot move the median.
double time_median(int reps, const std::function<void()>& fn) {
    const auto tw = Clock::now();
    fn();
    const double warm = std::max(seconds_since(tw), 1e-6);
    reps = std::max(reps, std::min(50, int(0.25 / warm)));
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        fn();
        t.push_back(seconds_since(t0));
    }
    return median(t);
}

int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(gen);
    return v;
}

// |got - ref| <= atol + rtol*|ref| everywhere; on failure prints what and where, returns false.
bool validate(const char* what, const float* got, const float* ref, int64_t n, double atol, double rtol) {
    double max_err = 0.0;
    int64_t first_bad = -1;
    for (int64_t i = 0; i < n; ++i) {
        const double err = std::fabs(double(got[i]) - double(ref[i]));
        if (!(err <= max_err)) max_err = err;
        if (!(err <= atol + rtol * std::fabs(double(ref[i]))) && first_bad < 0) first_bad = i;
    }
    if (first_bad >= 0) {
        std::fprintf(stderr, "VALIDATION FAILED for %s: max error %.3g (atol %.3g, rtol %.3g), first bad index %lld: "
                     "got %.9g ref %.9g\n", what, max_err, atol, rtol, static_cast<long long>(first_bad),
                     double(got[first_bad]), double(ref[first_bad]));
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// Machine description and peak
// ---------------------------------------------------------------------------------------------------------

struct Machine {
    std::string model = "unknown";
    std::string flags_of_interest;  // the SIMD flags that decide the peak
    double cpuinfo_mhz = 0.0;
    int cores = 1;  // OpenMP threads used (one per core on this machine)
    double measured_ghz = 0.0;
    int flop_per_cycle = 8;
    std::string flop_per_cycle_reason;
    double peak_gflops = 0.0;
    double fma_loop_gflops = 0.0;  // empirical FMA throughput, all cores
};

std::string cpuinfo_field(const std::string& key) {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size(), key) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                std::string v = line.substr(colon + 1);
                v.erase(0, v.find_first_not_of(" \t"));
                return v;
            }
        }
    }
    return "";
}

bool has_flag(const std::string& flags, const std::string& f) {
    std::istringstream is(flags);
    std::string tok;
    while (is >> tok)
        if (tok == f) return true;
    return false;
}

// Clock in GHz from a chain of dependent integer adds (1 cycle each); all threads run it at once and the
// median thread rate is returned. Returns 0 where the compiler barrier trick is unavailable.
double measure_clock_ghz() {
#if defined(__GNUC__) || defined(__clang__)
    // Many short trials, best one kept: a trial disturbed by another process only lowers its own rate.
    const int64_t iters = 10'000'000;  // x 8 adds: 80M cycles, ~25 ms at 3 GHz
    std::vector<double> ghz(size_t(num_threads()), 0.0);
#pragma omp parallel
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        uint64_t x = uint64_t(tid);
        double best = 0.0;
        for (int trial = 0; trial < 12; ++trial) {
            const auto t0 = Clock::now();
            for (int64_t i = 0; i < iters; ++i) {
                // Each add depends on the previous one; the empty asm stops the compiler from merging them.
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
                x += 1; asm volatile("" : "+r"(x));
            }
            const double dt = seconds_since(t0);
            best = std::max(best, 8.0 * double(iters) / dt / 1e9);
        }
        ghz[size_t(tid)] = best + 0.0 * double(x & 1);
    }
    return median(ghz);
#else
    return 0.0;
#endif
}

#if CXR_BENCH_X86
// 12 independent FMA chains per thread (more than latency x units = 4 x 2 = 8 in flight): measures the FMA
// throughput the hardware actually sustains, an upper bound for any GEMM kernel.
__attribute__((target("avx2,fma"))) double fma_loop_gflops_one_thread(int64_t iters) {
    // Twelve named accumulators (not an array) so that they stay in registers at any optimisation level.
    __m256 a0 = _mm256_set1_ps(1.00f), a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f);
    __m256 a3 = _mm256_set1_ps(1.03f), a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f);
    __m256 a6 = _mm256_set1_ps(1.06f), a7 = _mm256_set1_ps(1.07f), a8 = _mm256_set1_ps(1.08f);
    __m256 a9 = _mm256_set1_ps(1.09f), a10 = _mm256_set1_ps(1.10f), a11 = _mm256_set1_ps(1.11f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    const auto t0 = Clock::now();
    for (int64_t it = 0; it < iters; ++it) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    const double dt = seconds_since(t0);
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                     _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                                   _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
    volatile float keep = _mm256_cvtss_f32(sum);
    (void)keep;
    return double(iters) * 12.0 * 16.0 / dt / 1e9;
}
#endif

double measure_fma_gflops(bool avx2_fma) {
#if CXR_BENCH_X86
    if (!avx2_fma) return 0.0;
    double total = 0.0;
#pragma omp parallel reduction(+ : total)
    {
        double best = 0.0;
        for (int trial = 0; trial < 10; ++trial) best = std::max(best, fma_loop_gflops_one_thread(5'000'000));
        total += best;
    }
    return total;
#else
    (void)avx2_fma;
    return 0.0;
#endif
}

Machine describe_machine() {
    Machine m;
    const std::string model = cpuinfo_field("model name");
    if (!model.empty()) m.model = model;
    const std::string flags = cpuinfo_field("flags");
    const std::string mhz = cpuinfo_field("cpu MHz");
    if (!mhz.empty()) m.cpuinfo_mhz = std::atof(mhz.c_str());
    for (const char* f : {"sse2", "avx", "avx2", "fma", "avx512f"})
        if (has_flag(flags, f)) m.flags_of_interest += std::string(m.flags_of_interest.empty() ? "" : " ") + f;
    m.cores = num_threads();
    const bool avx2_fma = has_flag(flags, "avx2") && has_flag(flags, "fma");
    if (has_flag(flags, "avx512f")) {
        m.flop_per_cycle = 64;
        m.flop_per_cycle_reason = "avx512f: 2 FMA units x 16 fp32 lanes x 2 FLOP/FMA (assumed 2 units)";
    } else if (avx2_fma) {
        m.flop_per_cycle = 32;
        m.flop_per_cycle_reason = "avx2+fma: 2 FMA units x 8 fp32 lanes x 2 FLOP/FMA";
    } else if (has_flag(flags, "avx")) {
        m.flop_per_cycle = 16;
        m.flop_per_cycle_reason = "avx, no fma: 1 add unit x 8 lanes + 1 mul unit x 8 lanes";
    } else {
        m.flop_per_cycle = 8;
        m.flop_per_cycle_reason = "sse: 1 add + 1 mul unit x 4 lanes";
    }
    m.measured_ghz = measure_clock_ghz();
    const double ghz = m.measured_ghz > 0.0 ? m.measured_ghz : m.cpuinfo_mhz / 1000.0;
    m.peak_gflops = double(m.cores) * ghz * double(m.flop_per_cycle);
    m.fma_loop_gflops = measure_fma_gflops(avx2_fma);
    return m;
}

// ---------------------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------------------

struct Result {
    std::string kernel;  // "sgemm" or "conv2d_forward", ...
    std::string name;    // shape label
    double flops = 0.0;  // of the fast (benchmarked) problem
    double ref_gflops = 0.0;
    double fast_gflops = 0.0;
    double fast_ms = 0.0;
    double peak_fraction = 0.0;
    std::string ref_note;
};

void print_result(const Result& r) {
    std::printf("  %-16s %-44s ref %7.2f GFLOP/s | fast %8.2f GFLOP/s (%8.2f ms) | %6.1fx | %5.1f%% of peak\n",
                r.kernel.c_str(), r.name.c_str(), r.ref_gflops, r.fast_gflops, r.fast_ms,
                r.ref_gflops > 0 ? r.fast_gflops / r.ref_gflops : 0.0, 100.0 * r.peak_fraction);
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------------------
// SGEMM
// ---------------------------------------------------------------------------------------------------------

using SgemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                         float, float*, int64_t);

bool bench_sgemm(int64_t n, int reps, const Machine& m, SgemmFn fast, const char* label, bool time_reference,
                 std::vector<Result>& out) {
    const auto A = random_floats(n * n, 1), B = random_floats(n * n, 2);
    std::vector<float> C(size_t(n * n));
    // Validate: full fast product, reference on 3 blocks of rows (first, middle, last) of the same data.
    fast(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
    const int64_t rows = std::min<int64_t>(n, 8);
    for (int64_t r0 : {int64_t(0), n / 2, n - rows}) {
        std::vector<float> R(size_t(rows * n));
        gemm_reference<float>(false, false, rows, n, n, 1.0f, A.data() + r0 * n, n, B.data(), n, 0.0f, R.data(), n);
        const std::string what = std::string(label) + " " + std::to_string(n) + " rows " + std::to_string(r0);
        if (!validate(what.c_str(), C.data() + r0 * n, R.data(), rows * n, 1e-6 * double(n + 1), 1e-5)) return false;
    }
    Result r;
    r.kernel = label;
    r.name = std::to_string(n) + "x" + std::to_string(n) + "x" + std::to_string(n);
    r.flops = 2.0 * double(n) * double(n) * double(n);
    const double t = time_median(reps, [&] { fast(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f,
                                                  C.data(), n); });
    r.fast_ms = 1e3 * t;
    r.fast_gflops = r.flops / t / 1e9;
    r.peak_fraction = r.fast_gflops / m.peak_gflops;
    if (time_reference) {
        const int64_t ref_rows = std::min<int64_t>(n, 32);
        std::vector<float> R(size_t(ref_rows * n));
        const double tr = time_median(1, [&] {
            gemm_reference<float>(false, false, ref_rows, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, R.data(), n);
        });
        r.ref_gflops = 2.0 * double(ref_rows) * double(n) * double(n) / tr / 1e9;
        r.ref_note = "reference timed on the first " + std::to_string(ref_rows) + " rows";
    }
    print_result(r);
    out.push_back(r);
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------------------------

struct ConvCase {
    std::string name;
    Conv2dParams p;
};

Conv2dParams conv(int64_t N, int64_t C_in, int64_t HW, int64_t C_out, int64_t k, int64_t stride, int64_t pad) {
    Conv2dParams p;
    p.N = N;
    p.C_in = C_in;
    p.H = p.W = HW;
    p.C_out = C_out;
    p.kH = p.kW = k;
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = pad;
    return p;
}

enum class Direction { Forward, BackwardInput, BackwardWeight };

const char* direction_name(Direction d) {
    switch (d) {
        case Direction::Forward: return "conv2d_fwd";
        case Direction::BackwardInput: return "conv2d_bwd_input";
        case Direction::BackwardWeight: return "conv2d_bwd_weight";
    }
    return "?";
}

bool bench_conv(const ConvCase& c, Direction dir, int reps, const Machine& m, std::vector<Result>& out) {
    const Conv2dParams& p = c.p;
    p.validate();
    const int64_t x_n = p.C_in * p.H * p.W, y_n = p.C_out * p.H_out() * p.W_out();
    const int64_t w_n = p.C_out * (p.C_in / p.groups) * p.kH * p.kW;
    const auto x = random_floats(p.N * x_n, 3), w = random_floats(w_n, 4), gy = random_floats(p.N * y_n, 5);
    const auto bias = random_floats(p.C_out, 6);
    std::vector<float> y(static_cast<size_t>(p.N * y_n)), gx(static_cast<size_t>(p.N * x_n)), gw(static_cast<size_t>(w_n));

    Conv2dParams p1 = p;  // one image: the reference problem
    p1.N = 1;
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;

    std::function<void()> run_fast, run_ref1;
    std::vector<float> ref1;
    if (dir == Direction::Forward) {
        run_fast = [&] { conv2d_forward_fast<float>(p, x.data(), w.data(), bias.data(), y.data()); };
        ref1.resize(size_t(y_n));
        run_ref1 = [&] { conv2d_forward_reference<float>(p1, x.data(), w.data(), bias.data(), ref1.data()); };
    } else if (dir == Direction::BackwardInput) {
        run_fast = [&] { conv2d_backward_input_fast<float>(p, gy.data(), w.data(), gx.data()); };
        ref1.resize(size_t(x_n));
        run_ref1 = [&] { conv2d_backward_input_reference<float>(p1, gy.data(), w.data(), ref1.data()); };
    } else {
        run_fast = [&] { conv2d_backward_weight_fast<float>(p, x.data(), gy.data(), gw.data()); };
        ref1.resize(size_t(w_n));
        run_ref1 = [&] { conv2d_backward_weight_reference<float>(p1, x.data(), gy.data(), ref1.data()); };
    }

    // Validate on the benchmarked data. Forward / backward input: image 0 of the full fast run against the
    // one-image reference. Backward weight sums over images, so validate a one-image fast run instead.
    const std::string what = std::string(direction_name(dir)) + " " + c.name;
    const auto t_ref0 = Clock::now();
    run_ref1();
    const double t_ref_first = seconds_since(t_ref0);
    if (dir == Direction::BackwardWeight) {
        std::vector<float> gw1(static_cast<size_t>(w_n));
        conv2d_backward_weight_fast<float>(p1, x.data(), gy.data(), gw1.data());
        const double red = double(p.H_out() * p.W_out());
        if (!validate(what.c_str(), gw1.data(), ref1.data(), w_n, 1e-6 * (red + 1), 1e-5)) return false;
    } else {
        run_fast();
        const float* got = dir == Direction::Forward ? y.data() : gx.data();
        const double red = dir == Direction::Forward ? double(Cg * p.kH * p.kW) : double(Og * p.kH * p.kW);
        if (!validate(what.c_str(), got, ref1.data(), int64_t(ref1.size()), 1e-6 * (red + 1), 1e-5)) return false;
    }

    Result r;
    r.kernel = direction_name(dir);
    r.name = c.name;
    r.flops = p.flops();
    const double t = time_median(reps, run_fast);
    r.fast_ms = 1e3 * t;
    r.fast_gflops = r.flops / t / 1e9;
    r.peak_fraction = r.fast_gflops / m.peak_gflops;
    // Reference rate on one image: the first (validation) run plus more runs while they are cheap.
    std::vector<double> tr = {t_ref_first};
    for (int i = 1; i < 3 && t_ref_first < 0.5; ++i) {
        const auto t0 = Clock::now();
        run_ref1();
        tr.push_back(seconds_since(t0));
    }
    r.ref_gflops = p1.flops() / median(tr) / 1e9;
    r.ref_note = "reference timed on one image (N=1), " + std::to_string(tr.size()) + " run(s)";
    print_result(r);
    out.push_back(r);
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------------

std::string json_escape(const std::string& s) {
    std::string o;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') o += '\\';
        if (static_cast<unsigned char>(ch) < 0x20) continue;
        o += ch;
    }
    return o;
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// Busy CPU seconds of the whole machine (all CPUs, from /proc/stat) and of this process (getrusage): their
// difference over the run is the CPU time other processes took, i.e. how disturbed the measurements were.
struct CpuTimes {
    double machine_busy_s = -1.0;
    double self_s = 0.0;
    double wall_s = 0.0;
};

CpuTimes cpu_times_now() {
    CpuTimes t;
    std::ifstream in("/proc/stat");
    std::string cpu;
    long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal && cpu == "cpu") {
        const double ticks = double(sysconf(_SC_CLK_TCK));
        t.machine_busy_s = double(user + nice + system + irq + softirq + steal) / ticks;
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    t.self_s = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    t.wall_s = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    return t;
}

double load_average() {
    std::ifstream in("/proc/loadavg");
    double l = -1.0;
    in >> l;
    return l;
}

void write_json(const std::string& path, const Machine& m, const std::vector<Result>& results, bool quick,
                double load, double other_cpu_s, double wall_s) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream os(tmp);
        CXR_CHECK(os.good(), "bench: cannot write ", tmp);
        os.precision(6);
        os << "{\n";
        os << "  \"benchmark\": \"bench_cpu_kernels\",\n";
        os << "  \"date_utc\": \"" << utc_now() << "\",\n";
        os << "  \"quick\": " << (quick ? "true" : "false") << ",\n";
        os << "  \"load_average_at_start\": " << load << ",\n";
        os << "  \"other_processes_cpu_s\": " << other_cpu_s << ",\n";
        os << "  \"run_wall_s\": " << wall_s << ",\n";
        os << "  \"sgemm_kernel\": \"" << sgemm_kernel_name() << "\",\n";
        os << "  \"machine\": {\n";
        os << "    \"model\": \"" << json_escape(m.model) << "\",\n";
        os << "    \"simd_flags\": \"" << m.flags_of_interest << "\",\n";
        os << "    \"threads\": " << m.cores << ",\n";
        os << "    \"cpuinfo_mhz\": " << m.cpuinfo_mhz << ",\n";
        os << "    \"measured_clock_ghz\": " << m.measured_ghz << ",\n";
        os << "    \"flop_per_cycle_per_core\": " << m.flop_per_cycle << ",\n";
        os << "    \"flop_per_cycle_reason\": \"" << json_escape(m.flop_per_cycle_reason) << "\",\n";
        os << "    \"peak_fp32_gflops\": " << m.peak_gflops << ",\n";
        os << "    \"peak_formula\": \"threads x measured clock x FLOP/cycle/core\",\n";
        os << "    \"fma_loop_gflops\": " << m.fma_loop_gflops << "\n";
        os << "  },\n";
        os << "  \"results\": [\n";
        for (size_t i = 0; i < results.size(); ++i) {
            const Result& r = results[i];
            os << "    {\"kernel\": \"" << r.kernel << "\", \"shape\": \"" << json_escape(r.name)
               << "\", \"gflop\": " << r.flops / 1e9 << ", \"fast_ms\": " << r.fast_ms
               << ", \"fast_gflops\": " << r.fast_gflops << ", \"ref_gflops\": " << r.ref_gflops
               << ", \"speedup\": " << (r.ref_gflops > 0 ? r.fast_gflops / r.ref_gflops : 0.0)
               << ", \"peak_fraction\": " << r.peak_fraction << ", \"ref_note\": \"" << json_escape(r.ref_note)
               << "\"}" << (i + 1 < results.size() ? "," : "") << "\n";
        }
        os << "  ]\n}\n";
        CXR_CHECK(os.good(), "bench: error while writing ", tmp);
    }
    CXR_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "bench: cannot rename ", tmp, " to ", path);
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string json_path;
    std::string filter;  // run only the benchmarks whose "kernel shape" label contains this
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
        } else if (a == "--json" && i + 1 < argc) {
            json_path = argv[++i];
        } else if (a == "--filter" && i + 1 < argc) {
            filter = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--quick] [--json PATH] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    try {
        const double load = load_average();
        const CpuTimes start = cpu_times_now();
        const Machine m = describe_machine();
        std::printf("cxr bench_cpu_kernels  (%s)\n", utc_now().c_str());
        std::printf("machine: %s, %d thread(s) (OMP_NUM_THREADS), SIMD flags: %s\n", m.model.c_str(), m.cores,
                    m.flags_of_interest.c_str());
        std::printf("peak fp32 = threads x clock x FLOP/cycle/core = %d x %.3f GHz x %d = %.1f GFLOP/s\n", m.cores,
                    m.measured_ghz > 0 ? m.measured_ghz : m.cpuinfo_mhz / 1000.0, m.flop_per_cycle, m.peak_gflops);
        std::printf("  FLOP/cycle/core: %s\n", m.flop_per_cycle_reason.c_str());
        std::printf("  clock: %.3f GHz measured with dependent integer adds on all threads at once "
                    "(/proc/cpuinfo says %.0f MHz, often the nominal rate in a VM)\n",
                    m.measured_ghz, m.cpuinfo_mhz);
        std::printf("  assumes the FMA units run at the integer clock and both FMA pipes are available\n");
        if (m.fma_loop_gflops > 0)
            std::printf("  empirical ceiling: an FMA-only register loop reaches %.1f GFLOP/s (%.1f%% of peak)\n",
                        m.fma_loop_gflops, 100.0 * m.fma_loop_gflops / m.peak_gflops);
        std::printf("sgemm micro-kernel: %s\n", sgemm_kernel_name());

        const int gemm_reps = quick ? 3 : 7;
        const int conv_reps = quick ? 3 : 5;
        std::vector<Result> results;
        bool ok = true;

        std::printf("\nSGEMM (row-major, no transposes, alpha=1, beta=0), median of >= %d runs:\n", gemm_reps);
        std::vector<int64_t> sizes = {256, 512, 1024, 2048};
        if (quick) sizes = {256, 512, 1024};
        auto selected = [&](const std::string& label) { return label.find(filter) != std::string::npos; };
        for (int64_t n : sizes)
            if (selected("sgemm " + std::to_string(n)))
                ok = ok && bench_sgemm(n, gemm_reps, m, sgemm_fast, "sgemm", true, results);
        // The portable micro-kernel (what a CPU without AVX2 runs), to show what the AVX2 kernel buys.
        if (selected("sgemm_portable 1024"))
            ok = ok && bench_sgemm(1024, gemm_reps, m, sgemm_fast_portable, "sgemm_portable", false, results);

        std::vector<ConvCase> cases = {
            {"resnet50 64->64 3x3 56x56 N=1", conv(1, 64, 56, 64, 3, 1, 1)},
            {"resnet50 64->64 3x3 56x56 N=8", conv(8, 64, 56, 64, 3, 1, 1)},
            {"resnet50 256->64 1x1 56x56 N=8", conv(8, 256, 56, 64, 1, 1, 0)},
            {"resnet50 128->128 3x3 28x28 N=8", conv(8, 128, 28, 128, 3, 1, 1)},
            {"resnet50 128->128 3x3 s2 56x56 N=8", conv(8, 128, 56, 128, 3, 2, 1)},
            {"densenet121 128->32 3x3 56x56 N=8", conv(8, 128, 56, 32, 3, 1, 1)},
            {"densenet121 224->128 1x1 56x56 N=8", conv(8, 224, 56, 128, 1, 1, 0)},
            {"sd-unet 320->320 3x3 64x64 N=1", conv(1, 320, 64, 320, 3, 1, 1)},
        };
        if (quick) cases = {cases[0], cases[2], cases[5]};
        std::printf("\nconv2d (float, NCHW, im2col + sgemm_fast), median of >= %d runs:\n", conv_reps);
        for (const auto& c : cases)
            if (selected(std::string(direction_name(Direction::Forward)) + " " + c.name))
                ok = ok && bench_conv(c, Direction::Forward, conv_reps, m, results);
        std::vector<ConvCase> backward_cases = {cases[quick ? 0 : 1]};
        if (!quick) backward_cases.push_back(cases[3]);
        for (const auto& c : backward_cases)
            for (Direction d : {Direction::BackwardInput, Direction::BackwardWeight})
                if (selected(std::string(direction_name(d)) + " " + c.name))
                    ok = ok && bench_conv(c, d, conv_reps, m, results);
        if (!ok) {
            std::fprintf(stderr, "a fast kernel disagrees with its reference; no results written\n");
            return 1;
        }
        const CpuTimes end = cpu_times_now();
        const double wall = end.wall_s - start.wall_s;
        double other = -1.0;
        if (start.machine_busy_s >= 0 && end.machine_busy_s >= 0)
            other = std::max(0.0, (end.machine_busy_s - start.machine_busy_s) - (end.self_s - start.self_s));
        std::printf("\nrun took %.1f s; other processes used %.2f CPU-s meanwhile (%.1f%% of one core)%s\n", wall,
                    other, 100.0 * other / wall,
                    other > 0.05 * wall ? "  WARNING: the machine was not idle, numbers may be low" : "");
        if (!json_path.empty()) {
            write_json(json_path, m, results, quick, load, other, wall);
            std::printf("\nwrote %s\n", json_path.c_str());
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
