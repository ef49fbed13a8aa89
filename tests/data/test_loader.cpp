// Tests for data/loader: sharding against torch's DistributedSampler index lists (tests/fixtures/loader.*, made by
// tests/fixtures/tools/make_loader_fixtures.py), the Philox Fisher–Yates permutation re-derived here from its
// documented rule, determinism across worker counts, epoch coverage, label targets/mask from hand-built Records,
// the antialiased bilinear resize against hand-computed weights (PIL's triangle filter), error surfacing from the
// workers, destruction mid-epoch, and the cache file (documented header, equivalence up to its quantisation,
// stale-cache rebuild, refusing to overwrite a foreign file). Images are small PNGs written into a temp dir.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/philox.h"
#include "tests/support/testing.h"

using cxr::data::Batch;
using cxr::data::CacheFormat;
using cxr::data::LabelValue;
using cxr::data::Loader;
using cxr::data::LoaderOptions;
using cxr::data::Record;
using cxr::tensor::Tensor;
namespace fs = std::filesystem;

namespace {

// A fresh temp directory per test case, removed at the end.
struct TempDir {
    fs::path path;
    TempDir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() /
               ("cxr_loader_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// Writes a gray [1, h, w] PNG whose pixel (y, x) is level(y, x) / 255.
template <class F>
std::string write_gray(const TempDir& dir, const std::string& name, int h, int w, F level) {
    std::vector<float> v((size_t)h * w);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) v[(size_t)y * w + x] = (float)level(y, x) / 255.0f;
    const std::string path = dir.file(name);
    cxr::data::write_png(path, cxr::tensor::from_vector(v, {1, h, w}));
    return path;
}

// n records; record k's image is h x w with a pattern that identifies k: level = (13 k + 3 y + 5 x) mod 256.
std::vector<Record> make_records(const TempDir& dir, int n, int h = 12, int w = 10) {
    std::vector<Record> out;
    for (int k = 0; k < n; ++k) {
        Record r;
        r.image_path = write_gray(dir, "img" + std::to_string(k) + ".png", h, w,
                                  [k](int y, int x) { return (13 * k + 3 * y + 5 * x) % 256; });
        r.labels[(size_t)(k % cxr::data::kNumChexpertLabels)] = LabelValue::positive;
        out.push_back(r);
    }
    return out;
}

std::vector<Batch> run_epoch(Loader& loader, int64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<Batch> out;
    Batch b;
    while (loader.next(b)) out.push_back(b);
    return out;
}

bool same_values(const Tensor& a, const Tensor& b) {
    if (a.sizes() != b.sizes()) return false;
    return a.to_vector<float>() == b.to_vector<float>();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    auto va = a.to_vector<float>(), vb = b.to_vector<float>();
    REQUIRE(va.size() == vb.size());
    double m = 0;
    for (size_t i = 0; i < va.size(); ++i) m = std::max(m, (double)std::fabs(va[i] - vb[i]));
    return m;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The documented permutation rule, re-derived: Durstenfeld's Fisher–Yates with j = x mod (i + 1), x from Philox
// block (key = seed, counter {t, 0, epoch, 0} for small t and epoch), x = (w1 << 32) | w0.
std::vector<int64_t> reference_permutation(int64_t n, uint64_t seed, uint32_t epoch) {
    std::vector<int64_t> p((size_t)n);
    for (int64_t i = 0; i < n; ++i) p[(size_t)i] = i;
    uint32_t t = 0;
    for (int64_t i = n - 1; i >= 1; --i, ++t) {
        const uint32_t ctr[4] = {t, 0u, epoch, 0u};
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        uint32_t w[4];
        cxr::tensor::philox4x32_10(ctr, key, w);
        const uint64_t x = ((uint64_t)w[1] << 32) | w[0];
        std::swap(p[(size_t)i], p[(size_t)(x % (uint64_t)(i + 1))]);
    }
    return p;
}

// An augmentation that uses its generator: adds uniform noise in [0, 0.1) and flips horizontally when the first
// draw is below 0.5 (deterministic given the generator).
Tensor noisy_flip(const Tensor& img, cxr::tensor::Generator& gen) {
    Tensor out = img.clone();
    const int64_t n = out.numel();
    std::vector<float> u((size_t)n + 1);
    const uint64_t off = gen.reserve((uint64_t)n + 1);
    cxr::tensor::fill_uniform_f32(u.data(), n + 1, gen.seed(), off, 0.0f, 0.1f);
    float* p = out.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] += u[(size_t)i + 1];
    if (u[0] < 0.05f) {
        const int64_t C = out.size(0), H = out.size(1), W = out.size(2);
        for (int64_t c = 0; c < C; ++c)
            for (int64_t y = 0; y < H; ++y) std::reverse(p + (c * H + y) * W, p + (c * H + y + 1) * W);
    }
    return out;
}

}  // namespace

TEST_CASE("loader: sharding equals torch DistributedSampler (shuffle=False)", "[data][loader][cpu]") {
    cxr::testing::Fixtures fx("loader");
    auto names = fx.names_with_prefix("shard.");
    REQUIRE(names.size() == 70);  // sum of world sizes (3+4+8+8+4+2+5+1 = 35) x {keep, drop}
    for (const auto& name : names) {
        int n = 0, w = 0, r = 0;
        char mode[8] = {0};
        REQUIRE(std::sscanf(name.c_str(), "shard.n%d_w%d_r%d_%4s", &n, &w, &r, mode) == 4);
        const bool drop = std::string(mode) == "drop";
        INFO(name);
        Tensor expected = fx.get(name);
        std::vector<int64_t> want = expected.numel() ? expected.to_vector<int64_t>() : std::vector<int64_t>{};
        // The free function on the identity order.
        std::vector<int64_t> identity((size_t)n);
        for (int i = 0; i < n; ++i) identity[(size_t)i] = i;
        CHECK(cxr::data::shard_indices(identity, r, w, drop) == want);
        // Through a Loader (no image is read before next()).
        std::vector<Record> recs((size_t)n);
        for (int i = 0; i < n; ++i) recs[(size_t)i].image_path = "/nonexistent/" + std::to_string(i) + ".png";
        LoaderOptions o;
        o.shuffle = false;
        o.drop_last = drop;
        o.rank = r;
        o.world_size = w;
        o.workers = 0;
        Loader loader(recs, o);
        loader.start_epoch(3);
        CHECK(loader.size() == (int64_t)want.size());
        CHECK(loader.epoch_indices() == want);
    }
}

TEST_CASE("loader: Philox Fisher-Yates permutation follows the documented rule", "[data][loader][cpu]") {
    for (uint64_t seed : {0ull, 7ull, 0x123456789abcdefull}) {
        for (uint32_t epoch : {0u, 1u, 5u}) {
            auto p = cxr::data::epoch_permutation(37, seed, epoch, true);
            CHECK(p == reference_permutation(37, seed, epoch));
            std::set<int64_t> s(p.begin(), p.end());
            CHECK(s.size() == 37);
            CHECK(*s.begin() == 0);
            CHECK(*s.rbegin() == 36);
        }
    }
    CHECK(cxr::data::epoch_permutation(37, 1, 0, true) != cxr::data::epoch_permutation(37, 1, 1, true));
    CHECK(cxr::data::epoch_permutation(37, 1, 0, true) != cxr::data::epoch_permutation(37, 2, 0, true));
    auto id = cxr::data::epoch_permutation(5, 9, 4, false);
    CHECK(id == std::vector<int64_t>{0, 1, 2, 3, 4});
    CHECK(cxr::data::epoch_permutation(0, 1, 0, true).empty());
    CHECK(cxr::data::epoch_permutation(1, 1, 0, true) == std::vector<int64_t>{0});
    // Shuffled sharding: the ranks' shards (without drop_last) cover every index, padding repeats the start.
    auto perm = cxr::data::epoch_permutation(10, 3, 2, true);
    std::multiset<int64_t> all;
    for (int r = 0; r < 4; ++r)
        for (int64_t i : cxr::data::shard_indices(perm, r, 4, false)) all.insert(i);
    CHECK(all.size() == 12);
    for (int64_t i = 0; i < 10; ++i) CHECK(all.count(i) == ((i == perm[0] || i == perm[1]) ? 2u : 1u));
}

TEST_CASE("loader: resize weights equal PIL's triangle filter, hand-computed", "[data][loader][cpu]") {
    // 4 -> 2 (scale 2, support 2): output 0 centre 1, taps 0..2 with raw weights 0.75, 0.75, 0.25 -> /1.75.
    auto w = cxr::data::resize_weights_aa(4, 2);
    const std::vector<float> want42 = {3.f / 7, 3.f / 7, 1.f / 7, 0.f, 0.f, 1.f / 7, 3.f / 7, 3.f / 7};
    REQUIRE(w.size() == want42.size());
    for (size_t i = 0; i < w.size(); ++i) CHECK(w[i] == Approx(want42[i]).margin(1e-7));
    // 2 -> 4 (upsampling): bilinear align_corners=False with clamped edges.
    w = cxr::data::resize_weights_aa(2, 4);
    const std::vector<float> want24 = {1.f, 0.f, .75f, .25f, .25f, .75f, 0.f, 1.f};
    for (size_t i = 0; i < w.size(); ++i) CHECK(w[i] == Approx(want24[i]).margin(1e-7));
    // 3 -> 3: identity.
    w = cxr::data::resize_weights_aa(3, 3);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) CHECK(w[(size_t)(i * 3 + j)] == (i == j ? 1.f : 0.f));
    // 3 -> 1 (scale 3, support 3, centre 1.5): taps 0..2, raw 1 - |j - 1|/3 = 2/3, 1, 2/3 -> 2/7, 3/7, 2/7.
    w = cxr::data::resize_weights_aa(3, 1);
    CHECK(w[0] == Approx(2.0 / 7).margin(1e-7));
    CHECK(w[1] == Approx(3.0 / 7).margin(1e-7));
    CHECK(w[2] == Approx(2.0 / 7).margin(1e-7));
}

