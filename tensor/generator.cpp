// Generator state and the host fill functions of generator.h, following the STREAM SPEC of tensor/philox.h.
#include "tensor/generator.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/philox.h"

namespace cxr::tensor {

// ---------------------------------------------------------------- Generator

Generator::Generator(const Generator& other) {
    std::lock_guard<std::mutex> lock(other.mutex_);
    seed_ = other.seed_;
    offset_ = other.offset_;
}

Generator& Generator::operator=(const Generator& other) {
    if (this == &other) return *this;
    uint64_t seed, offset;
    {
        std::lock_guard<std::mutex> lock(other.mutex_);
        seed = other.seed_;
        offset = other.offset_;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = offset;
    return *this;
}

void Generator::manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = 0;
}

uint64_t Generator::seed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seed_;
}

uint64_t Generator::offset() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return offset_;
}

void Generator::set_offset(uint64_t offset) {
    CXR_CHECK(offset % 4 == 0, "Generator::set_offset: offset ", offset, " is not a multiple of 4");
    std::lock_guard<std::mutex> lock(mutex_);
    offset_ = offset;
}

uint64_t Generator::reserve(uint64_t words) {
    CXR_CHECK(words <= UINT64_MAX - 3, "Generator::reserve: ", words, " words is too many");
    const uint64_t rounded = (words + 3) / 4 * 4;
    std::lock_guard<std::mutex> lock(mutex_);
    CXR_CHECK(rounded <= UINT64_MAX - offset_, "Generator::reserve: the stream of seed ", seed_,
              " is exhausted (offset ", offset_, " + ", rounded, " words passes 2^64); reseed the generator");
    const uint64_t start = offset_;
    offset_ += rounded;
    return start;
}

Generator& default_generator() {
    static Generator generator;
    return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

// ---------------------------------------------------------------- host fills

namespace {

// Sequential reader of stream words starting at an absolute index, one Philox block per 4 words.
class WordReader {
public:
    WordReader(uint64_t seed, uint64_t index) : seed_(seed), index_(index) {
        block_index_ = index_ >> 2;
        philox_block(seed_, block_index_, block_);
    }
    uint32_t next() {
        if ((index_ >> 2) != block_index_) {
            block_index_ = index_ >> 2;
            philox_block(seed_, block_index_, block_);
        }
        return block_[index_++ & 3u];
    }

private:
    uint64_t seed_;
    uint64_t index_;        // absolute index of the next word
    uint64_t block_index_;  // Philox counter of the block held in block_
    uint32_t block_[4];
};

void check_fill_args(const void* out, int64_t n, const char* what) {
    CXR_CHECK(n >= 0, what, ": negative count ", n);
    CXR_CHECK(n == 0 || out != nullptr, what, ": null output pointer");
}

}  // namespace

void fill_uniform_f32(float* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
    check_fill_args(out, n, "fill_uniform_f32");
    CXR_CHECK(lo <= hi, "fill_uniform_f32: lo ", lo, " > hi ", hi);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; ++k) out[k] = uniform_f32_in(uniform_f32_from_u32(words.next()), lo, hi);
}

void fill_uniform_f64(double* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
    check_fill_args(out, n, "fill_uniform_f64");
    CXR_CHECK(lo <= hi, "fill_uniform_f64: lo ", lo, " > hi ", hi);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; ++k) {
        const uint32_t w_lo = words.next();
        const uint32_t w_hi = words.next();
        out[k] = uniform_f64_in(uniform_f64_from_u32x2(w_lo, w_hi), lo, hi);
    }
}

void fill_normal_f32(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
    check_fill_args(out, n, "fill_normal_f32");
    CXR_CHECK(std >= 0.0f, "fill_normal_f32: std must be >= 0, got ", std);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; k += 2) {
        const uint32_t w1 = words.next();
        const uint32_t w2 = words.next();
        out[k] = fmaf(normal_f32_from_u32x2(w1, w2, 0), std, mean);
        if (k + 1 < n) out[k + 1] = fmaf(normal_f32_from_u32x2(w1, w2, 1), std, mean);
    }
}

void fill_normal_f64(double* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
    check_fill_args(out, n, "fill_normal_f64");
    CXR_CHECK(std >= 0.0, "fill_normal_f64: std must be >= 0, got ", std);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; k += 2) {
        uint32_t w[4];
        for (auto& x : w) x = words.next();
        out[k] = fma(normal_f64_from_u32x4(w[0], w[1], w[2], w[3], 0), std, mean);
        if (k + 1 < n) out[k + 1] = fma(normal_f64_from_u32x4(w[0], w[1], w[2], w[3], 1), std, mean);
    }
}

void fill_randint_i64(int64_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
    check_fill_args(out, n, "fill_randint_i64");
    CXR_CHECK(low < high, "fill_randint_i64: empty range [", low, ", ", high, ")");
    const uint64_t range = (uint64_t)high - (uint64_t)low;
    const bool two_words = randint_uses_two_words(low, high);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; ++k) {
        uint64_t x = words.next();
        if (two_words) x |= (uint64_t)words.next() << 32;
        out[k] = randint_from_u64(x, low, range);
    }
}

void fill_bernoulli(uint8_t* out, int64_t n, uint64_t seed, uint64_t offset, float p) {
    check_fill_args(out, n, "fill_bernoulli");
    CXR_CHECK(p >= 0.0f && p <= 1.0f, "fill_bernoulli: p must be in [0, 1], got ", p);
    WordReader words(seed, offset);
    for (int64_t k = 0; k < n; ++k) out[k] = bernoulli_from_u32(words.next(), p);
}

}  // namespace cxr::tensor
