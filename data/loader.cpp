// Loader: epoch order (Philox Fisher–Yates + DistributedSampler sharding), the antialiased bilinear resize, the
// prefetching worker threads and the preprocessed cache file. The rules are written out in data/loader.h.
#include "data/loader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "data/image_io.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/philox.h"

namespace cxr::data {

using tensor::DType;
using tensor::Tensor;

int64_t Batch::size() const { return (int64_t)indices.size(); }

const char* cache_format_name(CacheFormat f) {
    switch (f) {
        case CacheFormat::u8: return "u8";
        case CacheFormat::f16: return "f16";
        case CacheFormat::f32: return "f32";
    }
    return "?";
}

CacheFormat parse_cache_format(const std::string& name) {
    if (name == "u8") return CacheFormat::u8;
    if (name == "f16") return CacheFormat::f16;
    if (name == "f32") return CacheFormat::f32;
    CXR_FAIL("unknown cache format '", name, "' (expected u8, f16 or f32)");
}

// ---------------------------------------------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------------------------------------------

namespace {

// One Philox4x32-10 block with key = seed and counter {lo(a), hi(a), lo(b), hi(b)}; returns (w1 << 32) | w0.
uint64_t philox_u64(uint64_t seed, uint64_t a, uint64_t b) {
    const uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    tensor::philox4x32_10(ctr, key, out);
    return ((uint64_t)out[1] << 32) | out[0];
}

constexpr uint64_t kAugmentTag = 0x6175676d656e7421ull;  // "augment!"

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
    CXR_CHECK(n >= 0, "epoch_permutation: n must be >= 0, got ", n);
    std::vector<int64_t> perm((size_t)n);
    for (int64_t i = 0; i < n; ++i) perm[(size_t)i] = i;
    if (!shuffle) return perm;
    for (int64_t i = n - 1, t = 0; i >= 1; --i, ++t) {
        const uint64_t x = philox_u64(seed, (uint64_t)t, (uint64_t)epoch);
        const int64_t j = (int64_t)(x % (uint64_t)(i + 1));
        std::swap(perm[(size_t)i], perm[(size_t)j]);
    }
    return perm;
}

std::vector<int64_t> shard_indices(const std::vector<int64_t>& order, int64_t rank, int64_t world_size,
                                   bool drop_last) {
    CXR_CHECK(world_size >= 1, "shard: world_size must be >= 1, got ", world_size);
    CXR_CHECK(rank >= 0 && rank < world_size, "shard: rank must be in [0, ", world_size, "), got ", rank);
    const int64_t n = (int64_t)order.size();
    const int64_t per_rank = drop_last ? n / world_size : (n + world_size - 1) / world_size;
    std::vector<int64_t> out;
    out.reserve((size_t)per_rank);
    for (int64_t k = 0; k < per_rank; ++k) {
        const int64_t pos = rank + k * world_size;  // position in the padded (or cut) list
        out.push_back(order[(size_t)(pos % n)]);    // padding repeats the list from its start
    }
    return out;
}

uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t index) {
    return philox_u64(seed ^ kAugmentTag, (uint64_t)index, (uint64_t)epoch);
}

// ---------------------------------------------------------------------------------------------------------------
// Resize
// ---------------------------------------------------------------------------------------------------------------

