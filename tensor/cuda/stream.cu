// Streams, events and pinned host buffers of tensor/cuda/stream.h. The current stream is thread-local per
// device (a small fixed table; more devices than kMaxDevices is an error).
#include "tensor/cuda/stream.h"

#include <utility>

#include "tensor/cuda/cuda_common.cuh"
#include "tensor/error.h"

namespace cxr::tensor::cuda {

namespace {
constexpr int kMaxDevices = 64;
thread_local cudaStream_t t_current[kMaxDevices] = {};

void check_device_index(int device) {
    CXR_CHECK(device >= 0 && device < kMaxDevices, "CUDA device index ", device, " out of range [0, ", kMaxDevices,
              ")");
}
}  // namespace

cudaStream_t current_stream(int device) {
    check_device_index(device);
    return t_current[device];
}

void set_current_stream(int device, cudaStream_t stream) {
    check_device_index(device);
    t_current[device] = stream;
}

DeviceGuard::DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    check(cudaSetDevice(device), "cudaSetDevice");
}
DeviceGuard::~DeviceGuard() { cudaSetDevice(previous_); }  // never throws from a destructor

StreamGuard::StreamGuard(int device, cudaStream_t stream) : device_(device), previous_(current_stream(device)) {
    set_current_stream(device, stream);
}
StreamGuard::~StreamGuard() { t_current[device_] = previous_; }

// ---- Stream ----
Stream::Stream(int device) : device_(device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}
Stream::~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
}
Stream::Stream(Stream&& other) noexcept
    : device_(other.device_), stream_(std::exchange(other.stream_, nullptr)) {}
Stream& Stream::operator=(Stream&& other) noexcept {
    if (this != &other) {
        if (stream_) cudaStreamDestroy(stream_);
        device_ = other.device_;
        stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
}
void Stream::synchronize() const { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

// ---- Event ----
Event::Event(bool timing) {
    check(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming),
          "cudaEventCreateWithFlags");
}
Event::~Event() {
    if (event_) cudaEventDestroy(event_);
}
Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
Event& Event::operator=(Event&& other) noexcept {
    if (this != &other) {
        if (event_) cudaEventDestroy(event_);
        event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
}
void Event::record(cudaStream_t stream) { check(cudaEventRecord(event_, stream), "cudaEventRecord"); }
void Event::wait(cudaStream_t stream) const { check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent"); }
void Event::synchronize() const { check(cudaEventSynchronize(event_), "cudaEventSynchronize"); }
bool Event::query() const {
    const cudaError_t err = cudaEventQuery(event_);
    if (err == cudaErrorNotReady) {
        cudaGetLastError();  // not an error: clear it
        return false;
    }
    check(err, "cudaEventQuery");
    return true;
}
float Event::elapsed_ms(const Event& start, const Event& end) {
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start.event_, end.event_), "cudaEventElapsedTime");
    return ms;
}

// ---- PinnedBuffer ----
PinnedBuffer::PinnedBuffer(size_t nbytes) : size_(nbytes) {
    if (nbytes == 0) return;
    const cudaError_t err = cudaHostAlloc(&data_, nbytes, cudaHostAllocDefault);
    if (err != cudaSuccess) {
        data_ = nullptr;
        size_ = 0;
        cudaGetLastError();
        CXR_FAIL("cudaHostAlloc of ", nbytes, " bytes of pinned host memory failed: ", cudaGetErrorString(err));
    }
}
PinnedBuffer::~PinnedBuffer() { reset(); }
void PinnedBuffer::reset() noexcept {
    if (data_) cudaFreeHost(data_);
    data_ = nullptr;
    size_ = 0;
}
PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
        reset();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

}  // namespace cxr::tensor::cuda
