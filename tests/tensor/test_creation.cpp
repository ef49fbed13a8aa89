// Tests of the creation family (tensor/ops/creation.h): constants, arange/linspace/eye against PyTorch values
// (tests/fixtures/creation.*, made by tests/fixtures/tools/make_creation_fixtures.py), from_vector, and the random
// tensors: reproducible per Generator seed, different across seeds, in range, statistically sound, EXACTLY equal to
// the Philox STREAM SPEC of tensor/philox.h, and consecutive draws use consecutive (block-aligned) offsets.
#include "tests/support/testing.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "tensor/generator.h"
#include "tensor/philox.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;

namespace {

double mean_of(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / (double)v.size();
}

double var_of(const std::vector<double>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / (double)(v.size() - 1);
}

}  // namespace

// ---------------------------------------------------------------- constants and ranges

TEST_CASE("creation: zeros, ones, full and the *_like variants", "[cpu][creation]") {
    for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::u8,
                     DType::boolean}) {
        INFO(dtype_name(dt));
        Tensor z = zeros({2, 3}, dt);
        CHECK(z.dtype() == dt);
        CHECK(z.sizes() == Shape{2, 3});
        CHECK(z.is_contiguous());
        CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
        CHECK(ones({3}, dt).to_vector<double>() == std::vector<double>(3, 1.0));
        CHECK(ones_like(z).dtype() == dt);
        CHECK(zeros_like(ones({4}, dt)).to_vector<double>() == std::vector<double>(4, 0.0));
    }
    CHECK(full({2, 2}, 2.5).to_vector<double>() == std::vector<double>(4, 2.5));
    CHECK(full({2}, -3.0, DType::i32).to_vector<int32_t>() == std::vector<int32_t>{-3, -3});
    CHECK(full({2}, 0.1, DType::f16).to_vector<double>()[0] == (double)(float)Half(0.1f));
    CHECK(full_like(zeros({3}, DType::f64), 7.0).to_vector<double>() == std::vector<double>(3, 7.0));
    Tensor s = scalar_tensor(4.5, DType::f64);
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.item() == 4.5);
    CHECK(zeros({0, 3}).numel() == 0);
    CHECK(zeros({}).sizes() == Shape{});
    CHECK_THROWS_WITH(zeros({2, -1}), Catch::Contains("negative"));
}

TEST_CASE("creation: arange, linspace and eye match PyTorch", "[cpu][creation]") {
    cxr::testing::Fixtures fx("creation");
    struct Range {
        double start, end, step;
    };
    const std::map<std::string, Range> aranges = {
        {"arange_int", {0.0, 7.0, 1.0}},         {"arange_frac", {0.0, 1.0, 0.1}},
        {"arange_frac2", {1.0, 2.5, 0.5}},       {"arange_neg_start", {-1.0, 1.0, 0.3}},
        {"arange_neg_step", {2.0, -1.0, -0.7}},  {"arange_inexact_end", {0.5, 3.2, 0.25}},
    };
    for (const auto& kv : aranges) {
        const Range& r = kv.second;
        INFO(kv.first);
        Tensor a64 = arange(r.start, r.end, r.step, DType::f64);
        CHECK(a64.numel() == (int64_t)std::ceil((r.end - r.start) / r.step));
        CXR_EXPECT_CLOSE(a64, fx.get(kv.first + "_f64.out"), 0.0, 0.0);
        Tensor a32 = arange(r.start, r.end, r.step, DType::f32);
        CHECK(a32.dtype() == DType::f32);
        CXR_EXPECT_CLOSE(a32, fx.get(kv.first + "_f32.out"), 0.0, 0.0);
    }
    CHECK(arange(5).dtype() == DType::i64);
    CXR_EXPECT_CLOSE(arange(5), fx.get("arange_i64_5.out"), 0, 0);
    CHECK_THROWS(arange(0.0, 1.0, 0.0));
    CHECK_THROWS(arange(0.0, 1.0, -0.5));
    CHECK(arange(1.0, 1.0, 1.0).numel() == 0);

    struct Lin {
        double start, end;
        int64_t steps;
    };
    const std::map<std::string, Lin> linspaces = {
        {"linspace_0_1_5", {0.0, 1.0, 5}},     {"linspace_neg_7", {-3.0, 2.5, 7}},
        {"linspace_frac_11", {0.1, 0.7, 11}},  {"linspace_desc_6", {2.0, -1.3, 6}},
        {"linspace_steps1", {0.3, 5.0, 1}},    {"linspace_steps2", {-1.0, 4.0, 2}},
        {"linspace_steps0", {0.0, 1.0, 0}},    {"linspace_long_100", {-7.3, 11.9, 100}},
    };
    for (const auto& kv : linspaces) {
        const Lin& l = kv.second;
        INFO(kv.first);
        Tensor v64 = linspace(l.start, l.end, l.steps, DType::f64);
        CHECK(v64.sizes() == Shape{l.steps});
        CXR_EXPECT_CLOSE(v64, fx.get(kv.first + "_f64.out"), 0.0, 0.0);
        if (l.steps >= 2) {  // both ends are exact
            CHECK(v64.to_vector<double>().front() == l.start);
            CHECK(v64.to_vector<double>().back() == l.end);
        }
        // PyTorch computes f32 linspace in float, cxr in double rounded once: equal to within an ulp of the range
        Tensor v32 = linspace(l.start, l.end, l.steps, DType::f32);
        CHECK(v32.dtype() == DType::f32);
        const double scale = std::max(std::fabs(l.start), std::fabs(l.end));
        CXR_EXPECT_CLOSE(v32, fx.get(kv.first + "_f32.out"), 2.4e-7 * scale, 0.0);
    }
    CHECK_THROWS(linspace(0.0, 1.0, -1));

    CXR_EXPECT_CLOSE(eye(3, -1, DType::f64), fx.get("eye_3.out"), 0, 0);
    CXR_EXPECT_CLOSE(eye(2, 5, DType::f64), fx.get("eye_2x5.out"), 0, 0);
    CXR_EXPECT_CLOSE(eye(4, 3, DType::f64), fx.get("eye_4x3.out"), 0, 0);
    CHECK(eye(2, 3, DType::i32).dtype() == DType::i32);
    CHECK(eye(3).dtype() == DType::f32);
}

