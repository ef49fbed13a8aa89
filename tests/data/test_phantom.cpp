// Tests of the phantom dataset (data/phantom.h): determinism by seed (a case depends only on (seed, i)),
// every finding visible where data/phantom.h says it is drawn (the same case rendered with and without the
// finding: the pixel change lies in the expected region and on the side the impression names), attribute
// frequencies (sex, race, prevalence, the female prevalence factor) within binomial tolerance, site effects
// (noise std, exposure, collimated border, marker), sizes 32 and 512, the written dataset, and option errors.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/labels.h"
#include "data/phantom.h"
#include "tests/support/testing.h"

using namespace cxr::data;

namespace {

enum { kCardio = 0, kEffusion, kConsolidation, kEdema, kAtelectasis, kPneumothorax, kLesion };

PhantomOptions small(int size = 64) {
    PhantomOptions o;
    o.size = size;
    o.seed = 12345;
    o.sites = 1;
    return o;
}

// The case with only finding f (or none when f < 0).
PhantomCase with_only(PhantomCase c, int f) {
    std::fill(c.findings.begin(), c.findings.end(), false);
    if (f >= 0) c.findings[(size_t)f] = true;
    return c;
}

struct Mass {
    double total = 0, left = 0, right = 0, upper = 0, lower = 0, lateral = 0, max = 0;
};
// |diff| mass by region; x, y in [-1, 1] as in data/phantom.h (image left = patient's right).
Mass diff_mass(const std::vector<float>& a, const std::vector<float>& b, int S, double y_split = 0.0) {
    Mass m;
    for (int yi = 0; yi < S; ++yi)
        for (int xi = 0; xi < S; ++xi) {
            const double d = std::fabs(a[(size_t)yi * S + xi] - b[(size_t)yi * S + xi]);
            const double x = (xi + 0.5) * 2.0 / S - 1.0, y = (yi + 0.5) * 2.0 / S - 1.0;
            m.total += d;
            (x < 0 ? m.left : m.right) += d;
            (y < y_split ? m.upper : m.lower) += d;
            if (std::fabs(x) > 0.35) m.lateral += d;
            m.max = std::max(m.max, d);
        }
    return m;
}

// Finds a case (by index) with the given finding drawn, for its side and impression.
int64_t find_case(const PhantomOptions& o, int f, const std::string& word = "") {
    for (int64_t i = 0; i < 5000; ++i) {
        const PhantomCase c = phantom_case(o, i);
        if (c.findings[(size_t)f] && (word.empty() || c.record.report.find(word) != std::string::npos)) return i;
    }
    FAIL("no case with finding " << f << " and word '" << word << "'");
    return -1;
}

double binomial_z(double count, double n, double p) { return (count - n * p) / std::sqrt(n * p * (1 - p)); }

}  // namespace

TEST_CASE("phantom: deterministic by seed; case i does not depend on n or other cases", "[cpu][data][phantom]") {
    PhantomOptions a = small(), b = small();
    b.n = 7;  // n only says how many are written
    for (int64_t i : {0, 3, 999}) {
        const PhantomCase ca = phantom_case(a, i), cb = phantom_case(b, i);
        CHECK(ca.record.report == cb.record.report);
        CHECK(ca.findings == cb.findings);
        CHECK(ca.record.age == cb.record.age);
        CHECK(render_phantom(ca, a, i) == render_phantom(cb, b, i));
    }
    PhantomOptions other = small();
    other.seed = 54321;
    CHECK(render_phantom(phantom_case(a, 3), a, 3) != render_phantom(phantom_case(other, 3), other, 3));
    CHECK(render_phantom(phantom_case(a, 3), a, 3) != render_phantom(phantom_case(a, 4), a, 4));
}

TEST_CASE("phantom: written datasets are identical for the same seed", "[cpu][data][phantom]") {
    const auto root = std::filesystem::temp_directory_path() / "cxr_test_phantom";
    std::filesystem::remove_all(root);
    PhantomOptions o = small(32);
    o.n = 12;
    o.sites = 3;
    const auto r1 = write_phantom_dataset((root / "a").string(), o);
    const auto r2 = write_phantom_dataset((root / "b").string(), o);
    REQUIRE(r1.size() == 12);
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        REQUIRE(in.good());
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    const std::string m1 = slurp(root / "a" / "manifest.csv");
    CHECK(m1 == slurp(root / "b" / "manifest.csv"));  // paths are relative to the folder
    CHECK(m1.find("images/phantom_0000011.png") != std::string::npos);
    for (int i : {0, 11}) {
        char name[40];
        std::snprintf(name, sizeof name, "phantom_%07d.png", i);
        CHECK(slurp(root / "a" / "images" / name) == slurp(root / "b" / "images" / name));
    }
    for (size_t i = 0; i < r1.size(); ++i) {
        CHECK(r1[i].report == phantom_case(o, (int64_t)i).record.report);
        CHECK(!r1[i].split.empty());
    }
    std::filesystem::remove_all(root);
}

