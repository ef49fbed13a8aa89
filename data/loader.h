// Loader: batches of (image, multi-label target, known-label mask) from a list of Records, decoded and augmented
// by worker threads ahead of the consumer, in an order that depends only on (seed, epoch, rank, world_size).
//
// Epoch order (the rule of torch.utils.data.DistributedSampler, with a Philox permutation in place of torch's):
//   1. perm = 0..N-1, or with shuffle a Fisher–Yates (Durstenfeld) shuffle driven by Philox4x32-10
//      (tensor/philox.h) with key = seed and, for step t = 0..N-2 (i = N-1-t), counter
//      {lo32(t), hi32(t), lo32(epoch), hi32(epoch)}; the block's words w0, w1 give x = (w1 << 32) | w0,
//      j = x mod (i + 1), swap(perm[i], perm[j]).  (Modulo bias below (i+1) / 2^64: negligible.)
//   2. W = world_size. Without drop_last: per-rank count M = ceil(N / W); perm is padded to M·W by repeating
//      itself from the start (as often as needed). With drop_last: M = floor(N / W) and the tail is cut to M·W.
//   3. Rank r takes perm[r], perm[r + W], perm[r + 2W], ... (M entries).
//   4. Batches are consecutive runs of batch_size entries; with drop_last a final partial batch is dropped
//      (drop_last is passed to both the sampler and the batching, torch's usual setting).
// So order = f(seed, epoch) only; workers, prefetch and thread timing never change it.
//
// Per image: read (data/image_io.h; ColorMode gray when channels = 1), resized to S x S (square; aspect ratio is
// not kept) by the antialiased bilinear rule below, gray repeated to 3 channels when channels = 3, then
// `augment(image, gen)` with gen = Generator(aug_seed) at offset 0, where aug_seed = (w1 << 32) | w0 of Philox
// with key = seed XOR 0x6175676d656e7421 ("augment!") and counter {lo32(index), hi32(index), lo32(epoch),
// hi32(epoch)}, index = the record's position in records().
//
// Resize rule: separable antialiased bilinear, the PIL / torchvision (antialias=True) filter. Per dimension with
// scale s = in / out and support = max(s, 1), output i has center c = s · (i + ½), taps
// j ∈ [max(int(c - support + ½), 0), min(int(c + support + ½), in)) and weights
// w_j = max(0, 1 - |(j - c + ½) / max(s, 1)|), normalised to sum 1. Width is filtered first, then height,
// in float with float weights. Upsampling (s < 1) is plain bilinear (align_corners = False) with edge clamping;
// in == out is the identity.
//
// Targets and mask over L = label_indices.size() columns (all 14 CheXpert labels when empty):
//   positive -> target 1, mask 1;  negative -> target 0, mask 1;  uncertain, unknown -> target 0, mask 0.
// Uncertain labels count as unknown unless the caller applied an uncertainty policy first (data/labels.h).
//
// Threads: `workers` threads each claim the next batch number (an atomic counter), but never more than
// `prefetch` batches ahead of the consumer (a bounded window), decode it into its own tensors and post it to the
// batch's slot; next() waits for exactly the next batch number, so delivery order is the epoch order whatever the
// timing. workers = 0 decodes on the calling thread inside next(). An error while making a batch (missing or
// corrupt image, a bad augment result) is stored in that batch's slot and thrown by next() as cxr::Error naming
// the file; the stream then moves past that batch. start_epoch() and the destructor stop and join the workers
// (work in flight finishes the image it is on), so ending mid-epoch never deadlocks.
//
// Preprocessed cache (cache_path non-empty): one binary file of every record's decoded, resized image (before
// augmentation), little-endian:
//   offset  0  char[8]  magic "CXRCACHE"
//           8  u32      version (1)
//          12  u32      pixel format: 0 = u8, 1 = f16 (IEEE binary16), 2 = f32
//          16  u64      count (records)
//          24  u32      C
//          28  u32      S
//          32  u64      key: FNV-1a 64 over, per record, its image_path followed by a 0 byte, then the bytes of
//                       "S=<S>;C=<C>;F=<format>"
//          40  pixels   record i at 40 + i · C·S·S·bytes, [C, S, S] row-major
// u8 stores round(clamp(x, 0, 1) · 255) and is read back as v / 255 (|error| <= 0.5/255 = 0.00196);
// f16 rounds to nearest even (|error| <= 2^-12 for x in [0, 1]); f32 is exact.
// A file with the magic but another version, format, count, C, S, key or a wrong length is stale: it is rebuilt
// (by the workers in parallel, into "<path>.tmp.<pid>.<n>", then renamed over the path). A file without the magic
// is not overwritten: that is an error. The cache is built in the constructor (errors then name the image) and
// memory-mapped read-only afterwards. The key covers paths and size, not the image contents: replacing an image
// file under the same path needs the cache deleted.
//
// pin_memory: the batch images are allocated in page-locked host memory (Tensor::empty_pinned, once per pooled
// buffer) so that copying them to the GPU needs no staging copy and can overlap with kernels, as torch's
// DataLoader(pin_memory=True). Targets and mask (B·L floats) stay pageable. Where no CUDA device is present the
// images are ordinary CPU tensors (same values); pinned() tells which one happened.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/record.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace cxr::data {