namespace {

// The taps of one dimension: output i reads in[first[i] .. first[i] + count[i]) with weights w[i * max_taps + k].
struct Taps {
    int out = 0, max_taps = 0;
    std::vector<int> first, count;
    std::vector<float> w;
};

Taps make_taps(int in, int out) {
    CXR_CHECK(in >= 1 && out >= 1, "resize: sizes must be >= 1 (in ", in, ", out ", out, ")");
    const double scale = (double)in / (double)out;
    const double support = std::max(scale, 1.0);
    const double inv = 1.0 / support;
    Taps t;
    t.out = out;
    t.max_taps = (int)std::ceil(support) * 2 + 1;
    t.first.resize((size_t)out);
    t.count.resize((size_t)out);
    t.w.assign((size_t)out * (size_t)t.max_taps, 0.0f);
    std::vector<double> ws((size_t)t.max_taps);
    for (int i = 0; i < out; ++i) {
        const double center = scale * (i + 0.5);
        const int lo = std::max((int)(center - support + 0.5), 0);
        const int hi = std::min((int)(center + support + 0.5), in);
        const int n = std::min(hi - lo, t.max_taps);
        double total = 0.0;
        for (int k = 0; k < n; ++k) {
            const double x = (lo + k - center + 0.5) * inv;
            ws[(size_t)k] = std::max(0.0, 1.0 - std::fabs(x));
            total += ws[(size_t)k];
        }
        CXR_CHECK(total > 0.0, "resize: no taps for output ", i, " (in ", in, ", out ", out, ")");
        t.first[(size_t)i] = lo;
        t.count[(size_t)i] = n;
        for (int k = 0; k < n; ++k) t.w[(size_t)i * t.max_taps + k] = (float)(ws[(size_t)k] / total);
    }
    return t;
}

}  // namespace

std::vector<float> resize_weights_aa(int in, int out) {
    const Taps t = make_taps(in, out);
    std::vector<float> m((size_t)out * (size_t)in, 0.0f);
    for (int i = 0; i < out; ++i)
        for (int k = 0; k < t.count[(size_t)i]; ++k)
            m[(size_t)i * in + t.first[(size_t)i] + k] = t.w[(size_t)i * t.max_taps + k];
    return m;
}

Tensor resize_image(const Tensor& image, int out_h, int out_w) {
    CXR_CHECK(image.dim() == 3, "resize_image: expected [C, H, W], got ", tensor::shape_str(image.sizes()));
    CXR_CHECK(out_h >= 1 && out_w >= 1, "resize_image: output size must be >= 1, got ", out_h, "x", out_w);
    Tensor x = image.to(tensor::Device::cpu()).to(DType::f32).contiguous();
    const int64_t C = x.size(0);
    const int H = (int)x.size(1), W = (int)x.size(2);
    // Width pass: [C, H, W] -> [C, H, out_w].
    Tensor mid = x;
    if (W != out_w) {
        const Taps t = make_taps(W, out_w);
        mid = Tensor::empty({C, H, out_w});
        const float* src = x.data<float>();
        float* dst = mid.data<float>();
        for (int64_t row = 0; row < C * H; ++row) {
            const float* s = src + row * W;
            float* d = dst + row * out_w;
            for (int i = 0; i < out_w; ++i) {
                const float* w = t.w.data() + (size_t)i * t.max_taps;
                const float* sp = s + t.first[(size_t)i];
                float acc = 0.0f;
                for (int k = 0; k < t.count[(size_t)i]; ++k) acc += w[k] * sp[k];
                d[i] = acc;
            }
        }
    }
    if (H == out_h) return mid;
    // Height pass: [C, H, out_w] -> [C, out_h, out_w], one row AXPY per tap.
    const Taps t = make_taps(H, out_h);
    Tensor out = Tensor::empty({C, out_h, out_w});
    const float* src = mid.data<float>();
    float* dst = out.data<float>();
    for (int64_t c = 0; c < C; ++c) {
        for (int i = 0; i < out_h; ++i) {
            float* d = dst + (c * out_h + i) * out_w;
            std::fill(d, d + out_w, 0.0f);
            for (int k = 0; k < t.count[(size_t)i]; ++k) {
                const float wk = t.w[(size_t)i * t.max_taps + k];
                const float* s = src + (c * H + t.first[(size_t)i] + k) * out_w;
                for (int j = 0; j < out_w; ++j) d[j] += wk * s[j];
            }
        }
    }
    return out;
}

