// gpu::count_nonfinite against a host count on the same data: random values
// with NaN, +inf and -inf planted at random places (first and last included),
// sizes around the warp, block and grid-stride boundaries, and a tally that
// accumulates over calls and on a non-default stream.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gpu/check.h"
#include "gpu/device_array.h"
#include "gpu/nonfinite.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

std::vector<float> planted_values(std::int64_t n, double rate, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1e3f);
  std::bernoulli_distribution plant(rate);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = plant(rng) ? specials[rng() % 3] : normal(rng);
  if (n > 0 && rate > 0) {
    x.front() = specials[rng() % 3];
    x.back() = specials[rng() % 3];
  }
  return x;
}

std::int64_t host_count(const std::vector<float>& x) {
  std::int64_t n = 0;
  for (float v : x) n += std::isfinite(v) ? 0 : 1;
  return n;
}

TEST(GpuNonfinite, CountsLikeTheHostAcrossSizesAndRates) {
  DSO_SKIP_WITHOUT_GPU();
  // 1, a warp less and more one, a block past, a prime, one grid-stride
  // round past 256 blocks of 256, and a vocabulary of logits for batch 3.
  const std::int64_t sizes[] = {1, 31, 33, 257, 7919, 256 * 256 + 1, 3 * 128256};
  const double rates[] = {0.0, 1e-4, 0.01, 0.5, 1.0};
  int seed = 0;
  for (std::int64_t n : sizes)
    for (double rate : rates) {
      const std::uint64_t s = test::seed_for(seed++);
      SCOPED_TRACE("n=" + std::to_string(n) + " rate=" + std::to_string(rate) + " seed=" + std::to_string(s));
      std::mt19937_64 rng(s);
      const std::vector<float> x = planted_values(n, rate, rng);
      const gpu::DeviceArray<float> device_x{std::span<const float>(x)};
      gpu::DeviceArray<unsigned long long> count(1);
      DSO_CUDA_CHECK(cudaMemset(count.data(), 0, sizeof(unsigned long long)));
      gpu::count_nonfinite(device_x.data(), n, count.data(), nullptr);
      EXPECT_EQ(std::int64_t(count.to_host().front()), host_count(x));
    }
}

TEST(GpuNonfinite, AccumulatesOverCallsOnAStream) {
  DSO_SKIP_WITHOUT_GPU();
  cudaStream_t stream = nullptr;
  DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937_64 rng(test::seed_for(500));
  gpu::DeviceArray<unsigned long long> count(1);
  DSO_CUDA_CHECK(cudaMemset(count.data(), 0, sizeof(unsigned long long)));
  std::int64_t expected = 0;
  std::vector<gpu::DeviceArray<float>> inputs;  // alive until the stream is done with them
  for (int call = 0; call < 5; ++call) {
    const std::vector<float> x = planted_values(1000 + 37 * call, 0.02 * call, rng);
    expected += host_count(x);
    inputs.emplace_back(std::span<const float>(x));
    gpu::count_nonfinite(inputs.back().data(), std::int64_t(x.size()), count.data(), stream);
  }
  DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
  DSO_CUDA_CHECK(cudaStreamDestroy(stream));
  EXPECT_GT(expected, 0);
  EXPECT_EQ(std::int64_t(count.to_host().front()), expected);
}

TEST(GpuNonfinite, EmptyInputLeavesTheCount) {
  DSO_SKIP_WITHOUT_GPU();
  gpu::DeviceArray<unsigned long long> count(std::span<const unsigned long long>(std::vector<unsigned long long>{41}));
  gpu::count_nonfinite(nullptr, 0, count.data(), nullptr);
  DSO_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(count.to_host().front(), 41u);
}

}  // namespace
}  // namespace dso
