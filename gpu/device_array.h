#pragma once
// An owned, typed GPU allocation: freed when it goes out of scope, movable,
// not copyable. Allocation happens at construction only (plan once, run many).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "gpu/model_check.h"

namespace dso::gpu {

template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t size) : size_(size) {
    if (size_ > 0) DSO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), size_ * sizeof(T)));
  }
  // A copy of host data; synchronous.
  explicit DeviceArray(std::span<const T> host) : DeviceArray(host.size()) { copy_from(host); }

  DeviceArray(DeviceArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }

  // Synchronous copies, for setup and tests; the decode path uses streams.
  void copy_from(std::span<const T> host) {
    require(host.size() == size_, "copy of ", host.size(), " elements into a device array of ", size_);
    if (size_ > 0) DSO_CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> to_host() const {
    std::vector<T> out(size_);
    if (size_ > 0) DSO_CUDA_CHECK(cudaMemcpy(out.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  void release() noexcept {
    if (data_) cudaFree(data_);  // a destructor must not throw; a failed free leaks nothing we can recover
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace dso::gpu