TEST_CASE("loader: a tiny image resized through the loader matches the hand computation", "[data][loader][cpu]") {
    TempDir dir;
    // 2 x 4 gray image: rows {0, 70, 140, 210} and {35, 105, 175, 245} (levels / 255).
    const int lv[2][4] = {{0, 70, 140, 210}, {35, 105, 175, 245}};
    Record r;
    r.image_path = write_gray(dir, "tiny.png", 2, 4, [&](int y, int x) { return lv[y][x]; });
    // To 2 x 2 — height 2 -> 2 is the identity, width 4 -> 2 uses (3/7, 3/7, 1/7, 0) and (0, 1/7, 3/7, 3/7).
    LoaderOptions o;
    o.image_size = 2;
    o.channels = 3;
    o.batch_size = 1;
    o.workers = 0;
    o.shuffle = false;
    Loader loader({r}, o);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(b.images.sizes() == cxr::tensor::Shape{1, 3, 2, 2});
    auto v = b.images.to_vector<float>();
    for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < 2; ++y) {
            const double left = (3.0 * lv[y][0] + 3.0 * lv[y][1] + 1.0 * lv[y][2]) / 7.0 / 255.0;
            const double right = (1.0 * lv[y][1] + 3.0 * lv[y][2] + 3.0 * lv[y][3]) / 7.0 / 255.0;
            CHECK(v[(size_t)(c * 4 + y * 2 + 0)] == Approx(left).margin(1e-6));
            CHECK(v[(size_t)(c * 4 + y * 2 + 1)] == Approx(right).margin(1e-6));
        }
    }
    CHECK_FALSE(loader.next(b));
    // To 1 x 1 — the height pass averages the two rows (2 -> 1: weights 1/2, 1/2), width 4 -> 1 (scale 4,
    // centre 2, taps 0..3 with raw 1 - |j - 1.5|/4 = 5/8, 7/8, 7/8, 5/8 -> /3).
    o.image_size = 1;
    o.channels = 1;
    Loader one({r}, o);
    REQUIRE(one.next(b));
    double want = 0;
    const double wx[4] = {5.0 / 24, 7.0 / 24, 7.0 / 24, 5.0 / 24};
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 4; ++x) want += 0.5 * wx[x] * lv[y][x] / 255.0;
    CHECK(b.images.sizes() == cxr::tensor::Shape{1, 1, 1, 1});
    CHECK(b.images.to_vector<float>()[0] == Approx(want).margin(1e-6));
    // Same size: the decoded pixels exactly.
    o.image_size = 4;
    Record sq;
    sq.image_path = write_gray(dir, "sq.png", 4, 4, [](int y, int x) { return 16 * y + x; });
    Loader ident({sq}, o);
    REQUIRE(ident.next(b));
    auto iv = b.images.to_vector<float>();
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) CHECK(iv[(size_t)(y * 4 + x)] == (float)(16 * y + x) / 255.0f);
}