// Site projection effects (data/phantom.h SITES): the same case rendered with the AP / supine draw on and off, at
// a held-out site (the pixel noise depends only on the index, so the difference is the projection alone).
TEST_CASE("phantom: held-out sites have AP films with larger hearts and supine films with veiled effusions",
          "[cpu][data][phantom]") {
    PhantomOptions o = small();
    o.sites = 3;
    int64_t i = -1;
    for (int64_t k = 0; k < 5000 && i < 0; ++k) {
        const PhantomCase c = phantom_case(o, k);
        if (c.site == 2 && c.findings[kEffusion] && !c.findings[kCardio]) i = k;
    }
    REQUIRE(i >= 0);
    const PhantomCase base = phantom_case(o, i);
    auto with_draw = [&](int slot, float value, int finding) {
        PhantomCase c = with_only(base, finding);
        c.shape[(size_t)slot] = value;
        return render_phantom(c, o, i);
    };
    const int S = o.size;
    SECTION("AP: the heart row widens") {
        const auto pa = with_draw(28, 0.99f, -1), ap = with_draw(28, 0.0f, -1);  // u[28] < 0.25·site: AP
        const Mass m = diff_mass(ap, pa, S);
        INFO("AP vs PA difference mass " << m.total << ", lower share " << m.lower / m.total);
        CHECK(m.total > 0.5);
        CHECK(m.lower / m.total > 0.8);  // the heart sits low in the chest
        // at site 0 the same draw does nothing
        PhantomCase c0 = with_only(base, -1);
        c0.site = 0;
        auto r0 = [&](float v) {
            PhantomCase c = c0;
            c.shape[28] = v;
            return render_phantom(c, o, i);
        };
        CHECK(r0(0.0f) == r0(0.99f));
    }
    SECTION("supine: the effusion is a faint veil, not a basal meniscus") {
        const auto none = with_draw(30, 0.99f, -1);
        const auto upright = with_draw(30, 0.99f, kEffusion), supine = with_draw(30, 0.0f, kEffusion);
        const Mass mu = diff_mass(upright, none, S), ms = diff_mass(supine, none, S);
        const double severity = 0.15 + 0.85 * base.shape[17 + kEffusion];
        INFO("severity " << severity << ": upright max " << mu.max << ", supine max " << ms.max);
        CHECK(ms.total > 0.0);
        CHECK(ms.max <= 0.35 * 0.6 * severity * severity + 1e-6);  // opacity 0.35 s² of at most 0.6 − lung
        CHECK(ms.max < mu.max);
    }
}

