// Zero-copy gather from a pinned head-major host cache, checked row by row
// against the cache it read, including a cache whose second sequence starts
// beyond 2^31 bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gpu/gather.h"
#include "gpu/memory.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

struct GatherCase {
  int sequences, kv_heads, head_dim;
  std::int64_t capacity;
  std::int64_t sequence_stride;  // elements between sequences in the cache (layer stride included)
  std::int64_t max_count;
};

// Sorted distinct positions in [0, capacity).
std::vector<std::int32_t> sorted_subset(std::int64_t capacity, std::int64_t count, std::mt19937_64& rng) {
  std::vector<std::int32_t> all(capacity);
  std::iota(all.begin(), all.end(), 0);
  for (std::int64_t i = 0; i < count; ++i) std::swap(all[i], all[i + std::int64_t(rng() % (capacity - i))]);
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

void run_gather(const GatherCase& c, DType dtype, std::uint64_t seed) {
  SCOPED_TRACE("d=" + std::to_string(c.head_dim) + " capacity=" + std::to_string(c.capacity) +
               " max_count=" + std::to_string(c.max_count) + " dtype=" + std::string(dtype_name(dtype)) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int d = c.head_dim;
  const gpu::RowStrides cache{c.sequence_stride, c.capacity * d, d};
  const std::int64_t cache_elements = (c.sequences - 1) * c.sequence_stride + c.kv_heads * c.capacity * d;
  gpu::PinnedBuffer k_cache(cache_elements * 2), v_cache(cache_elements * 2);
  // Random 16-bit patterns in the regions the heads own (the bytes between are never read).
  for (int s = 0; s < c.sequences; ++s)
    for (auto* base : {k_cache.as<std::uint16_t>(), v_cache.as<std::uint16_t>()}) {
      std::uint16_t* region = base + cache.offset(s, 0, 0);
      for (std::int64_t i = 0; i < c.kv_heads * c.capacity * d; ++i) region[i] = std::uint16_t(rng());
    }
  const std::int64_t heads = std::int64_t(c.sequences) * c.kv_heads;
  const std::int64_t index_stride = c.max_count + 3;
  std::vector<std::int32_t> indices(heads * index_stride, -7), counts(heads);
  for (std::int64_t head = 0; head < heads; ++head) {
    // Counts from 0 to max_count, the extremes included.
    counts[head] = std::int32_t(head == 0 ? c.max_count : head == 1 ? 0 : std::int64_t(rng() % (c.max_count + 1)));
    const auto subset = sorted_subset(c.capacity, counts[head], rng);
    std::copy(subset.begin(), subset.end(), indices.begin() + head * index_stride);
  }
  const gpu::RowStrides dst = gpu::RowStrides::dense(c.kv_heads, c.max_count, d);
  DeviceArray<std::int32_t> d_indices(indices), d_counts(counts);
  DeviceArray<std::uint16_t> k_out(heads * c.max_count * d), v_out(heads * c.max_count * d);
  k_out.poison();
  v_out.poison();

  gpu::GatherArgs args;
  args.dtype = dtype;
  args.sequences = c.sequences;
  args.kv_heads = c.kv_heads;
  args.head_dim = d;
  args.k_source = {k_cache.device_data(), cache};
  args.v_source = {v_cache.device_data(), cache};
  args.indices = d_indices.data();
  args.index_stride = index_stride;
  args.counts = d_counts.data();
  args.max_count = c.max_count;
  args.k_destination = {k_out.data(), dst};
  args.v_destination = {v_out.data(), dst};
  gpu::gather_rows(args, nullptr);
  const auto k_got = k_out.download(), v_got = v_out.download();

  for (int s = 0; s < c.sequences; ++s)
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::int64_t head = std::int64_t(s) * c.kv_heads + h;
      for (std::int64_t i = 0; i < c.max_count; ++i) {
        const std::uint16_t* got[2] = {k_got.data() + dst.offset(s, h, i), v_got.data() + dst.offset(s, h, i)};
        if (i >= counts[head]) {
          for (int which = 0; which < 2; ++which)
            for (int e = 0; e < d; ++e) ASSERT_TRUE(test::is_poison(got[which][e])) << "row " << i << " past count";
          continue;
        }
        const std::int64_t pos = indices[head * index_stride + i];
        const std::uint16_t* want[2] = {k_cache.as<std::uint16_t>() + cache.offset(s, h, pos),
                                        v_cache.as<std::uint16_t>() + cache.offset(s, h, pos)};
        for (int which = 0; which < 2; ++which)
          ASSERT_EQ(std::memcmp(got[which], want[which], d * 2), 0)
              << (which ? "V" : "K") << " s" << s << " h" << h << " row " << i << " position " << pos;
      }
    }
}

TEST(GpuGather, MatchesHostCacheRows) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  for (int d : {64, 128})
    for (const auto& [capacity, max_count] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1, 1}, {3, 2}, {1000, 1}, {4099, 257}, {20011, 20011 / 16}, {9000, 9000}}) {
      // The sequence stride of a 3-layer [sequence][layer][kv_head][capacity][d] cache, reading layer 0.
      const int kv_heads = 3;
      const GatherCase c{2, kv_heads, d, capacity, 3 * kv_heads * capacity * d, max_count};
      run_gather(c, seed % 2 ? DType::bf16 : DType::f16, test::seed_for(seed));
      ++seed;
    }
}

TEST(GpuGather, RegionsBeyondTwoGiB) {
  DSO_SKIP_WITHOUT_GPU();
  // The second sequence starts 2^31 + 16 bytes into the cache.
  const GatherCase c{2, 2, 128, 5000, (std::int64_t(1) << 30) + 8, 700};
  run_gather(c, DType::f16, test::seed_for(77));
}

}  // namespace
}  // namespace dso
