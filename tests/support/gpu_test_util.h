#pragma once
// Helpers for the GPU tests: skipping without a device, owned device arrays
// with upload/download, random 16-bit data, poisoned outputs, tolerances.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "gpu/check.h"
#include "gpu/memory.h"

#define DSO_SKIP_WITHOUT_GPU() \
  if (!::dso::gpu_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped"

namespace dso::test {

// Every byte 0xff: NaN as fp16, bf16 and fp32, -1 as int32, so an element the
// kernel should have written and did not stands out.
constexpr unsigned char kPoisonByte = 0xff;

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n), buffer_(n * sizeof(T)) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }

  T* data() const { return buffer_.as<T>(); }
  std::size_t size() const { return n_; }

  void upload(const std::vector<T>& host) {
    EXPECT_EQ(host.size(), n_);
    DSO_CUDA_CHECK(cudaMemcpy(data(), host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void poison() { DSO_CUDA_CHECK(cudaMemset(data(), kPoisonByte, n_ * sizeof(T))); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    DSO_CUDA_CHECK(cudaDeviceSynchronize());
    DSO_CUDA_CHECK(cudaMemcpy(host.data(), data(), n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  std::size_t n_;
  gpu::DeviceBuffer buffer_;
};

template <class T>
bool is_poison(const T& x) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &x, sizeof(T));
  for (unsigned char b : bytes)
    if (b != kPoisonByte) return false;
  return true;
}

// Normal(0, scale) values rounded to the storage type; never all zeros.
template <class T>
std::vector<T> random_values(std::size_t n, std::mt19937_64& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = from_float<T>(dist(rng));
  return v;
}

inline std::uint64_t seed_for(int i) { return 0x5eed0000ull + std::uint64_t(i) * 7919; }

struct Tolerance {
  double atol;
  double rtol;
  bool accepts(double got, double want) const {
    return std::isfinite(got) && std::abs(got - want) <= atol + rtol * std::abs(want);
  }
};

}  // namespace dso::test