TEST_CASE("phantom: every finding is visible where it is drawn", "[cpu][data][phantom]") {
    const PhantomOptions o = small();
    const int S = o.size;
    auto diff_for = [&](int f, int64_t i, double y_split = 0.0) {
        const PhantomCase c = phantom_case(o, i);
        return diff_mass(render_phantom(with_only(c, f), o, i), render_phantom(with_only(c, -1), o, i), S, y_split);
    };
    SECTION("pleural effusion at the bases, on the named side") {
        const int64_t ri = find_case(o, kEffusion, "right pleural");
        const Mass r = diff_for(kEffusion, ri);
        // fluid (0.60) replaces lung (about 0.13) with weight severity² (data/phantom.h)
        const double severity = 0.15 + 0.85 * phantom_case(o, ri).shape[17 + kEffusion];
        INFO("lower " << r.lower / r.total << " left " << r.left / r.total << " severity " << severity);
        CHECK(r.max > 0.5 * 0.47 * severity * severity);
        CHECK(r.lower / r.total > 0.9);
        CHECK(r.left / r.total > 0.9);  // the patient's right is the image left
        const Mass l = diff_for(kEffusion, find_case(o, kEffusion, "left pleural"));
        CHECK(l.right / l.total > 0.9);
        const Mass bi = diff_for(kEffusion, find_case(o, kEffusion, "ilateral"));
        CHECK(bi.lower / bi.total > 0.9);
        CHECK(bi.left / bi.total > 0.3);
        CHECK(bi.right / bi.total > 0.3);
    }
    SECTION("pneumothorax apico-lateral, on the named side") {
        const Mass r = diff_for(kPneumothorax, find_case(o, kPneumothorax, "right pneumothorax"));
        INFO("upper " << r.upper / r.total << " lateral " << r.lateral / r.total << " left " << r.left / r.total);
        CHECK(r.max > 0.05);
        CHECK(r.upper / r.total > 0.75);
        CHECK(r.lateral / r.total > 0.65);  // |x| > 0.35: the outer half of a lung (centre |x| = 0.34)
        CHECK(r.left / r.total > 0.95);
        const Mass l = diff_for(kPneumothorax, find_case(o, kPneumothorax, "left pneumothorax"));
        CHECK(l.right / l.total > 0.95);
    }
    SECTION("cardiomegaly widens the bright heart region") {
        const int64_t i = find_case(o, kCardio);
        const PhantomCase c = phantom_case(o, i);
        const auto big = render_phantom(with_only(c, kCardio), o, i), normal = render_phantom(with_only(c, -1), o, i);
        const int row = (int)std::lround((0.30 + 1.0) / 2.0 * S);  // the heart's centre line (heart_cy = 0.30)
        auto width = [&](const std::vector<float>& img) {
            int w = 0;
            for (int xi = 0; xi < S; ++xi) w += img[(size_t)row * S + xi] > 0.45f;
            return w;
        };
        // the heart widens by 1 + 0.28·severity (data/phantom.h); the bright row also holds the mediastinum,
        // so its width grows by at least half of that factor's excess, less a pixel of rounding
        const double severity = 0.15 + 0.85 * c.shape[17 + kCardio];
        const double widen = 1.0 + 0.28 * severity;
        INFO("heart row width " << width(normal) << " -> " << width(big) << " (widening " << widen << ")");
        CHECK(width(big) > width(normal));
        CHECK(width(big) >= (1.0 + 0.5 * (widen - 1.0)) * width(normal) - 1.0);
        const Mass m = diff_mass(big, normal, S);
        CHECK(m.lower / m.total > 0.8);  // the heart sits low in the chest
    }
    SECTION("consolidation, atelectasis, lesion: inside one lung, on the side the impression names") {
        for (int f : {kConsolidation, kAtelectasis}) {
            const Mass r = diff_for(f, find_case(o, f, "right"));
            const Mass l = diff_for(f, find_case(o, f, "left"));
            INFO("finding " << f << ": right case left-mass " << r.left / r.total << ", left case right-mass "
                            << l.right / l.total);
            CHECK(r.max > 0.1);
            CHECK(r.left / r.total > 0.9);
            CHECK(l.right / l.total > 0.9);
        }
        const Mass at = diff_for(kAtelectasis, find_case(o, kAtelectasis));
        CHECK(at.lower / at.total > 0.8);  // a lower-zone band
        const int64_t li = find_case(o, kLesion);
        const Mass les = diff_for(kLesion, li);
        // contrast 0.30 × (0.4 + 0.6 severity), severity = 0.15 + 0.85 u[17 + finding] (data/phantom.h), before
        // gamma/gain and noise
        const double severity = 0.15 + 0.85 * phantom_case(o, li).shape[17 + kLesion];
        const double contrast = 0.30 * (0.4 + 0.6 * severity);
        INFO("lesion severity " << severity << ", max change " << les.max);
        CHECK(les.max > 0.5 * contrast);
        CHECK(les.max < 1.5 * contrast);
        CHECK(std::max(les.left, les.right) / les.total > 0.95);  // one lung
    }
    SECTION("edema: bilateral perihilar") {
        const Mass e = diff_for(kEdema, find_case(o, kEdema));
        INFO("left " << e.left / e.total << " lateral " << e.lateral / e.total);
        CHECK(e.max > 0.05);
        CHECK(e.left / e.total > 0.3);
        CHECK(e.right / e.total > 0.3);
        CHECK(e.lateral / e.total < 0.5);  // centred on the hila, not the periphery
    }
}