TEST_CASE("loader: targets and mask from hand-built records", "[data][loader][cpu]") {
    TempDir dir;
    const std::string img = write_gray(dir, "a.png", 4, 4, [](int, int) { return 100; });
    std::vector<Record> recs(3);
    for (auto& r : recs) r.image_path = img;
    recs[0].labels[0] = LabelValue::positive;   // No Finding
    recs[0].labels[2] = LabelValue::negative;   // Cardiomegaly
    recs[0].labels[13] = LabelValue::uncertain; // Support Devices
    recs[1].labels[0] = LabelValue::negative;
    recs[1].labels[2] = LabelValue::uncertain;
    recs[1].labels[13] = LabelValue::positive;
    // recs[2]: all unknown.
    LoaderOptions o;
    o.image_size = 4;
    o.batch_size = 8;
    o.shuffle = false;
    o.workers = 1;
    o.label_indices = {13, 0, 2};
    Loader loader(recs, o);
    Batch b;
    REQUIRE(loader.next(b));
    CHECK(b.size() == 3);
    CHECK(b.indices == std::vector<int64_t>{0, 1, 2});
    REQUIRE(b.targets.sizes() == cxr::tensor::Shape{3, 3});
    CHECK(b.targets.to_vector<float>() == std::vector<float>{0, 1, 0, /**/ 1, 0, 0, /**/ 0, 0, 0});
    CHECK(b.mask.to_vector<float>() == std::vector<float>{0, 1, 1, /**/ 1, 1, 0, /**/ 0, 0, 0});
    CHECK_FALSE(loader.next(b));
    CHECK_FALSE(loader.next(b));  // stays at the end until start_epoch
    // Empty label_indices = all 14 columns in CheXpert order.
    o.label_indices.clear();
    Loader all(recs, o);
    REQUIRE(all.next(b));
    REQUIRE(b.targets.sizes() == cxr::tensor::Shape{3, 14});
    auto t = b.targets.to_vector<float>(), m = b.mask.to_vector<float>();
    CHECK(t[0] == 1);
    CHECK(m[0] == 1);
    CHECK(t[13] == 0);
    CHECK(m[13] == 0);
    CHECK(t[14 + 13] == 1);
    CHECK(m[14 + 2] == 0);
    CHECK(m[14 + 0] == 1);
    CHECK(t[14 + 0] == 0);
    for (int i = 28; i < 42; ++i) CHECK(m[(size_t)i] == 0);
    CHECK(b.images.sizes() == cxr::tensor::Shape{3, 3, 4, 4});
    for (float v : b.images.to_vector<float>()) CHECK(v == 100.0f / 255.0f);
}