Tensor load_image(const std::string& path, int size, int channels) {
    CXR_CHECK(channels == 1 || channels == 3, "load_image: channels must be 1 or 3, got ", channels);
    Tensor img = read_image(path, channels == 1 ? ColorMode::gray : ColorMode::keep);  // [c, H, W]
    CXR_CHECK(img.size(0) == 1 || img.size(0) == channels, path, ": decoded ", img.size(0),
              " channels, cannot make ", channels);
    Tensor r = resize_image(img, size, size);  // [c, S, S]
    if (r.size(0) == channels) return r;
    // Gray to RGB: the resized plane repeated (resizing is per channel, so this equals resizing the repeat).
    Tensor out = Tensor::empty({3, size, size});
    const size_t plane = (size_t)size * (size_t)size;
    for (int c = 0; c < 3; ++c) std::memcpy(out.data<float>() + c * plane, r.data<float>(), plane * sizeof(float));
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Cache file
// ---------------------------------------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'C', 'X', 'R', 'C', 'A', 'C', 'H', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 40;

size_t format_bytes(CacheFormat f) { return f == CacheFormat::u8 ? 1 : f == CacheFormat::f16 ? 2 : 4; }

void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
uint64_t get_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void encode_pixels(const float* x, size_t n, CacheFormat f, uint8_t* out) {
    switch (f) {
        case CacheFormat::u8:
            for (size_t i = 0; i < n; ++i) {
                const float v = std::min(std::max(x[i], 0.0f), 1.0f);
                out[i] = (uint8_t)std::lround(v * 255.0f);
            }
            break;
        case CacheFormat::f16:
            for (size_t i = 0; i < n; ++i) {
                const uint16_t h = tensor::float_to_half_bits(x[i]);
                out[2 * i] = (uint8_t)h;
                out[2 * i + 1] = (uint8_t)(h >> 8);
            }
            break;
        case CacheFormat::f32:
            for (size_t i = 0; i < n; ++i) {
                uint32_t b;
                std::memcpy(&b, &x[i], 4);
                put_u32(out + 4 * i, b);
            }
            break;
    }
}

void decode_pixels(const uint8_t* in, size_t n, CacheFormat f, float* x) {
    switch (f) {
        case CacheFormat::u8:
            for (size_t i = 0; i < n; ++i) x[i] = (float)in[i] / 255.0f;
            break;
        case CacheFormat::f16:
            for (size_t i = 0; i < n; ++i)
                x[i] = tensor::half_bits_to_float((uint16_t)(in[2 * i] | (in[2 * i + 1] << 8)));
            break;
        case CacheFormat::f32:
            for (size_t i = 0; i < n; ++i) {
                const uint32_t b = get_u32(in + 4 * i);
                std::memcpy(&x[i], &b, 4);
            }
            break;
    }
}

void write_all_at(int fd, const uint8_t* p, size_t n, uint64_t offset, const std::string& path) {
    while (n > 0) {
        const ssize_t k = ::pwrite(fd, p, n, (off_t)offset);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) CXR_FAIL(path, ": write error (", std::strerror(errno), ")");
        p += k;
        n -= (size_t)k;
        offset += (uint64_t)k;
    }
}

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

uint64_t cache_key(const std::vector<Record>& records, int size, int channels, CacheFormat format) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
    auto mix = [&h](const char* p, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            h ^= (uint8_t)p[i];
            h *= 0x100000001b3ull;  // FNV prime
        }
    };
    const char zero = 0;
    for (const Record& r : records) {
        mix(r.image_path.data(), r.image_path.size());
        mix(&zero, 1);
    }
    const std::string tail = "S=" + std::to_string(size) + ";C=" + std::to_string(channels) +
                             ";F=" + cache_format_name(format);
    mix(tail.data(), tail.size());
    return h;
}

// ---------------------------------------------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------------------------------------------

namespace {
struct Stopped {};  // thrown inside a worker when the loader stops mid-batch
}  // namespace

struct Loader::Impl {
    std::vector<Record> records;
    LoaderOptions opt;
    std::vector<int> labels;  // CheXpert columns of the targets

    // Cache mapping.
    int cache_fd = -1;
    const uint8_t* cache_map = nullptr;
    size_t cache_bytes = 0;
    size_t record_bytes = 0;
    bool rebuilt = false;

    // Epoch state.
    bool started = false;
    int64_t epoch = 0;
    std::vector<int64_t> order;  // this rank's positions, delivery order
    int64_t nbatches = 0;
    int64_t next_consume = 0;