TEST_CASE("phantom: labels follow the findings; impressions vary", "[cpu][data][phantom]") {
    const PhantomOptions o = small();
    std::set<std::string> normal_wordings;
    for (int64_t i = 0; i < 400; ++i) {
        const PhantomCase c = phantom_case(o, i);
        const auto& L = c.record.labels;
        bool any = false;
        for (size_t f = 0; f < c.findings.size(); ++f) {
            CHECK(L[label_index(phantom_findings()[f])] == (c.findings[f] ? LabelValue::positive : LabelValue::negative));
            any = any || c.findings[f];
        }
        CHECK(L[label_index("Pneumonia")] == L[label_index("Consolidation")]);
        CHECK(L[label_index("No Finding")] == (any ? LabelValue::negative : LabelValue::positive));
        const bool opacity = c.findings[kConsolidation] || c.findings[kEdema] || c.findings[kAtelectasis] || c.findings[kLesion];
        CHECK(L[label_index("Lung Opacity")] == (opacity ? LabelValue::positive : LabelValue::negative));
        CHECK(!c.record.report.empty());
        if (!any) normal_wordings.insert(c.record.report);
    }
    CHECK(normal_wordings.size() >= 3);
}

TEST_CASE("phantom: prevalence, sex, race and subgroup imbalance within binomial tolerance", "[cpu][data][phantom]") {
    PhantomOptions o = small();
    o.female_fraction = 0.3;
    o.race_weights = {1, 0, 0, 3};
    o.prevalence = {0.20, 0.15, 0.10, 0.10, 0.05, 0.08, 0.12};
    o.female_prevalence_factor = 2.0;
    o.age_min = 30;
    o.age_max = 60;
    const int n = 4000;
    double female = 0, asian = 0, black = 0, site1 = 0;
    std::vector<double> pos_f(7, 0), pos_m(7, 0);
    o.sites = 2;
    for (int64_t i = 0; i < n; ++i) {
        const PhantomCase c = phantom_case(o, i);
        const bool f = c.record.sex == Sex::female;
        female += f;
        asian += c.record.race == Race::asian;
        black += c.record.race == Race::black;
        site1 += c.site == 1;
        CHECK(c.record.age >= 30);
        CHECK(c.record.age <= 60);
        for (int k = 0; k < 7; ++k) (f ? pos_f : pos_m)[k] += c.findings[k];
    }
    CHECK(std::fabs(binomial_z(female, n, 0.3)) < 4);
    CHECK(std::fabs(binomial_z(asian, n, 0.25)) < 4);
    CHECK(black == 0);
    CHECK(std::fabs(binomial_z(site1, n, 0.5)) < 4);
    const double nf = female, nm = n - female;
    for (int k = 0; k < 7; ++k) {
        INFO(phantom_findings()[k] << ": male " << pos_m[k] / nm << ", female " << pos_f[k] / nf);
        CHECK(std::fabs(binomial_z(pos_m[k], nm, o.prevalence[k])) < 4);
        CHECK(std::fabs(binomial_z(pos_f[k], nf, 2 * o.prevalence[k])) < 4);
    }
}

TEST_CASE("phantom: sites differ in noise, exposure, collimation and marker", "[cpu][data][phantom]") {
    PhantomOptions o = small();
    o.sites = 3;
    const int S = o.size;
    PhantomCase c = with_only(phantom_case(o, 0), -1);
    auto at_site = [&](int site, uint64_t seed) {
        PhantomCase k = c;
        k.site = site;
        PhantomOptions p = o;
        p.seed = seed;  // without findings the render uses the seed only for its noise
        return render_phantom(k, p, 0);
    };
    auto central = [&](int yi, int xi) { return yi >= S / 4 && yi < 3 * S / 4 && xi >= S / 4 && xi < 3 * S / 4; };
    double prev_std = 0, mean0 = 0;
    for (int site = 0; site < 3; ++site) {
        const auto a = at_site(site, 1), b = at_site(site, 2);
        double s2 = 0, mean = 0, all = 0;
        int cnt = 0;
        for (int yi = 0; yi < S; ++yi)
            for (int xi = 0; xi < S; ++xi) {
                const size_t k = (size_t)yi * S + xi;
                if (central(yi, xi)) all += a[k];
                if (!central(yi, xi) || a[k] < 0.1f || b[k] < 0.1f || a[k] > 0.9f || b[k] > 0.9f) continue;
                s2 += (double)(a[k] - b[k]) * (a[k] - b[k]);
                ++cnt;
            }
        REQUIRE(cnt > S * S / 8);
        const double noise = std::sqrt(s2 / cnt / 2.0);  // difference of two independent noises
        mean = all / (S * S / 4.0);
        INFO("site " << site << ": noise std " << noise << ", central mean " << mean);  // central: no clamping
        CHECK(noise == Approx(0.015 + 0.01 * site).epsilon(0.12));
        CHECK(noise > prev_std);
        prev_std = noise;
        if (site == 0) mean0 = mean;
        else CHECK(mean / mean0 == Approx(1.0 - 0.06 * site).epsilon(0.04));  // exposure gain
    }
    // Collimation: site 2 has a 4 px dark border at 64 px, site 0 none.
    auto ring_mean = [&](const std::vector<float>& img, int width) {
        double s = 0;
        int n = 0;
        for (int yi = 0; yi < S; ++yi)
            for (int xi = 0; xi < S; ++xi)
                if (yi < width || xi < width || yi >= S - width || xi >= S - width) {
                    s += img[(size_t)yi * S + xi];
                    ++n;
                }
        return s / n;
    };
    const auto s0 = at_site(0, 1), s2 = at_site(2, 1);
    INFO("border mean site 0 " << ring_mean(s0, 4) << ", site 2 " << ring_mean(s2, 4));
    CHECK(ring_mean(s2, 4) < 0.3 * ring_mean(s0, 4));
    // Marker: a 4x4 square of 0.95, top-left for site 0 (3 px in), top-right for site 1, bottom-left for site 2
    // (3 px inside its 4 px border).
    auto square = [&](const std::vector<float>& img, int y0, int x0) {
        for (int yi = y0; yi < y0 + 4; ++yi)
            for (int xi = x0; xi < x0 + 4; ++xi)
                if (img[(size_t)yi * S + xi] != 0.95f) return false;
        return true;
    };
    CHECK(square(s0, 3, 3));
    CHECK_FALSE(square(s2, 3, 3));
    CHECK(square(at_site(1, 1), 5, S - 5 - 4));  // border 2 px at site 1: 5 px in from the top right
    CHECK(square(s2, S - 7 - 4, 7));
}