TEST_CASE("loader: every record once per epoch, images match their indices", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 11, 6, 6);
    LoaderOptions o;
    o.image_size = 6;  // identity resize: pixel values identify the record
    o.channels = 1;
    o.batch_size = 4;
    o.seed = 42;
    o.workers = 2;
    Loader loader(recs, o);
    CHECK(loader.size() == 11);
    CHECK(loader.batches_per_epoch() == 3);
    auto batches = run_epoch(loader, 0);
    REQUIRE(batches.size() == 3);
    CHECK(batches[0].size() == 4);
    CHECK(batches[2].size() == 3);
    std::multiset<int64_t> seen;
    for (const auto& b : batches) {
        auto v = b.images.to_vector<float>();
        for (size_t k = 0; k < b.indices.size(); ++k) {
            const int64_t idx = b.indices[k];
            seen.insert(idx);
            for (int y = 0; y < 6; ++y)
                for (int x = 0; x < 6; ++x)
                    CHECK(v[k * 36 + (size_t)(y * 6 + x)] == (float)((13 * idx + 3 * y + 5 * x) % 256) / 255.0f);
            CHECK(b.targets.to_vector<float>()[k * 14 + (size_t)(idx % 14)] == 1.0f);
        }
    }
    CHECK(seen.size() == 11);
    for (int64_t i = 0; i < 11; ++i) CHECK(seen.count(i) == 1);
    // Delivery order is the documented permutation.
    std::vector<int64_t> order;
    for (const auto& b : batches) order.insert(order.end(), b.indices.begin(), b.indices.end());
    CHECK(order == reference_permutation(11, 42, 0));
    // Batch buffers are recycled once the consumer drops a batch, never while it holds one: keep every other
    // batch, drop the rest, and check the kept ones at the end (2 epochs of 3 batches, prefetch 1).
    for (int workers : {0, 2}) {
        o.workers = workers;
        o.prefetch = 1;
        Loader rec(recs, o);
        std::vector<Batch> kept;
        for (int64_t ep = 0; ep < 2; ++ep) {
            rec.start_epoch(ep);
            Batch b;
            int k = 0;
            while (rec.next(b)) {
                if (k++ % 2 == 0) kept.push_back(b);
            }
        }
        REQUIRE(kept.size() == 4);
        for (const auto& b : kept) {
            auto v = b.images.to_vector<float>();
            for (size_t k = 0; k < b.indices.size(); ++k)
                for (int p = 0; p < 36; ++p)
                    CHECK(v[k * 36 + (size_t)p] == (float)((13 * b.indices[k] + 3 * (p / 6) + 5 * (p % 6)) % 256) / 255.0f);
        }
    }
    {  // With no workers a dropped batch's buffer is the next batch's.
        o.workers = 0;
        Loader rec(recs, o);
        Batch b;
        REQUIRE(rec.next(b));
        const void* first = b.images.raw_data();
        b = Batch();
        REQUIRE(rec.next(b));
        CHECK(b.images.raw_data() == first);
    }
    // drop_last drops the partial batch.
    o.workers = 2;
    o.drop_last = true;
    Loader dl(recs, o);
    CHECK(dl.batches_per_epoch() == 2);
    CHECK(run_epoch(dl, 0).size() == 2);
}