    // Worker state (guarded by mu).
    struct Slot {
        bool ready = false;
        Batch batch;
        std::string error;
    };
    std::mutex mu;
    std::condition_variable cv_ready, cv_space;
    std::vector<Slot> slots;
    int64_t next_claim = 0;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;

    // Recycled batch image buffers: a storage whose only owner is this pool (use_count 1: the consumer dropped
    // every tensor and view of that batch) is handed out again, so steady-state epochs do not page-fault fresh
    // memory for every batch. Only the pool can add owners, under pool_mu, so a count of 1 cannot grow meanwhile.
    std::mutex pool_mu;
    std::vector<std::shared_ptr<tensor::Storage>> pool;
    bool pinned_batches = false;  // under pool_mu: whether the last buffer allocated is pinned

    Tensor batch_buffer(int64_t B, int64_t C, int64_t S) {
        const tensor::Shape sizes = {B, C, S, S};
        const size_t bytes = (size_t)(B * C * S * S) * sizeof(float);
        std::lock_guard<std::mutex> lock(pool_mu);
        for (auto& st : pool)
            if (st.use_count() == 1 && st->nbytes == bytes)
                return Tensor::make_view(st, sizes, tensor::contiguous_strides(sizes), 0, DType::f32);
        Tensor t = opt.pin_memory ? Tensor::empty_pinned(sizes) : Tensor::empty(sizes);
        pinned_batches = t.is_pinned();
        const size_t cap = (size_t)(opt.prefetch + opt.workers + 2);
        if (pool.size() < cap) {
            pool.push_back(t.storage());
        } else {
            for (auto& st : pool)
                if (st.use_count() == 1) {  // replace an idle buffer of another size (the last partial batch)
                    st = t.storage();
                    break;
                }
        }
        return t;
    }

    ~Impl() {
        stop_workers();
        unmap();
    }

    int64_t shard_size() const {
        const int64_t n = (int64_t)records.size();
        return opt.drop_last ? n / opt.world_size : (n + opt.world_size - 1) / opt.world_size;
    }
    int64_t batch_count() const {
        const int64_t m = shard_size();
        return opt.drop_last ? m / opt.batch_size : (m + opt.batch_size - 1) / opt.batch_size;
    }

    // One record's image before augmentation: [C, S, S] f32.
    Tensor base_image(int64_t index) const {
        const int S = opt.image_size, C = opt.channels;
        if (!cache_map) return load_image(records[(size_t)index].image_path, S, C);
        Tensor img = Tensor::empty({C, S, S});
        decode_cached(index, img.data<float>());
        return img;
    }

    void decode_cached(int64_t index, float* dst) const {
        decode_pixels(cache_map + kHeaderBytes + (size_t)index * record_bytes,
                      (size_t)opt.channels * opt.image_size * opt.image_size, opt.cache_format, dst);
    }

    // Writes the final image of `index` (after augmentation) to dst [C, S, S].
    void final_image(int64_t index, int64_t ep, float* dst) const {
        const size_t n = (size_t)opt.channels * opt.image_size * opt.image_size;
        if (!opt.augment && cache_map) {  // straight from the mapped file into the batch
            decode_cached(index, dst);
            return;
        }
        Tensor img = base_image(index);
        if (opt.augment) {
            tensor::Generator gen(augment_seed(opt.seed, ep, index));
            Tensor out = opt.augment(img, gen);
            const int64_t S = opt.image_size;
            CXR_CHECK(out.defined() && out.dim() == 3 && out.size(0) == opt.channels && out.size(1) == S &&
                          out.size(2) == S,
                      "augment returned ",
                      out.defined() ? tensor::shape_str(out.sizes()) : std::string("no tensor"), ", expected [",
                      opt.channels, ", ", S, ", ", S, "]");
            img = out.detach().to(tensor::Device::cpu()).to(DType::f32).contiguous();
        }
        std::memcpy(dst, img.data<float>(), n * sizeof(float));
    }