TEST_CASE("phantom: sizes 32 and 512 render in [0, 1]", "[cpu][data][phantom]") {
    for (int size : {32, 512}) {
        const PhantomOptions o = small(size);
        const PhantomCase c = phantom_case(o, 5);
        const auto img = render_phantom(c, o, 5);
        REQUIRE(img.size() == (size_t)size * size);
        const auto [lo, hi] = std::minmax_element(img.begin(), img.end());
        CHECK(*lo >= 0.0f);
        CHECK(*hi <= 1.0f);
        CHECK(*hi - *lo > 0.5f);  // not blank
        const auto t = render_phantom_tensor(c, o, 5);
        CHECK(t.shape() == cxr::tensor::Shape{1, size, size});
    }
}

TEST_CASE("phantom: bad options are rejected with clear errors", "[cpu][data][phantom]") {
    auto bad = [](auto mutate, const char* message) {
        PhantomOptions o = small();
        mutate(o);
        INFO(message);
        CHECK_THROWS_WITH(validate_phantom_options(o), Catch::Contains(message));
        CHECK_THROWS_WITH(phantom_case(o, 0), Catch::Contains(message));
    };
    bad([](PhantomOptions& o) { o.size = 31; }, "size must be in 32..512, got 31");
    bad([](PhantomOptions& o) { o.size = 513; }, "size must be in 32..512, got 513");
    bad([](PhantomOptions& o) { o.n = 0; }, "n must be >= 1");
    bad([](PhantomOptions& o) { o.sites = 0; }, "sites must be in 1..8");
    bad([](PhantomOptions& o) { o.sites = 9; }, "sites must be in 1..8");
    bad([](PhantomOptions& o) { o.female_fraction = 1.5; }, "female fraction must be in [0, 1]");
    bad([](PhantomOptions& o) { o.race_weights = {1, -1, 1, 1}; }, "race weights must be finite and >= 0");
    bad([](PhantomOptions& o) { o.race_weights = {0, 0, 0, 0}; }, "race weights must not all be zero");
    bad([](PhantomOptions& o) { o.age_min = 70, o.age_max = 60; }, "age range");
    bad([](PhantomOptions& o) { o.prevalence = {0.1, 0.1}; }, "prevalence needs 7 values");
    bad([](PhantomOptions& o) { o.prevalence[3] = 1.2; }, "prevalence of Edema must be in [0, 1]");
    bad([](PhantomOptions& o) { o.female_prevalence_factor = -1; }, "female prevalence factor");
    bad([](PhantomOptions& o) { o.train = o.valid = o.test = 0; }, "split fractions");
    PhantomOptions o = small();
    o.size = 16;
    CHECK_THROWS_WITH(write_phantom_dataset((std::filesystem::temp_directory_path() / "cxr_bad_phantom").string(), o),
                      Catch::Contains("size must be in 32..512"));
}
