// Implementation of the shared test helpers (see testing.h).
#include "tests/support/testing.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <cmath>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/generator.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::testing {

using namespace cxr::tensor;

CloseResult check_close(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
    CloseResult r;
    std::ostringstream os;
    if (actual.sizes() != expected.sizes()) {
        r.ok = false;
        os << "shape mismatch: actual " << shape_str(actual.sizes()) << " vs expected " << shape_str(expected.sizes());
        r.message = os.str();
        return r;
    }
    std::vector<double> a = actual.to_vector<double>();
    std::vector<double> e = expected.to_vector<double>();
    double max_err = 0.0, max_used = 0.0;
    int64_t first_bad = -1, n_bad = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
        bool same_inf = std::isinf(a[i]) && a[i] == e[i];
        if (both_nan || same_inf) continue;
        double err = std::fabs(a[i] - e[i]);
        double lim = atol + rtol * std::fabs(e[i]);
        if (std::isnan(err)) err = INFINITY;
        max_err = std::max(max_err, err);
        max_used = std::max(max_used, lim > 0 ? err / lim : (err > 0 ? INFINITY : 0.0));
        if (!(err <= lim)) {
            ++n_bad;
            if (first_bad < 0) first_bad = (int64_t)i;
        }
    }
    r.ok = n_bad == 0;
    os << "shape " << shape_str(actual.sizes()) << ", max |err| = " << max_err << ", " << (100.0 * max_used)
       << "% of the limit (atol " << atol << ", rtol " << rtol << ")";
    if (!r.ok)
        os << "; " << n_bad << " bad elements, first at flat index " << first_bad << ": actual " << a[first_bad]
           << " expected " << e[first_bad];
    r.message = os.str();
    return r;
}

double default_atol(DType dt) {
    switch (dt) {
        case DType::f64: return 1e-10;
        case DType::f32: return 1e-5;
        case DType::f16: return 1e-3;
        case DType::bf16: return 1e-2;
        default: return 0.0;
    }
}

double default_rtol(DType dt) {
    switch (dt) {
        case DType::f64: return 1e-8;
        case DType::f32: return 1e-5;
        case DType::f16: return 1e-3;
        case DType::bf16: return 1e-2;
        default: return 0.0;
    }
}

Tensor random_input(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype) {
    Generator g(seed);
    Tensor u = rand(shape, Options(DType::f64), &g);
    return cast(add(mul(u, hi - lo), lo), dtype);
}

CloseResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
                      double eps, double atol, double rtol) {
    CloseResult result;
    std::ostringstream os;
    // Analytic: backward of sum(out * w).
    Tensor out = fn(inputs);
    Tensor w = random_input(out.sizes(), 12345, 0.5, 1.5, out.dtype());
    for (auto& t : inputs)
        if (t.defined() && t.requires_grad()) t.zero_grad();
    sum(mul(out, w)).backward();

    for (size_t k = 0; k < inputs.size(); ++k) {
        Tensor& x = inputs[k];
        if (!x.defined() || !x.requires_grad()) continue;
        CXR_CHECK(x.dtype() == DType::f64 && x.is_contiguous(), "gradcheck needs contiguous f64 inputs");
        Tensor analytic = x.grad();
        if (!analytic.defined()) analytic = zeros_like(x);
        Tensor numeric = zeros_like(x);
        double* xp = x.data<double>();
        double* np = numeric.data<double>();
        NoGradGuard ng;
        for (int64_t i = 0; i < x.numel(); ++i) {
            double orig = xp[i];
            xp[i] = orig + eps;
            double fp = sum(mul(fn(inputs), w)).item();
            xp[i] = orig - eps;
            double fm = sum(mul(fn(inputs), w)).item();
            xp[i] = orig;
            np[i] = (fp - fm) / (2 * eps);
        }
        CloseResult c = check_close(analytic, numeric, atol, rtol);
        os << "input " << k << ": " << c.message << "\n";
        if (!c.ok) result.ok = false;
    }
    result.message = os.str();
    return result;
}

Fixtures::Fixtures(const std::string& stem) {
    path_ = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/" + stem + ".safetensors";
    tensors_ = load_tensor_file(path_).tensors;
}

bool Fixtures::has(const std::string& name) const { return tensors_.count(name) > 0; }

Tensor Fixtures::get(const std::string& name) const {
    auto it = tensors_.find(name);
    CXR_CHECK(it != tensors_.end(), "fixture '", name, "' not found in ", path_,
              " (regenerate with tests/fixtures/tools/)");
    return it->second;
}

std::vector<std::string> Fixtures::names_with_prefix(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto& kv : tensors_)
        if (kv.first.rfind(prefix, 0) == 0) out.push_back(kv.first);
    return out;
}

bool gpu_available() { return device_available(DeviceType::CUDA); }

std::string real_data_dir() {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("CXR_REAL_DATA")) return fs::is_directory(env) ? std::string(env) : "";
    fs::path p = fs::path(CXR_SOURCE_DIR).parent_path() / "shared" / "data";
    return fs::is_directory(p) ? p.string() : "";
}

void report_skip(const std::string& why) {
    const char* code = std::getenv("CXR_SKIP_EXIT_CODE");
    if (!code) return;
    std::printf("SKIPPED: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(std::atoi(code));
}

TempDir::TempDir(const std::string& name) {
    static std::atomic<int> counter{0};
    const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                    ("cxr_test_" + name + "_" + std::to_string(::getpid()) + "_" +
                                     std::to_string(counter++));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    path_ = p.string();
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const cxr::Error& e) {
        return e.what();
    }
    return "";
}

const nlohmann::json& fixture_record(const std::string& stem) {
    static std::mutex mu;
    static std::map<std::string, nlohmann::json> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(stem);
    if (it != cache.end()) return it->second;
    const std::string path = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/" + stem + ".json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path + " (run the make_*_fixtures.py tool that writes it)");
    return cache.emplace(stem, nlohmann::json::parse(in)).first->second;
}

}  // namespace cxr::testing
