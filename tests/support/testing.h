// Test helpers shared by every test file (DESIGN.md §5):
//   expect_close  — |a - b| <= atol + rtol·|ref| per element; a failure prints the max error, the first bad
//                   index and how much of the limit was used;
//   gradcheck     — central differences in f64 against the op's backward, for every input that requires grad;
//   Fixtures      — reads a committed PyTorch fixture file (safetensors + JSON record) by tensor name;
//   CXR_SKIP_WITHOUT_GPU — a visible skip for [gpu] tests on a machine without a device;
//   TempDir       — a fresh scratch folder removed when the test ends;
//   error_of      — the message of the cxr::Error a callable throws ("" when it throws nothing);
//   fixture_record — the JSON record beside a fixture file (tests/fixtures/<stem>.json), read once.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace cxr::testing {

using tensor::Tensor;

struct CloseResult {
    bool ok = true;
    std::string message;
};

// Compares two tensors of the same shape (any dtypes/devices; compared in double on the CPU).
CloseResult check_close(const Tensor& actual, const Tensor& expected, double atol, double rtol);

// Default tolerances tied to the dtype of `actual`.
double default_atol(tensor::DType dt);
double default_rtol(tensor::DType dt);

// Random f64 input on the CPU from a fixed seed (uniform in [lo, hi)).
Tensor random_input(const tensor::Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                    tensor::DType dtype = tensor::DType::f64);

// Checks the backward of fn at `inputs` (f64, the ones to check marked requires_grad) against central
// differences of sum(fn(inputs) * w) for a fixed random weighting w. Returns a report; ok=false on mismatch.
CloseResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
                      double eps = 1e-6, double atol = 1e-6, double rtol = 1e-4);

// A fixture file written by tests/fixtures/tools/*.py: tensors by name plus the JSON record beside it.
class Fixtures {
public:
    explicit Fixtures(const std::string& stem);  // e.g. "ops" -> tests/fixtures/ops.safetensors + ops.json
    bool has(const std::string& name) const;
    Tensor get(const std::string& name) const;  // throws naming the file when absent
    std::vector<std::string> names_with_prefix(const std::string& prefix) const;
    std::string path() const { return path_; }

private:
    std::string path_;
    std::map<std::string, Tensor> tensors_;
};

// The message of the cxr::Error thrown by fn ("" when nothing is thrown; other exceptions propagate).
std::string error_of(const std::function<void()>& fn);

// tests/fixtures/<stem>.json, parsed once per stem (throws naming the file and the tool that makes it when absent).
const nlohmann::json& fixture_record(const std::string& stem);

// Sets an environment variable for one scope (nullptr: unsets it) and restores the previous state, for the
// switches read at each call (CXR_CUBLAS, CXR_CUDNN, CXR_GEMM_TC, ...).
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        const char* old = std::getenv(name);
        had_ = old != nullptr;
        if (had_) old_ = old;
        if (value) setenv(name, value, 1);
        else unsetenv(name);
    }
    ~ScopedEnv() {
        if (had_) setenv(name_.c_str(), old_.c_str(), 1);
        else unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_, old_;
    bool had_ = false;
};

bool gpu_available();

// Where the real reference data lives: $CXR_REAL_DATA, else ../shared/data beside the repository; "" if absent.
std::string real_data_dir();

// Reports a skipped test. Under ctest (CXR_SKIP_EXIT_CODE set by CMake) it prints the reason and ends the process
// with that code, so ctest lists the test as "Skipped"; in a direct run of cxr_tests it returns and the caller
// WARNs and returns, so the remaining tests still run.
void report_skip(const std::string& why);

// A fresh, empty folder under the system temp directory, unique per process and object ("cxr_test_<name>_<pid>_<k>"),
// removed with everything in it when the object goes out of scope.
class TempDir {
public:
    explicit TempDir(const std::string& name = "tmp");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }  // a path inside

private:
    std::string path_;
};

}  // namespace cxr::testing

#define CXR_EXPECT_CLOSE(actual, expected, atol, rtol)                                    \
    do {                                                                                  \
        auto cxr_res_ = ::cxr::testing::check_close((actual), (expected), (atol), (rtol)); \
        INFO(cxr_res_.message);                                                           \
        CHECK(cxr_res_.ok);                                                               \
    } while (0)

#define CXR_EXPECT_GRADCHECK(...)                              \
    do {                                                       \
        auto cxr_res_ = ::cxr::testing::gradcheck(__VA_ARGS__); \
        INFO(cxr_res_.message);                                \
        CHECK(cxr_res_.ok);                                    \
    } while (0)

#define CXR_SKIP(why)                           \
    do {                                        \
        ::cxr::testing::report_skip(why);       \
        WARN("SKIPPED: " << (why));             \
        return;                                 \
    } while (0)

#define CXR_SKIP_WITHOUT_GPU()                                                          \
    do {                                                                                \
        if (!::cxr::testing::gpu_available())                                           \
            CXR_SKIP("no CUDA device on this machine (this [gpu] test did not run)");   \
    } while (0)

// Skips a [real-data] test when ../shared/data (or $CXR_REAL_DATA) is absent.
#define CXR_SKIP_WITHOUT_REAL_DATA()                                                                      \
    do {                                                                                                  \
        if (::cxr::testing::real_data_dir().empty())                                                      \
            CXR_SKIP("real data not found (set CXR_REAL_DATA or place shared/data beside the repository)"); \
    } while (0)
