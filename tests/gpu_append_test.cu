// K/V append into a pinned host cache (zero-copy stores) and into GPU memory,
// checked against the new rows, with every other row left untouched.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu/append.h"
#include "gpu/memory.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

template <class Cache>
void run_append(Cache& k_cache, Cache& v_cache, void* k_device, void* v_device, int head_dim, int count,
                std::uint64_t seed) {
  SCOPED_TRACE("d=" + std::to_string(head_dim) + " count=" + std::to_string(count) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int sequences = 3, kv_heads = 2;
  const std::int64_t capacity = 41;
  const gpu::RowStrides cache = gpu::RowStrides::dense(kv_heads, capacity, head_dim);
  // New rows token-major: [sequence][token][kv_head][d].
  const gpu::RowStrides fresh{std::int64_t(count) * kv_heads * head_dim, head_dim, std::int64_t(kv_heads) * head_dim};
  const std::size_t fresh_elements = std::size_t(sequences) * count * kv_heads * head_dim;
  std::vector<std::uint16_t> k_new(fresh_elements), v_new(fresh_elements);
  for (auto& x : k_new) x = std::uint16_t(rng());
  for (auto& x : v_new) x = std::uint16_t(rng());
  // The last sequence runs past the capacity: those rows are dropped.
  const std::vector<std::int32_t> positions = {0, 17, std::int32_t(capacity - 1)};
  k_cache.poison();
  v_cache.poison();
  DeviceArray<std::uint16_t> d_k(k_new), d_v(v_new);
  DeviceArray<std::int32_t> d_positions(positions);

  gpu::KVAppendArgs args;
  args.dtype = DType::bf16;
  args.head_dim = head_dim;
  args.k_new = {d_k.data(), fresh};
  args.v_new = {d_v.data(), fresh};
  args.tokens = {sequences, kv_heads, count, d_positions.data()};
  args.k_cache = {k_device, cache};
  args.v_cache = {v_device, cache};
  args.capacity = capacity;
  gpu::append_kv(args, nullptr);
  DSO_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<std::uint16_t> k_got = k_cache.read(), v_got = v_cache.read();

  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h)
      for (std::int64_t pos = 0; pos < capacity; ++pos) {
        const std::int64_t t = pos - positions[s];
        for (int which = 0; which < 2; ++which) {
          const std::uint16_t* got = (which ? v_got : k_got).data() + cache.offset(s, h, pos);
          if (t < 0 || t >= count) {
            for (int e = 0; e < head_dim; ++e) ASSERT_TRUE(test::is_poison(got[e])) << "s" << s << " pos " << pos;
            continue;
          }
          const std::uint16_t* want = (which ? v_new : k_new).data() + fresh.offset(s, h, t);
          ASSERT_EQ(std::memcmp(got, want, head_dim * 2), 0) << (which ? "V" : "K") << " s" << s << " h" << h
                                                             << " pos " << pos;
        }
      }
}

struct PinnedCache {
  explicit PinnedCache(std::size_t n) : n(n), buffer(n * 2) {}
  void poison() { std::memset(buffer.data(), test::kPoisonByte, n * 2); }
  std::vector<std::uint16_t> read() const {
    return {buffer.as<std::uint16_t>(), buffer.as<std::uint16_t>() + n};
  }
  std::size_t n;
  gpu::PinnedBuffer buffer;
};

struct DeviceCache {
  explicit DeviceCache(std::size_t n) : array(n) {}
  void poison() { array.poison(); }
  std::vector<std::uint16_t> read() const { return array.download(); }
  DeviceArray<std::uint16_t> array;
};

TEST(GpuAppend, IntoPinnedHostCache) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  for (int d : {64, 128})
    for (int count : {1, 3, 9}) {
      const std::size_t n = std::size_t(3) * 2 * 41 * d;
      PinnedCache k(n), v(n);
      run_append(k, v, k.buffer.device_data(), v.buffer.device_data(), d, count, test::seed_for(seed++));
    }
}

TEST(GpuAppend, IntoDeviceCache) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 50;
  for (int d : {64, 128}) {
    const std::size_t n = std::size_t(3) * 2 * 41 * d;
    DeviceCache k(n), v(n);
    run_append(k, v, k.array.data(), v.array.data(), d, 2, test::seed_for(seed++));
  }
}

}  // namespace
}  // namespace dso
