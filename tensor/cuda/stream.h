// Streams, events and pinned host memory for the CUDA backend: a small RAII layer over the CUDA runtime, only what
// the caching allocator (stream-ordered reuse) and the data loader (pinned buffers, async copies) need.
//
//   current_stream(device)   the stream kernels of this thread are queued on for a device; the legacy default
//                            stream (nullptr) unless a StreamGuard says otherwise. Per thread, per device
//                            (as in PyTorch), so loader threads can copy on their own streams.
//   DeviceGuard              sets the current device for a scope (cudaSetDevice) and restores the previous one.
//   StreamGuard              sets the current stream of a device for a scope and restores the previous one.
//   Stream                   an owned, non-blocking stream (cudaStreamCreateWithFlags(cudaStreamNonBlocking)).
//   Event                    record(stream) / wait(stream) (cudaStreamWaitEvent: the stream waits on the device,
//                            the host does not block) / synchronize() / elapsed_ms(start, end) (timing events).
//   PinnedBuffer             page-locked host memory from cudaHostAlloc, freed with cudaFreeHost; needed for
//                            cudaMemcpyAsync to overlap with kernels.
// Every CUDA call is checked and a failure throws cxr::Error naming the call. Only .cu files include this header
// (it needs cuda_runtime.h); the rest of the library reaches the runtime through tensor/backend.h.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace cxr::tensor::cuda {

cudaStream_t current_stream(int device);
void set_current_stream(int device, cudaStream_t stream);
// The integer the caching allocator keys its free lists by (tensor/caching_allocator.h StreamId).
inline uint64_t stream_id(cudaStream_t s) { return (uint64_t)(uintptr_t)s; }

// Makes `device` the calling thread's current CUDA device for a scope and restores the previous one on exit, so
// that work on device N never leaves later calls of the thread pointed at N.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = 0;
};

class StreamGuard {
public:
    StreamGuard(int device, cudaStream_t stream);
    ~StreamGuard();
    StreamGuard(const StreamGuard&) = delete;
    StreamGuard& operator=(const StreamGuard&) = delete;

private:
    int device_;
    cudaStream_t previous_;
};

class Stream {
public:
    explicit Stream(int device);
    ~Stream();
    Stream(Stream&& other) noexcept;
    Stream& operator=(Stream&& other) noexcept;
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    cudaStream_t get() const { return stream_; }
    int device() const { return device_; }
    void synchronize() const;

private:
    int device_ = 0;
    cudaStream_t stream_ = nullptr;
};

class Event {
public:
    // timing = true makes elapsed_ms usable (cudaEventDefault); false uses cudaEventDisableTiming (cheaper).
    explicit Event(bool timing = false);
    ~Event();
    Event(Event&& other) noexcept;
    Event& operator=(Event&& other) noexcept;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    void record(cudaStream_t stream);
    void wait(cudaStream_t stream) const;  // work queued on `stream` after this waits for the recorded work
    void synchronize() const;              // the host waits
    bool query() const;                    // true when the recorded work has completed
    // Milliseconds between two recorded timing events (both must have completed, or synchronize first).
    static float elapsed_ms(const Event& start, const Event& end);
    cudaEvent_t get() const { return event_; }

private:
    cudaEvent_t event_ = nullptr;
};

class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t nbytes);  // nbytes == 0 gives an empty buffer
    ~PinnedBuffer();
    PinnedBuffer(PinnedBuffer&& other) noexcept;
    PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    void* data() const { return data_; }
    size_t size() const { return size_; }

private:
    void reset() noexcept;
    void* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace cxr::tensor::cuda