    void make_batch(int64_t b, Batch& batch, bool check_stop) {
        const int64_t begin = b * opt.batch_size;
        const int64_t end = std::min(begin + opt.batch_size, (int64_t)order.size());
        const int64_t B = end - begin;
        const int64_t C = opt.channels, S = opt.image_size, L = (int64_t)labels.size();
        batch.indices.assign(order.begin() + begin, order.begin() + end);
        batch.images = batch_buffer(B, C, S);
        // targets and mask: written in full below (0 or 1 for every entry). Pageable even with pin_memory: they are
        // B·L floats, and a cudaHostAlloc per batch would cost more than their copy (the image buffers are pinned
        // once and reused from the pool).
        batch.targets = Tensor::empty({B, L});
        batch.mask = Tensor::empty({B, L});
        float* tg = batch.targets.data<float>();
        float* mk = batch.mask.data<float>();
        const size_t image_floats = (size_t)(C * S * S);
        for (int64_t k = 0; k < B; ++k) {
            if (check_stop && stop.load()) throw Stopped{};
            const int64_t index = batch.indices[(size_t)k];
            const Record& rec = records[(size_t)index];
            for (int64_t l = 0; l < L; ++l) {
                const LabelValue v = rec.labels[(size_t)labels[(size_t)l]];
                tg[k * L + l] = v == LabelValue::positive ? 1.0f : 0.0f;
                mk[k * L + l] = (v == LabelValue::positive || v == LabelValue::negative) ? 1.0f : 0.0f;
            }
            try {
                final_image(index, epoch, batch.images.data<float>() + k * image_floats);
            } catch (const std::exception& e) {
                throw Error("loader: record " + std::to_string(index) + " (" + rec.image_path + "): " + e.what());
            }
        }
    }

