#include "gpu/memory.h"

#include <array>
#include <atomic>

#include "gpu/check.h"

namespace dso::gpu {

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) DSO_CUDA_CHECK(cudaMalloc(&data_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  DSO_CUDA_CHECK(cudaHostAlloc(&data_, bytes, cudaHostAllocMapped | cudaHostAllocPortable));
  const cudaError_t e = cudaHostGetDevicePointer(&device_data_, data_, 0);
  if (e != cudaSuccess) {
    cudaFreeHost(data_);
    throw_cuda_error(e, "cudaHostGetDevicePointer(&device_data_, data_, 0)", __FILE__, __LINE__);
  }
}

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      device_data_(std::exchange(other.device_data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFreeHost(data_);
    data_ = std::exchange(other.data_, nullptr);
    device_data_ = std::exchange(other.device_data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Stream::Stream() { DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void Stream::synchronize() const { DSO_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

Event::Event() { DSO_CUDA_CHECK(cudaEventCreate(&event_)); }

Event::~Event() {
  if (event_) cudaEventDestroy(event_);
}

void Event::record(cudaStream_t stream) const { DSO_CUDA_CHECK(cudaEventRecord(event_, stream)); }

float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0.0f;
  DSO_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

int multiprocessor_count() {
  // Asked once per device: devices differ, and the grids launched on each are sized for its own.
  static std::array<std::atomic<int>, 64> counts{};
  int device = 0;
  DSO_CUDA_CHECK(cudaGetDevice(&device));
  if (device >= int(counts.size())) {
    int sms = 0;
    DSO_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }
  int sms = counts[std::size_t(device)].load(std::memory_order_relaxed);
  if (sms == 0) {
    DSO_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    counts[std::size_t(device)].store(sms, std::memory_order_relaxed);
  }
  return sms;
}

}  // namespace dso::gpu