struct Batch {
    tensor::Tensor images;         // [B, C, S, S] f32 in [0, 1] (after the augment callback, if any)
    tensor::Tensor targets;        // [B, L] f32: 1 positive, 0 negative/unknown
    tensor::Tensor mask;           // [B, L] f32: 1 where the label is known (positive or negative), else 0
    std::vector<int64_t> indices;  // positions in the loader's record list
    int64_t size() const;
};

enum class CacheFormat : uint32_t { u8 = 0, f16 = 1, f32 = 2 };
const char* cache_format_name(CacheFormat f);  // "u8", "f16", "f32"
CacheFormat parse_cache_format(const std::string& name);

struct LoaderOptions {
    int64_t batch_size = 32;
    int image_size = 224;            // images are resized to S x S (antialiased bilinear, see above)
    int channels = 3;                // 1 or 3 (gray repeated)
    std::vector<int> label_indices;  // CheXpert indices (data/labels.h) giving the L target columns; empty = all 14
    bool shuffle = true;
    bool drop_last = false;
    uint64_t seed = 0;
    int workers = 2;                 // decoding threads (0 = decode on the calling thread)
    int prefetch = 4;                // batches decoded ahead of the consumer
    int64_t rank = 0, world_size = 1;  // sharding as torch's DistributedSampler
    std::string cache_path;          // optional preprocessed cache (see above); "" = none
    bool pin_memory = false;         // page-locked batches when a CUDA device is present (pageable otherwise)
    // Optional augmentation, run on the worker thread per image: (image [C,S,S], generator seeded per (seed,
    // epoch, index)) -> image [C,S,S]. Must be deterministic given the generator.
    std::function<tensor::Tensor(const tensor::Tensor&, tensor::Generator&)> augment;
    // Pixel format of the cache file.
    CacheFormat cache_format = CacheFormat::u8;
};

class Loader {
public:
    Loader(std::vector<Record> records, LoaderOptions options);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    int64_t size() const;                // records in this rank's shard per epoch
    int64_t batches_per_epoch() const;
    // order = f(seed, epoch) only; resets the stream to batch `first_batch` (0..batches_per_epoch()): a resumed
    // run starts mid-epoch without decoding the batches before it (each image's augmentation depends on
    // (seed, epoch, index) only, so the batches delivered are the ones an uninterrupted epoch would deliver).
    void start_epoch(int64_t epoch, int64_t first_batch = 0);
    bool next(Batch& batch);             // false at the end of the epoch (next() before start_epoch: epoch 0)
    const std::vector<Record>& records() const;
    const LoaderOptions& options() const;

    int64_t epoch() const;
    // This rank's positions in records() for the current epoch, in delivery order.
    const std::vector<int64_t>& epoch_indices() const;
    bool cache_used() const;     // a cache file is mapped
    bool cache_rebuilt() const;  // this constructor (re)built it
    bool pinned() const;         // the batch images are in pinned memory (see pin_memory above)

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// ---- the pieces, exposed for tests and tools ----

// The epoch permutation of 0..n-1 (step 1 above); identity when shuffle is false.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);
// Steps 2-3: rank's entries of `order` (DistributedSampler's padding / dropping rule).
std::vector<int64_t> shard_indices(const std::vector<int64_t>& order, int64_t rank, int64_t world_size,
                                   bool drop_last);
// The augmentation generator's seed for (seed, epoch, index).
uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t index);
// The [out, in] row-major weight matrix of the resize rule above for one dimension.
std::vector<float> resize_weights_aa(int in, int out);
// Resizes [C, H, W] (f32, CPU) to [C, out_h, out_w] by the rule above.
tensor::Tensor resize_image(const tensor::Tensor& image, int out_h, int out_w);
// Reads one record's image as the loader does before augmentation: [channels, size, size] f32.
tensor::Tensor load_image(const std::string& path, int size, int channels);
// The cache key of (records, size, channels, format) (see above).
uint64_t cache_key(const std::vector<Record>& records, int size, int channels, CacheFormat format);

}  // namespace cxr::data