TEST_CASE("loader: identical batches with 0, 1 and 4 workers; epochs change the order", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 13, 9, 7);
    LoaderOptions o;
    o.image_size = 5;
    o.channels = 3;
    o.batch_size = 3;
    o.seed = 2024;
    o.augment = noisy_flip;
    std::vector<std::vector<Batch>> runs;
    for (int workers : {0, 1, 4}) {
        for (int prefetch : {1, 4}) {
            o.workers = workers;
            o.prefetch = prefetch;
            Loader loader(recs, o);
            auto e1 = run_epoch(loader, 1);
            runs.push_back(e1);
        }
    }
    for (size_t r = 1; r < runs.size(); ++r) {
        REQUIRE(runs[r].size() == runs[0].size());
        for (size_t b = 0; b < runs[0].size(); ++b) {
            CHECK(runs[r][b].indices == runs[0][b].indices);
            CHECK(same_values(runs[r][b].images, runs[0][b].images));
            CHECK(same_values(runs[r][b].targets, runs[0][b].targets));
            CHECK(same_values(runs[r][b].mask, runs[0][b].mask));
        }
    }
    // The augmentation did something, and it depends on (seed, epoch, index): epoch 1 vs epoch 2 of record k differ.
    o.workers = 2;
    Loader loader(recs, o);
    auto e1 = run_epoch(loader, 1);
    auto e2 = run_epoch(loader, 2);
    auto e1b = run_epoch(loader, 1);
    std::vector<int64_t> o1, o2, o1b;
    for (auto& b : e1) o1.insert(o1.end(), b.indices.begin(), b.indices.end());
    for (auto& b : e2) o2.insert(o2.end(), b.indices.begin(), b.indices.end());
    for (auto& b : e1b) o1b.insert(o1b.end(), b.indices.begin(), b.indices.end());
    CHECK(o1 != o2);
    CHECK(o1 == o1b);
    CHECK(std::multiset<int64_t>(o1.begin(), o1.end()) == std::multiset<int64_t>(o2.begin(), o2.end()));
    for (size_t b = 0; b < e1.size(); ++b) CHECK(same_values(e1[b].images, e1b[b].images));
    // Without augmentation the image of record k is the same in every epoch; with it, it is not.
    auto image_of = [](const std::vector<Batch>& ep, int64_t idx) {
        for (auto& b : ep)
            for (size_t k = 0; k < b.indices.size(); ++k)
                if (b.indices[k] == idx) return b.images.narrow(0, (int64_t)k, 1).contiguous();
        FAIL("index not found");
        return Tensor();
    };
    CHECK_FALSE(same_values(image_of(e1, 0), image_of(e2, 0)));
    CHECK(cxr::data::augment_seed(2024, 1, 0) != cxr::data::augment_seed(2024, 2, 0));
    CHECK(cxr::data::augment_seed(2024, 1, 0) != cxr::data::augment_seed(2024, 1, 1));
    // next() before any start_epoch is epoch 0.
    Loader fresh(recs, o);
    Batch b0;
    REQUIRE(fresh.next(b0));
    CHECK(fresh.epoch() == 0);
    Loader ref(recs, o);
    CHECK(b0.indices == run_epoch(ref, 0)[0].indices);
}

TEST_CASE("loader: start_epoch(e, b) delivers the epoch's batches from b on, as the full epoch does",
          "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 13, 9, 7);
    LoaderOptions o;
    o.image_size = 5;
    o.channels = 3;
    o.batch_size = 3;
    o.seed = 7;
    o.augment = noisy_flip;
    for (int workers : {0, 2}) {
        o.workers = workers;
        Loader full(recs, o), resumed(recs, o);
        const auto all = run_epoch(full, 3);  // 5 batches (13 images, the last one short)
        REQUIRE(all.size() == 5);
        for (int64_t first : {0, 2, 4, 5}) {
            resumed.start_epoch(3, first);
            Batch b;
            for (int64_t k = first; k < 5; ++k) {
                REQUIRE(resumed.next(b));
                CHECK(b.indices == all[(size_t)k].indices);
                CHECK(same_values(b.images, all[(size_t)k].images));
            }
            CHECK_FALSE(resumed.next(b));
        }
        CHECK_THROWS_WITH(resumed.start_epoch(3, 6), Catch::Contains("outside 0..5"));
        CHECK_THROWS_WITH(resumed.start_epoch(3, -1), Catch::Contains("outside 0..5"));
    }
}

