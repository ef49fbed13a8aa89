// Helpers for the classification/statistics/fairness tests: vectors out of the scikit-learn/scipy fixture
// tests/fixtures/metrics.safetensors (made by tests/fixtures/tools/make_metrics_fixtures.py).
#pragma once

#include <string>
#include <vector>

#include "tests/support/testing.h"

namespace cxr::testing {

inline const Fixtures& metrics_fixtures() {
    static const Fixtures f("metrics");
    return f;
}
inline std::vector<double> fx(const std::string& name) {
    return metrics_fixtures().get(name).contiguous().to_vector<double>();
}
inline double fx1(const std::string& name) { return fx(name).at(0); }
inline std::vector<int> fx_labels(const std::string& name) {
    std::vector<int> out;
    for (double v : fx(name)) out.push_back((int)v);
    return out;
}

}  // namespace cxr::testing