    void worker_loop() {
        for (;;) {
            int64_t b;
            {
                std::unique_lock<std::mutex> lock(mu);
                cv_space.wait(lock, [&] {
                    return stop.load() || next_claim >= nbatches || next_claim < next_consume + opt.prefetch;
                });
                if (stop.load() || next_claim >= nbatches) return;
                b = next_claim++;
            }
            Slot s;
            try {
                make_batch(b, s.batch, true);
            } catch (const Stopped&) {
                return;
            } catch (const std::exception& e) {
                s.error = e.what();
            } catch (...) {
                s.error = "loader: unknown error while making batch " + std::to_string(b);
            }
            {
                std::lock_guard<std::mutex> lock(mu);
                s.ready = true;
                slots[(size_t)b] = std::move(s);
            }
            cv_ready.notify_all();
        }
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stop.store(true);
        }
        cv_space.notify_all();
        cv_ready.notify_all();
        for (auto& t : threads) t.join();
        threads.clear();
        stop.store(false);
    }

    void begin_epoch(int64_t ep, int64_t first_batch = 0) {
        stop_workers();
        epoch = ep;
        order = shard_indices(epoch_permutation((int64_t)records.size(), opt.seed, ep, opt.shuffle), opt.rank,
                              opt.world_size, opt.drop_last);
        nbatches = batch_count();
        CXR_CHECK(first_batch >= 0 && first_batch <= nbatches, "Loader::start_epoch: first batch ", first_batch,
                  " is outside 0..", nbatches);
        next_consume = first_batch;
        next_claim = first_batch;
        slots.assign((size_t)nbatches, Slot{});
        started = true;
        if (opt.workers > 0)
            for (int w = 0; w < opt.workers; ++w) threads.emplace_back([this] { worker_loop(); });
    }

    bool next(Batch& out) {
        if (!started) begin_epoch(0);
        if (next_consume >= nbatches) return false;
        const int64_t b = next_consume;
        if (opt.workers == 0) {
            ++next_consume;
            Batch fresh;
            make_batch(b, fresh, false);
            out = std::move(fresh);
            return true;
        }
        Slot s;
        {
            std::unique_lock<std::mutex> lock(mu);
            cv_ready.wait(lock, [&] { return slots[(size_t)b].ready; });
            s = std::move(slots[(size_t)b]);
            slots[(size_t)b] = Slot{};
            ++next_consume;
        }
        cv_space.notify_all();
        if (!s.error.empty()) throw Error(s.error);
        out = std::move(s.batch);
        return true;
    }

    // ---- cache ----

    void unmap() {
        if (cache_map) ::munmap(const_cast<uint8_t*>(cache_map), cache_bytes);
        if (cache_fd >= 0) ::close(cache_fd);
        cache_map = nullptr;
        cache_fd = -1;
    }

    // Maps `path` if it is a valid cache for these records; false if stale; throws if not a cache file.
    bool try_map(const std::string& path, uint64_t key) {
        const int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) {
            if (errno == ENOENT) return false;
            CXR_FAIL(path, ": cannot open the loader cache (", std::strerror(errno), ")");
        }
        struct stat st;
        if (::fstat(fd, &st) != 0) {
            ::close(fd);
            CXR_FAIL(path, ": cannot stat the loader cache (", std::strerror(errno), ")");
        }
        const size_t bytes = (size_t)st.st_size;
        uint8_t header[kHeaderBytes] = {0};
        const ssize_t got = ::pread(fd, header, kHeaderBytes, 0);
        if (got < (ssize_t)sizeof(kMagic) || std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
            ::close(fd);
            CXR_FAIL(path, ": exists and is not a cxr loader cache (no CXRCACHE magic); refusing to overwrite it "
                           "(delete it or choose another cache_path)");
        }
        const size_t expected = kHeaderBytes + records.size() * record_bytes;
        const bool fresh = got == (ssize_t)kHeaderBytes && get_u32(header + 8) == kVersion &&
                           get_u32(header + 12) == (uint32_t)opt.cache_format &&
                           get_u64(header + 16) == (uint64_t)records.size() &&
                           get_u32(header + 24) == (uint32_t)opt.channels &&
                           get_u32(header + 28) == (uint32_t)opt.image_size && get_u64(header + 32) == key &&
                           bytes == expected;
        if (!fresh) {
            ::close(fd);
            return false;
        }
        void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            ::close(fd);
            CXR_FAIL(path, ": cannot map the loader cache (", std::strerror(errno), ")");
        }
        cache_fd = fd;
        cache_map = (const uint8_t*)m;
        cache_bytes = bytes;
        return true;
    }

    void build_cache(const std::string& path, uint64_t key) {
        const std::string tmp = path + ".tmp." + std::to_string((long)::getpid()) + "." +
                                std::to_string(g_tmp_counter.fetch_add(1));
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) CXR_FAIL(tmp, ": cannot create the loader cache (", std::strerror(errno), ")");
        std::string error;
        try {
            uint8_t header[kHeaderBytes] = {0};
            std::memcpy(header, kMagic, sizeof(kMagic));
            put_u32(header + 8, kVersion);
            put_u32(header + 12, (uint32_t)opt.cache_format);
            put_u64(header + 16, (uint64_t)records.size());
            put_u32(header + 24, (uint32_t)opt.channels);
            put_u32(header + 28, (uint32_t)opt.image_size);
            put_u64(header + 32, key);
            write_all_at(fd, header, kHeaderBytes, 0, tmp);
            // Records in parallel: each thread claims the next record and writes it at its own offset.
            std::atomic<int64_t> next{0};
            std::atomic<bool> failed{false};
            std::mutex err_mu;
            auto work = [&] {
                std::vector<uint8_t> buf(record_bytes);
                for (;;) {
                    const int64_t i = next.fetch_add(1);
                    if (i >= (int64_t)records.size() || failed.load()) return;
                    try {
                        Tensor img;
                        try {
                            img = load_image(records[(size_t)i].image_path, opt.image_size, opt.channels);
                        } catch (const std::exception& e) {
                            throw Error("loader cache: record " + std::to_string(i) + " (" +
                                        records[(size_t)i].image_path + "): " + e.what());
                        }
                        encode_pixels(img.data<float>(), (size_t)img.numel(), opt.cache_format, buf.data());
                        write_all_at(fd, buf.data(), record_bytes, kHeaderBytes + (uint64_t)i * record_bytes, tmp);
                    } catch (const std::exception& e) {
                        std::lock_guard<std::mutex> lock(err_mu);
                        if (!failed.exchange(true)) error = e.what();
                        return;
                    }
                }
            };
            const int nthreads = std::max(1, opt.workers);
            if (nthreads == 1) {
                work();
            } else {
                std::vector<std::thread> pool;
                for (int t = 0; t < nthreads; ++t) pool.emplace_back(work);
                for (auto& t : pool) t.join();
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (error.empty() && ::close(fd) != 0) error = tmp + ": close failed (" + std::strerror(errno) + ")";
        else if (!error.empty()) ::close(fd);
        if (error.empty() && std::rename(tmp.c_str(), path.c_str()) != 0)
            error = path + ": cannot rename the temporary cache into place (" + std::strerror(errno) + ")";
        if (!error.empty()) {
            ::unlink(tmp.c_str());
            throw Error(error);
        }
    }

    void open_cache() {
        const std::string& path = opt.cache_path;
        record_bytes = (size_t)opt.channels * opt.image_size * opt.image_size * format_bytes(opt.cache_format);
        const uint64_t key = cache_key(records, opt.image_size, opt.channels, opt.cache_format);
        if (try_map(path, key)) return;
        build_cache(path, key);
        rebuilt = true;
        CXR_CHECK(try_map(path, key), path, ": the loader cache just written does not validate");
    }
};