// pin_memory changes where a batch lives, never what it holds: pinned exactly when a CUDA device is present
// (page-locked memory needs one), ordinary memory otherwise, and the same values either way.
TEST_CASE("loader: pin_memory delivers the same batches, pinned where a CUDA device is present",
          "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 7, 8, 6);
    LoaderOptions o;
    o.image_size = 5;
    o.batch_size = 3;
    o.seed = 5;
    o.workers = 2;
    Loader plain(recs, o);
    o.pin_memory = true;
    Loader pinned(recs, o);
    const auto a = run_epoch(plain, 0), b = run_epoch(pinned, 0);
    const bool gpu = cxr::tensor::device_available(cxr::tensor::DeviceType::CUDA);
    INFO("CUDA device present: " << gpu);
    CHECK_FALSE(plain.pinned());
    CHECK(pinned.pinned() == gpu);
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
        CHECK(b[k].images.is_pinned() == gpu);
        CHECK_FALSE(b[k].targets.is_pinned());  // small: pageable by design (data/loader.h)
        CHECK_FALSE(a[k].images.is_pinned());
        CHECK(b[k].indices == a[k].indices);
        CHECK(same_values(b[k].images, a[k].images));
        CHECK(same_values(b[k].targets, a[k].targets));
        CHECK(same_values(b[k].mask, a[k].mask));
    }
}

TEST_CASE("loader: a missing or corrupt image surfaces in next() naming the file", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 8, 6, 6);
    recs[3].image_path = dir.file("missing.png");
    {
        std::ofstream bad(dir.file("corrupt.png"), std::ios::binary);
        bad << "\x89PNG\r\n\x1a\n this is not a png";
    }
    recs[6].image_path = dir.file("corrupt.png");
    for (int workers : {0, 1, 4}) {
        INFO("workers " << workers);
        LoaderOptions o;
        o.image_size = 6;
        o.channels = 1;
        o.batch_size = 2;
        o.shuffle = false;
        o.workers = workers;
        o.prefetch = 2;
        Loader loader(recs, o);
        std::vector<std::string> errors;
        int good = 0;
        Batch b;
        for (int step = 0; step < 10; ++step) {
            try {
                if (!loader.next(b)) break;
                ++good;
            } catch (const cxr::Error& e) {
                errors.push_back(e.what());
            }
        }
        CHECK(good == 2);  // batches {0,1} and {4,5}; {2,3} and {6,7} fail
        REQUIRE(errors.size() == 2);
        CHECK(errors[0].find("missing.png") != std::string::npos);
        CHECK(errors[0].find("record 3") != std::string::npos);
        CHECK(errors[1].find("corrupt.png") != std::string::npos);
    }
    // An augmentation returning the wrong shape is an error naming the image.
    LoaderOptions o;
    o.image_size = 6;
    o.channels = 1;
    o.batch_size = 2;
    o.workers = 2;
    o.augment = [](const Tensor& x, cxr::tensor::Generator&) { return x.narrow(1, 0, 3).contiguous(); };
    recs = make_records(dir, 2, 6, 6);
    Loader loader(recs, o);
    Batch b;
    try {
        loader.next(b);
        FAIL("expected an error");
    } catch (const cxr::Error& e) {
        CHECK(std::string(e.what()).find("img") != std::string::npos);
        CHECK(std::string(e.what()).find("augment returned [1, 3, 6]") != std::string::npos);
    }
}

TEST_CASE("loader: destruction mid-epoch joins cleanly", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 40, 16, 16);
    LoaderOptions o;
    o.image_size = 8;
    o.batch_size = 2;
    o.workers = 4;
    o.prefetch = 2;
    // A slow augmentation keeps workers busy when the loader goes away.
    o.augment = [](const Tensor& x, cxr::tensor::Generator&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return x;
    };
    const auto t0 = std::chrono::steady_clock::now();
    {
        Loader loader(recs, o);
        Batch b;
        REQUIRE(loader.next(b));
        REQUIRE(loader.next(b));
    }  // workers stop mid-epoch
    {
        Loader loader(recs, o);
        loader.start_epoch(0);
    }  // never consumed
    { Loader loader(recs, o); }  // never started
    {
        Loader loader(recs, o);
        Batch b;
        REQUIRE(loader.next(b));
        loader.start_epoch(1);  // restart mid-epoch
        int n = 0;
        while (loader.next(b)) ++n;
        CHECK(n == 20);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(secs < 5.0);
}