TEST_CASE("creation: from_vector and from_blob_copy", "[cpu][creation]") {
    Tensor f = from_vector(std::vector<float>{1.5f, -2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
    CHECK(f.dtype() == DType::f32);
    CHECK(f.sizes() == Shape{2, 3});
    CHECK(f.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.f, 4.f, 5.f, 6.f});
    CHECK(from_vector(std::vector<double>{0.1, 0.2}, {2}).dtype() == DType::f64);
    CHECK(from_vector(std::vector<double>{0.1, 0.2}, {2}).to_vector<double>() == std::vector<double>{0.1, 0.2});
    CHECK(from_vector(std::vector<int64_t>{1, -2}, {2}).dtype() == DType::i64);
    CHECK(from_vector(std::vector<int32_t>{1, -2}, {1, 2}).dtype() == DType::i32);
    // converted on the way in
    Tensor h = from_vector(std::vector<double>{1.0, 0.1}, {2}, DType::f16);
    CHECK(h.dtype() == DType::f16);
    CHECK(h.to_vector<double>() == std::vector<double>{1.0, (double)(float)Half(0.1f)});
    CHECK(from_vector(std::vector<double>{2.7, -2.7}, {2}, DType::i32).to_vector<int32_t>() ==
          std::vector<int32_t>{2, -2});
    CHECK(from_vector(std::vector<double>{3.0}, {}).dim() == 0);
    CHECK_THROWS_WITH(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Catch::Contains("[2, 2]"));
    const int32_t raw[4] = {4, 3, 2, 1};
    Tensor b = from_blob_copy(raw, {2, 2}, DType::i32);
    CHECK(b.to_vector<int32_t>() == std::vector<int32_t>{4, 3, 2, 1});
    CHECK(b.raw_data() != (const void*)raw);
}

// ---------------------------------------------------------------- random tensors

TEST_CASE("creation: random tensors equal the Philox stream spec exactly", "[cpu][creation]") {
    const uint64_t seed = 0x1234abcd9876ull;
    const int64_t n = 11;  // odd: exercises the last half-used normal pair and a partial Philox block
    SECTION("rand f32: value k = uniform_f32_from_u32(W(k))") {
        Generator g(seed);
        std::vector<float> v = rand({n}, DType::f32, &g).to_vector<float>();
        for (int64_t k = 0; k < n; ++k) CHECK(v[k] == uniform_f32_from_u32(philox_u32(seed, k)));
        // the generator advanced by n words rounded up to a Philox block; the next draw starts there
        CHECK(g.offset() == 12);
        std::vector<float> w = rand({3}, DType::f32, &g).to_vector<float>();
        for (int64_t k = 0; k < 3; ++k) CHECK(w[k] == uniform_f32_from_u32(philox_u32(seed, 12 + k)));
        CHECK(g.offset() == 16);
    }
    SECTION("rand f64: value k from words 2k (low) and 2k+1 (high)") {
        Generator g(seed);
        g.set_offset(8);
        std::vector<double> v = rand({n}, DType::f64, &g).to_vector<double>();
        for (int64_t k = 0; k < n; ++k)
            CHECK(v[k] == uniform_f64_from_u32x2(philox_u32(seed, 8 + 2 * k), philox_u32(seed, 8 + 2 * k + 1)));
        CHECK(g.offset() == 8 + 24);
    }
    SECTION("randn f32 and f64: Box-Muller pairs") {
        Generator g(seed);
        std::vector<float> v = randn({n}, DType::f32, &g).to_vector<float>();
        for (int64_t k = 0; k < n; ++k) {
            const int64_t p = k / 2;
            CHECK(v[k] == normal_f32_from_u32x2(philox_u32(seed, 2 * p), philox_u32(seed, 2 * p + 1), (int)(k % 2)));
        }
        const uint64_t off = g.offset();
        CHECK(off == 12);  // normal_f32_words(11) = 12
        std::vector<double> d = randn({n}, DType::f64, &g).to_vector<double>();
        for (int64_t k = 0; k < n; ++k) {
            const uint64_t b = off + 4 * (k / 2);
            CHECK(d[k] == normal_f64_from_u32x4(philox_u32(seed, b), philox_u32(seed, b + 1), philox_u32(seed, b + 2),
                                                philox_u32(seed, b + 3), (int)(k % 2)));
        }
        CHECK(g.offset() == off + 24);
    }
    SECTION("randint: low + W(k) mod range, two words beyond 2^32") {
        Generator g(seed);
        std::vector<int64_t> v = randint(-5, 12, {n}, DType::i64, &g).to_vector<int64_t>();
        for (int64_t k = 0; k < n; ++k) CHECK(v[k] == -5 + (int64_t)(philox_u32(seed, k) % 17u));
        const uint64_t off = g.offset();
        const int64_t low = -(int64_t(1) << 40), high = int64_t(1) << 40;
        std::vector<int64_t> big = randint(low, high, {3}, DType::i64, &g).to_vector<int64_t>();
        for (int64_t k = 0; k < 3; ++k) {
            const uint64_t x = (uint64_t)philox_u32(seed, off + 2 * k) | ((uint64_t)philox_u32(seed, off + 2 * k + 1) << 32);
            CHECK(big[k] == randint_from_u64(x, low, (uint64_t)(high - low)));
        }
    }
    SECTION("bernoulli: 1 where uniform_f32(W(k)) < p") {
        Generator g(seed);
        std::vector<float> v = bernoulli({n}, 0.4, DType::f32, &g).to_vector<float>();
        for (int64_t k = 0; k < n; ++k) CHECK(v[k] == (float)bernoulli_from_u32(philox_u32(seed, k), 0.4f));
        // per-element probabilities from a tensor
        Generator g2(seed);
        Tensor p = from_vector(std::vector<double>{0.0, 1.0, 0.5, 0.25, 0.75}, {5});
        std::vector<double> b = bernoulli(p, &g2).to_vector<double>();
        const std::vector<float> pf = {0.0f, 1.0f, 0.5f, 0.25f, 0.75f};
        for (int64_t k = 0; k < 5; ++k) CHECK(b[k] == (double)bernoulli_from_u32(philox_u32(seed, k), pf[k]));
        CHECK(b[0] == 0.0);
        CHECK(b[1] == 1.0);
        CHECK(bernoulli(p, &g2).dtype() == DType::f64);
    }
    SECTION("16-bit random tensors are the f32 draw rounded") {
        Generator g1(seed), g2(seed);
        Tensor h = rand({n}, DType::f16, &g1);
        CHECK(h.dtype() == DType::f16);
        CXR_EXPECT_CLOSE(h, cast(rand({n}, DType::f32, &g2), DType::f16), 0, 0);
        Tensor b = randn({n}, DType::bf16, &g1);
        CXR_EXPECT_CLOSE(b, cast(randn({n}, DType::f32, &g2), DType::bf16), 0, 0);
    }
}

TEST_CASE("creation: random draws are reproducible per seed and differ across seeds and draws", "[cpu][creation]") {
    Generator a(7), b(7), c(8);
    Tensor ra = randn({4, 5}, DType::f64, &a);
    CHECK(ra.sizes() == Shape{4, 5});
    CHECK(ra.to_vector<double>() == randn({4, 5}, DType::f64, &b).to_vector<double>());
    CHECK(ra.to_vector<double>() != randn({4, 5}, DType::f64, &c).to_vector<double>());
    // consecutive draws from one generator differ
    CHECK(rand({8}, DType::f32, &a).to_vector<float>() != rand({8}, DType::f32, &a).to_vector<float>());
    // re-seeding restarts the stream
    a.manual_seed(7);
    CHECK(a.offset() == 0);
    CHECK(ra.to_vector<double>() == randn({4, 5}, DType::f64, &a).to_vector<double>());
    // a copied generator continues identically
    Generator d = a;
    CHECK(rand({6}, DType::f64, &a).to_vector<double>() == rand({6}, DType::f64, &d).to_vector<double>());
    // the default generator: manual_seed makes it reproducible (its state is restored for the other tests)
    const Generator saved = default_generator();
    manual_seed(99);
    std::vector<float> first = rand({10}).to_vector<float>();
    std::vector<float> second = rand({10}).to_vector<float>();
    CHECK(first != second);
    manual_seed(99);
    CHECK(rand({10}).to_vector<float>() == first);
    CHECK(default_generator().offset() == 12);
    default_generator() = saved;
    CHECK_THROWS(rand({2}, DType::i32));
    CHECK_THROWS(randint(3, 3, {2}));
    CHECK_THROWS(bernoulli({2}, 1.5));
}

TEST_CASE("creation: random values are in range with sound statistics", "[cpu][creation]") {
    Generator g(2024);
    const int64_t n = 40000;
    std::vector<double> u = rand({n}, DType::f64, &g).to_vector<double>();
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    // mean 1/2 (sd of the mean 0.0014), variance 1/12
    CHECK(std::fabs(mean_of(u) - 0.5) < 0.01);
    CHECK(std::fabs(var_of(u) - 1.0 / 12.0) < 0.004);
    std::vector<double> u32 = rand({n}, DType::f32, &g).to_vector<double>();
    CHECK(*std::max_element(u32.begin(), u32.end()) < 1.0);
    CHECK(std::fabs(mean_of(u32) - 0.5) < 0.01);

    std::vector<double> z = randn({n}, DType::f32, &g).to_vector<double>();
    CHECK(std::fabs(mean_of(z)) < 0.025);  // sd of the mean 0.005
    CHECK(std::fabs(std::sqrt(var_of(z)) - 1.0) < 0.02);
    const double within1 = std::count_if(z.begin(), z.end(), [](double x) { return std::fabs(x) < 1.0; }) / (double)n;
    CHECK(std::fabs(within1 - 0.6827) < 0.015);
    std::vector<double> z64 = randn({n + 1}, DType::f64, &g).to_vector<double>();
    CHECK(std::fabs(mean_of(z64)) < 0.025);
    CHECK(std::fabs(std::sqrt(var_of(z64)) - 1.0) < 0.02);

    std::vector<int64_t> r = randint(-3, 4, {n}, DType::i64, &g).to_vector<int64_t>();
    std::map<int64_t, int64_t> counts;
    for (int64_t v : r) ++counts[v];
    CHECK(counts.size() == 7u);
    CHECK(counts.begin()->first == -3);
    CHECK(counts.rbegin()->first == 3);
    for (const auto& kv : counts) CHECK(std::fabs(kv.second / (double)n - 1.0 / 7.0) < 0.015);
    CHECK(randint(0, 10, {5}, DType::i32, &g).dtype() == DType::i32);

    std::vector<double> b = bernoulli({n}, 0.3, DType::f32, &g).to_vector<double>();
    for (double v : b) REQUIRE((v == 0.0 || v == 1.0));
    CHECK(std::fabs(mean_of(b) - 0.3) < 0.015);
    CHECK(bernoulli({5}, 0.0, DType::f32, &g).to_vector<double>() == std::vector<double>(5, 0.0));
    CHECK(bernoulli({5}, 1.0, DType::f32, &g).to_vector<double>() == std::vector<double>(5, 1.0));
}