Loader::Loader(std::vector<Record> records, LoaderOptions options) : impl_(std::make_unique<Impl>()) {
    const LoaderOptions& o = options;
    CXR_CHECK(o.batch_size >= 1, "Loader: batch_size must be >= 1, got ", o.batch_size);
    CXR_CHECK(o.image_size >= 1, "Loader: image_size must be >= 1, got ", o.image_size);
    CXR_CHECK(o.channels == 1 || o.channels == 3, "Loader: channels must be 1 or 3, got ", o.channels);
    CXR_CHECK(o.workers >= 0, "Loader: workers must be >= 0, got ", o.workers);
    CXR_CHECK(o.prefetch >= 1, "Loader: prefetch must be >= 1, got ", o.prefetch);
    CXR_CHECK(o.world_size >= 1, "Loader: world_size must be >= 1, got ", o.world_size);
    CXR_CHECK(o.rank >= 0 && o.rank < o.world_size, "Loader: rank must be in [0, ", o.world_size, "), got ",
              o.rank);
    const uint32_t fmt = (uint32_t)o.cache_format;
    CXR_CHECK(fmt <= 2, "Loader: unknown cache_format ", fmt);
    std::vector<int> labels = o.label_indices;
    if (labels.empty())
        for (int i = 0; i < kNumChexpertLabels; ++i) labels.push_back(i);
    std::vector<bool> seen(kNumChexpertLabels, false);
    for (int l : labels) {
        CXR_CHECK(l >= 0 && l < kNumChexpertLabels, "Loader: label index ", l, " is outside [0, ",
                  kNumChexpertLabels, ")");
        CXR_CHECK(!seen[(size_t)l], "Loader: label index ", l, " is listed twice");
        seen[(size_t)l] = true;
    }
    impl_->records = std::move(records);
    impl_->opt = std::move(options);
    impl_->labels = std::move(labels);
    if (!impl_->opt.cache_path.empty()) impl_->open_cache();
}

Loader::~Loader() = default;  // Impl's destructor stops and joins the workers and unmaps the cache

int64_t Loader::size() const { return impl_->shard_size(); }
int64_t Loader::batches_per_epoch() const { return impl_->batch_count(); }
void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
    CXR_CHECK(epoch >= 0, "Loader::start_epoch: epoch must be >= 0, got ", epoch);
    impl_->begin_epoch(epoch, first_batch);
}
bool Loader::next(Batch& batch) { return impl_->next(batch); }
const std::vector<Record>& Loader::records() const { return impl_->records; }
const LoaderOptions& Loader::options() const { return impl_->opt; }
int64_t Loader::epoch() const { return impl_->epoch; }
const std::vector<int64_t>& Loader::epoch_indices() const { return impl_->order; }
bool Loader::cache_used() const { return impl_->cache_map != nullptr; }
bool Loader::cache_rebuilt() const { return impl_->rebuilt; }
bool Loader::pinned() const {
    std::lock_guard<std::mutex> lock(impl_->pool_mu);
    return impl_->pinned_batches;
}

}  // namespace cxr::data