TEST_CASE("loader: cache file layout, equivalence and reuse", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 7, 11, 9);
    LoaderOptions o;
    o.image_size = 5;  // a real resize, so values are off the 8-bit grid
    o.channels = 3;
    o.batch_size = 3;
    o.seed = 5;
    o.workers = 2;
    Loader plain(recs, o);
    CHECK_FALSE(plain.cache_used());
    auto ref = run_epoch(plain, 0);

    struct Case {
        CacheFormat fmt;
        size_t bytes;
        double tol;
    };
    for (Case c : {Case{CacheFormat::u8, 1, 0.5 / 255 + 1e-6}, Case{CacheFormat::f16, 2, 1.0 / 4096},
                   Case{CacheFormat::f32, 4, 0.0}}) {
        INFO("format " << cxr::data::cache_format_name(c.fmt));
        const std::string path = dir.file(std::string("cache_") + cxr::data::cache_format_name(c.fmt) + ".bin");
        o.cache_path = path;
        o.cache_format = c.fmt;
        o.workers = 2;
        Loader built(recs, o);
        CHECK(built.cache_used());
        CHECK(built.cache_rebuilt());
        // Header as documented.
        auto bytes = file_bytes(path);
        REQUIRE(bytes.size() == 40 + 7 * 3 * 5 * 5 * c.bytes);
        CHECK(std::memcmp(bytes.data(), "CXRCACHE", 8) == 0);
        auto u32 = [&](size_t at) { return (uint32_t)(bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | (uint32_t)bytes[at + 3] << 24); };
        CHECK(u32(8) == 1);
        CHECK(u32(12) == (uint32_t)c.fmt);
        CHECK(u32(16) == 7);
        CHECK(u32(20) == 0);
        CHECK(u32(24) == 3);
        CHECK(u32(28) == 5);
        uint64_t key = 0;
        for (int i = 7; i >= 0; --i) key = (key << 8) | bytes[32 + (size_t)i];
        CHECK(key == cxr::data::cache_key(recs, 5, 3, c.fmt));
        // Record 4's first pixel at its documented offset.
        const float x = cxr::data::load_image(recs[4].image_path, 5, 3).to_vector<float>()[0];
        const size_t at = 40 + 4 * 75 * c.bytes;
        if (c.fmt == CacheFormat::u8) CHECK(bytes[at] == (uint8_t)std::lround(x * 255.0f));
        if (c.fmt == CacheFormat::f32) {
            float y;
            std::memcpy(&y, &bytes[at], 4);
            CHECK(y == x);
        }
        if (c.fmt == CacheFormat::f16)
            CHECK(cxr::tensor::half_bits_to_float((uint16_t)(bytes[at] | bytes[at + 1] << 8)) == Approx(x).margin(1e-3));

        auto first = run_epoch(built, 0);
        for (int workers : {0, 3}) {
            o.workers = workers;
            Loader reused(recs, o);
            CHECK(reused.cache_used());
            CHECK_FALSE(reused.cache_rebuilt());
            auto again = run_epoch(reused, 0);
            REQUIRE(again.size() == ref.size());
            for (size_t b = 0; b < ref.size(); ++b) {
                CHECK(again[b].indices == ref[b].indices);
                CHECK(same_values(again[b].images, first[b].images));
                CHECK(same_values(again[b].targets, ref[b].targets));
                const double err = max_abs_diff(again[b].images, ref[b].images);
                CHECK(err <= c.tol);
            }
        }
        CHECK(file_bytes(path) == bytes);  // reuse never rewrites
    }
    // No temporary files left behind.
    for (auto& e : fs::directory_iterator(dir.path)) CHECK(e.path().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("loader: a stale cache is rebuilt; a foreign file is refused", "[data][loader][cpu]") {
    TempDir dir;
    auto recs = make_records(dir, 5, 8, 8);
    LoaderOptions o;
    o.image_size = 4;
    o.channels = 1;
    o.batch_size = 5;
    o.shuffle = false;
    o.workers = 1;
    o.cache_format = CacheFormat::f32;
    o.cache_path = dir.file("c.bin");
    { Loader a(recs, o); CHECK(a.cache_rebuilt()); }
    { Loader a(recs, o); CHECK_FALSE(a.cache_rebuilt()); }
    // Other paths (same count): stale -> rebuilt, and the images are the new records'.
    auto other = recs;
    std::swap(other[0], other[1]);
    {
        Loader b(other, o);
        CHECK(b.cache_rebuilt());
        Batch batch;
        REQUIRE(b.next(batch));
        o.cache_path.clear();
        Loader nocache(other, o);
        Batch want;
        REQUIRE(nocache.next(want));
        CHECK(same_values(batch.images, want.images));
        o.cache_path = dir.file("c.bin");
    }
    // Another size: rebuilt.
    o.image_size = 3;
    { Loader c(other, o); CHECK(c.cache_rebuilt()); }
    { Loader c(other, o); CHECK_FALSE(c.cache_rebuilt()); }
    // A truncated file: rebuilt.
    fs::resize_file(o.cache_path, fs::file_size(o.cache_path) - 7);
    { Loader c(other, o); CHECK(c.cache_rebuilt()); }
    CHECK(fs::file_size(o.cache_path) == 40 + 5 * 9 * 4);
    // A wrong version: rebuilt.
    {
        std::fstream f(o.cache_path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(8);
        f.put((char)2);
    }
    { Loader c(other, o); CHECK(c.cache_rebuilt()); }
    // A file that is not a cache: an error, and the file is untouched.
    const std::string foreign = dir.file("notes.txt");
    { std::ofstream(foreign) << "my precious notes"; }
    o.cache_path = foreign;
    CHECK_THROWS_WITH(Loader(other, o), Catch::Contains("notes.txt") && Catch::Contains("not a cxr loader cache"));
    CHECK(file_bytes(foreign).size() == 17);
    // A missing image while building: the error names it and no cache (or temp file) is left.
    o.cache_path = dir.file("d.bin");
    auto broken = other;
    broken[2].image_path = dir.file("gone.png");
    CHECK_THROWS_WITH(Loader(broken, o), Catch::Contains("gone.png"));
    CHECK_FALSE(fs::exists(o.cache_path));
    for (auto& e : fs::directory_iterator(dir.path)) CHECK(e.path().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("loader: bad options are errors", "[data][loader][cpu]") {
    std::vector<Record> recs(4);
    auto bad = [&](auto edit, const std::string& what) {
        LoaderOptions o;
        edit(o);
        CHECK_THROWS_WITH(Loader(recs, o), Catch::Contains(what));
    };
    bad([](LoaderOptions& o) { o.batch_size = 0; }, "batch_size");
    bad([](LoaderOptions& o) { o.image_size = 0; }, "image_size");
    bad([](LoaderOptions& o) { o.channels = 2; }, "channels");
    bad([](LoaderOptions& o) { o.workers = -1; }, "workers");
    bad([](LoaderOptions& o) { o.prefetch = 0; }, "prefetch");
    bad([](LoaderOptions& o) { o.world_size = 0; }, "world_size");
    bad([](LoaderOptions& o) { o.world_size = 2; o.rank = 2; }, "rank");
    bad([](LoaderOptions& o) { o.rank = -1; }, "rank");
    bad([](LoaderOptions& o) { o.label_indices = {0, 14}; }, "label index 14");
    bad([](LoaderOptions& o) { o.label_indices = {-1}; }, "label index -1");
    bad([](LoaderOptions& o) { o.label_indices = {3, 3}; }, "listed twice");
    bad([](LoaderOptions& o) { o.cache_format = (CacheFormat)7; }, "cache_format");
    LoaderOptions o;
    Loader loader(recs, o);
    CHECK_THROWS_WITH(loader.start_epoch(-1), Catch::Contains("epoch"));
    CHECK_THROWS_WITH(cxr::data::parse_cache_format("f64"), Catch::Contains("f64"));
    CHECK(cxr::data::parse_cache_format("f16") == CacheFormat::f16);
    CHECK_THROWS_WITH(cxr::data::load_image("/nonexistent/x.png", 4, 2), Catch::Contains("channels"));
    CHECK_THROWS(cxr::data::resize_image(cxr::tensor::zeros({2, 2}), 1, 1));
    // An empty record list: no batches.
    Loader empty(std::vector<Record>{}, LoaderOptions{});
    Batch b;
    CHECK(empty.size() == 0);
    CHECK_FALSE(empty.next(b));
}

TEST_CASE("loader: nih1000 images load as decoded", "[data][loader][real-data]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const std::string root = cxr::testing::real_data_dir() + "/nih1000";
    auto recs = cxr::data::load_dataset("nih", root);
    REQUIRE(recs.size() == 1000);
    recs.resize(40);
    LoaderOptions o;
    o.image_size = 64;  // the stored size: identity resize
    o.channels = 1;
    o.batch_size = 16;
    o.workers = 2;
    Loader loader(recs, o);
    auto batches = run_epoch(loader, 0);
    REQUIRE(batches.size() == 3);
    const auto& b = batches[0];
    Tensor direct = cxr::data::read_image(recs[(size_t)b.indices[0]].image_path, cxr::data::ColorMode::gray);
    CHECK(same_values(b.images.narrow(0, 0, 1).contiguous().reshape({1, 64, 64}), direct));
}
