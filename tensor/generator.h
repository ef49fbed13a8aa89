// Generator: the (seed, offset) state of a Philox 4x32-10 random stream, the process-wide default generator,
// and host functions that fill arrays with uniform, normal, randint and bernoulli values.
//
// The values follow the STREAM SPEC in tensor/philox.h exactly (the CUDA backend implements the same spec), so
// a fill_* call here and the corresponding GPU kernel give the same numbers for the same (seed, offset).
// A random op asks its generator to reserve() the words its draw consumes (philox.h *_words functions) and
// passes the returned start offset to the fill/kernel; reserve() rounds up to a whole Philox block (4 words),
// so offsets handed out by a Generator are always multiples of 4 and no two draws share a block.
#pragma once

#include <cstdint>
#include <mutex>

namespace cxr::tensor {

class Generator {
public:
    static constexpr uint64_t kDefaultSeed = 0x5eed;

    Generator() = default;
    explicit Generator(uint64_t seed) : seed_(seed) {}
    Generator(const Generator& other);
    Generator& operator=(const Generator& other);

    // Sets the seed and restarts the stream at offset 0.
    void manual_seed(uint64_t seed);
    uint64_t seed() const;
    uint64_t offset() const;
    // Moves the stream position (e.g. when restoring a checkpoint). Must be a multiple of 4.
    void set_offset(uint64_t offset);
    // Returns the current offset and advances it by `words` rounded up to a multiple of 4. Thread-safe.
    // Throws cxr::Error if the offset would pass 2^64.
    uint64_t reserve(uint64_t words);

private:
    mutable std::mutex mutex_;
    uint64_t seed_ = kDefaultSeed;
    uint64_t offset_ = 0;
};

// The process-wide generator used by random ops that are not given one (seed kDefaultSeed at start-up).
Generator& default_generator();
// Seeds the default generator (offset back to 0).
void manual_seed(uint64_t seed);

// ---- host fills (STREAM SPEC of philox.h; `offset` is a word offset, any value allowed) ----

// out[k] = uniform in [lo, hi), value k uses word offset + k.
void fill_uniform_f32(float* out, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
// out[k] = uniform in [lo, hi), value k uses words offset + 2k, offset + 2k + 1.
void fill_uniform_f64(double* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
// out[k] = mean + std * z_k, Box-Muller pairs in float; consumes normal_f32_words(n) words.
void fill_normal_f32(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std);
// out[k] = mean + std * z_k, Box-Muller pairs in double; consumes normal_f64_words(n) words.
void fill_normal_f64(double* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// out[k] uniform integer in [low, high) by modulo (bias documented in philox.h); requires low < high.
void fill_randint_i64(int64_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
// out[k] = 1 if uniform_f32 < p else 0 (bytes, usable as u8 or bool storage); requires 0 <= p <= 1.
void fill_bernoulli(uint8_t* out, int64_t n, uint64_t seed, uint64_t offset, float p);

}  // namespace cxr::tensor
