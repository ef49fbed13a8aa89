// Test helpers for the raw-pointer CPU kernels (tests/tensor/test_cpu_*.cpp): element-wise comparison with the
// tolerance rule of DESIGN.md §5, |got - ref| <= atol + rtol * |ref|, reporting the max error, the first bad
// index and how much of the limit was used; plus a seeded uniform filler.
// Two NaNs at the same index count as equal (untouched NaN padding); a NaN on one side only is a failure.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace cxr::test {

struct CloseReport {
    bool ok = true;
    std::string message;  // empty when ok
};

template <class T>
CloseReport check_close(const T* got, const T* ref, int64_t count, double atol, double rtol) {
    double max_err = 0.0;
    double max_used = 0.0;  // max over elements of |got - ref| / (atol + rtol * |ref|)
    int64_t first_bad = -1;
    int64_t bad_count = 0;
    for (int64_t i = 0; i < count; ++i) {
        const double g = double(got[i]);
        const double r = double(ref[i]);
        if (std::isnan(g) && std::isnan(r)) continue;
        const double err = (std::isnan(g) || std::isnan(r)) ? INFINITY : std::fabs(g - r);
        const double limit = atol + rtol * std::fabs(r);
        if (err > max_err) max_err = err;
        const double used = err / limit;
        if (used > max_used) max_used = used;
        if (!(err <= limit)) {
            if (first_bad < 0) first_bad = i;
            ++bad_count;
        }
    }
    CloseReport report;
    if (first_bad >= 0) {
        std::ostringstream os;
        os.precision(9);
        os << bad_count << " of " << count << " elements out of tolerance (atol=" << atol << ", rtol=" << rtol
           << "); max error " << max_err << ", " << max_used << "x the limit; first bad index " << first_bad
           << ": got " << double(got[first_bad]) << ", ref " << double(ref[first_bad]);
        report.ok = false;
        report.message = os.str();
    }
    return report;
}

template <class T>
std::vector<T> random_uniform(int64_t count, uint32_t seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<T> v(static_cast<size_t>(count));
    for (auto& x : v) x = T(dist(gen));
    return v;
}

}  // namespace cxr::test

// Use as: CXR_REQUIRE_CLOSE(got_ptr, ref_ptr, count, atol, rtol); prints the report on failure.
#define CXR_REQUIRE_CLOSE(got, ref, count, atol, rtol)                                   \
    do {                                                                                 \
        const auto cxr_report_ = ::cxr::test::check_close((got), (ref), (count), (atol), (rtol)); \
        INFO(cxr_report_.message);                                                       \
        REQUIRE(cxr_report_.ok);                                                         \
    } while (0)
