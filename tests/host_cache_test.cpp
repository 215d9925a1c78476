// The host K/V cache returns exactly what was appended, refuses what does not
// fit without changing anything, keeps the head-major layout, and accounts
// for its memory.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/device.h"
#include "core/error.h"
#include "host_cache/aligned_memory.h"
#include "host_cache/host_kv_cache.h"
#include "host_cache/numa.h"
#include "host_cache/pinned_memory.h"

namespace dso {
namespace {

// The cache as plain vectors: [sequence][layer][kv_head] -> appended rows.
struct Mirror {
  HostKVLayout layout;
  std::vector<std::vector<std::uint16_t>> keys, values;

  explicit Mirror(const HostKVLayout& l)
      : layout(l), keys(std::size_t(l.sequences) * l.layers * l.kv_heads), values(keys.size()) {}
  std::vector<std::uint16_t>& k(int s, int l, int h) { return keys[index(s, l, h)]; }
  std::vector<std::uint16_t>& v(int s, int l, int h) { return values[index(s, l, h)]; }
  std::size_t index(int s, int l, int h) const {
    return (std::size_t(s) * layout.layers + std::size_t(l)) * layout.kv_heads + std::size_t(h);
  }
  // Appends [count][kv_heads][d] rows.
  void append(int s, int l, const std::vector<std::uint16_t>& kin, const std::vector<std::uint16_t>& vin,
              std::int64_t count) {
    const int d = layout.head_dim;
    for (std::int64_t t = 0; t < count; ++t)
      for (int h = 0; h < layout.kv_heads; ++h) {
        const auto from = std::ptrdiff_t((t * layout.kv_heads + h) * d);
        k(s, l, h).insert(k(s, l, h).end(), kin.begin() + from, kin.begin() + from + d);
        v(s, l, h).insert(v(s, l, h).end(), vin.begin() + from, vin.begin() + from + d);
      }
  }
};

// Reads every cached range of every head back and compares bit for bit.
void expect_cache_equals(const HostKVCache& cache, Mirror& mirror) {
  const HostKVLayout& l = cache.layout();
  for (int s = 0; s < l.sequences; ++s)
    for (int layer = 0; layer < l.layers; ++layer) {
      const std::int64_t n = cache.length(s, layer);
      for (int h = 0; h < l.kv_heads; ++h) {
        ASSERT_EQ(std::size_t(n) * l.head_dim, mirror.k(s, layer, h).size()) << s << " " << layer << " " << h;
        std::vector<std::uint16_t> k(mirror.k(s, layer, h).size()), v(k.size());
        cache.read(s, layer, h, 0, n, k.data(), v.data());
        ASSERT_EQ(k, mirror.k(s, layer, h)) << "keys of sequence " << s << " layer " << layer << " head " << h;
        ASSERT_EQ(v, mirror.v(s, layer, h)) << "values of sequence " << s << " layer " << layer << " head " << h;
      }
    }
}

std::vector<std::uint16_t> random_bits(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::uint16_t> x(n);
  for (auto& b : x) b = std::uint16_t(rng());
  return x;
}

TEST(HostKVCache, ReturnsWhatWasAppendedAfterThousandsOfMixedAppends) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const HostKVLayout layout{3, 2, 3, 7, 2003, seed % 2 ? DType::f16 : DType::bf16};
    HostKVCache cache(layout);
    Mirror mirror(layout);
    int appends = 0;
    for (int i = 0; i < 4000; ++i) {
      const int s = int(rng() % 3), l = int(rng() % 2);
      // Mostly decode-sized appends, sometimes a prefill-sized one, sometimes empty.
      const std::int64_t count = rng() % 8 == 0 ? std::int64_t(rng() % 41) : 1;
      if (cache.length(s, l) + count > layout.capacity) continue;
      const auto k = random_bits(rng, std::size_t(count) * layout.kv_heads * layout.head_dim);
      const auto v = random_bits(rng, k.size());
      cache.append(s, l, k.data(), v.data(), count);
      mirror.append(s, l, k, v, count);
      ++appends;
    }
    EXPECT_GT(appends, 3000);
    expect_cache_equals(cache, mirror);

    // Partial reads: a range of one head.
    for (int i = 0; i < 200; ++i) {
      const int s = int(rng() % 3), l = int(rng() % 2), h = int(rng() % 3);
      const std::int64_t n = cache.length(s, l);
      const std::int64_t begin = std::int64_t(rng() % std::uint64_t(n + 1));
      const std::int64_t count = std::int64_t(rng() % std::uint64_t(n - begin + 1));
      std::vector<std::uint16_t> k(std::size_t(count) * layout.head_dim), v(k.size());
      cache.read(s, l, h, begin, count, k.data(), v.data());
      const auto from = mirror.k(s, l, h).begin() + std::ptrdiff_t(begin * layout.head_dim);
      ASSERT_TRUE(std::equal(k.begin(), k.end(), from));
      const auto vfrom = mirror.v(s, l, h).begin() + std::ptrdiff_t(begin * layout.head_dim);
      ASSERT_TRUE(std::equal(v.begin(), v.end(), vfrom));
    }
  }
}

TEST(HostKVCache, RefusalsLeaveItIntact) {
  std::mt19937_64 rng(7);
  const HostKVLayout layout{2, 3, 2, 4, 5, DType::f16};
  HostKVCache cache(layout);
  Mirror mirror(layout);
  const auto k = random_bits(rng, 5 * 2 * 4), v = random_bits(rng, k.size());
  cache.append(1, 2, k.data(), v.data(), 4);
  mirror.append(1, 2, k, v, 4);

  EXPECT_THROW(cache.append(1, 2, k.data(), v.data(), 2), Error);  // 6 > 5
  EXPECT_THROW(cache.append(2, 0, k.data(), v.data(), 1), Error);  // no sequence 2
  EXPECT_THROW(cache.append(-1, 0, k.data(), v.data(), 1), Error);
  EXPECT_THROW(cache.append(0, 3, k.data(), v.data(), 1), Error);  // no layer 3
  EXPECT_THROW(cache.append(0, 0, k.data(), v.data(), -1), Error);
  EXPECT_THROW(cache.append(0, 0, nullptr, v.data(), 1), Error);
  std::vector<std::uint16_t> out(64);
  EXPECT_THROW(cache.read(1, 2, 2, 0, 1, out.data(), out.data()), Error);  // no head 2
  EXPECT_THROW(cache.read(1, 2, 0, 2, 3, out.data(), out.data()), Error);  // past the 4 cached
  EXPECT_THROW(cache.read(0, 0, 0, 0, 1, out.data(), out.data()), Error);  // nothing cached
  try {
    cache.append(1, 2, k.data(), v.data(), 2);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "appending 2 tokens to sequence 1 layer 2 would hold 6 tokens, past its capacity of 5");
  }
  for (int s = 0; s < 2; ++s)
    for (int l = 0; l < 3; ++l) EXPECT_EQ(cache.length(s, l), s == 1 && l == 2 ? 4 : 0);
  expect_cache_equals(cache, mirror);

  cache.append(1, 2, k.data(), v.data(), 1);  // exactly to capacity
  EXPECT_EQ(cache.length(1, 2), 5);
}

TEST(HostKVCache, IsHeadMajorAndAccountsForItsMemory) {
  const HostKVLayout layouts[] = {{1, 1, 1, 2, 1, DType::f16}, {3, 5, 2, 64, 1031, DType::bf16},
                                  {2, 4, 8, 128, 4096, DType::f16}};
  for (const HostKVLayout& layout : layouts) {
    HostKVCache cache(layout);
    const std::int64_t expected = std::int64_t(2) * layout.sequences * layout.layers * layout.kv_heads *
                                  layout.capacity * layout.head_dim * 2;
    EXPECT_EQ(layout.bytes(), expected);
    EXPECT_EQ(cache.bytes(), expected);
    // One (sequence, layer, KV head) is one contiguous region of capacity rows;
    // the next head follows it; V is the second half.
    const std::int64_t region = layout.capacity * layout.head_dim * 2;
    const int s = layout.sequences - 1, l = layout.layers - 1;
    EXPECT_EQ(cache.keys(s, l, 0) - cache.keys(0, 0, 0),
              (std::int64_t(s) * layout.layers + l) * layout.kv_heads * region);
    if (layout.kv_heads > 1) {
      EXPECT_EQ(cache.keys(0, 0, 1) - cache.keys(0, 0, 0), region);
    }
    EXPECT_EQ(cache.values(0, 0, 0) - cache.keys(0, 0, 0), expected / 2);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(cache.keys(0, 0, 0)) % AlignedMemory::alignment, 0u);
  }
}

TEST(HostKVCache, RefusesBadLayouts) {
  EXPECT_THROW(HostKVCache(HostKVLayout{0, 1, 1, 2, 1, DType::f16}), Error);
  EXPECT_THROW(HostKVCache(HostKVLayout{1, 1, 1, 2, 0, DType::f16}), Error);
  const HostKVLayout huge{1 << 30, 1 << 30, 1 << 30, 128, 1 << 30, DType::f16};
  try {
    huge.bytes();
    ADD_FAILURE() << "no overflow reported";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "the host K/V cache size overflows 64 bits");
  }
}

TEST(HostMemory, AutomaticIsPinnedExactlyWhenAGpuIsPresent) {
  const HostKVCache cache(HostKVLayout{1, 1, 1, 2, 8, DType::f16});
  if (gpu_available()) {
    EXPECT_NE(cache.memory_kind(), HostMemoryKind::aligned);
  } else {
    EXPECT_EQ(cache.memory_kind(), HostMemoryKind::aligned);
  }
  const HostKVCache plain(HostKVLayout{1, 1, 1, 2, 8, DType::f16}, HostMemoryKind::aligned);
  EXPECT_EQ(plain.memory_kind(), HostMemoryKind::aligned);
}

TEST(HostMemory, PinnedMemoryIsUsable) {
  if (!gpu_available()) GTEST_SKIP() << "no GPU: pinned host memory cannot be allocated here";
  for (HostMemoryKind kind : {HostMemoryKind::pinned, HostMemoryKind::numa_pinned}) {
    SCOPED_TRACE(std::string(host_memory_kind_name(kind)));
    const auto memory = allocate_host_memory(std::int64_t(3) << 20, kind);
    EXPECT_EQ(memory->kind(), kind);
    std::memset(memory->data(), 0x5a, std::size_t(memory->bytes()));
    cudaPointerAttributes attributes{};
    ASSERT_EQ(cudaPointerGetAttributes(&attributes, memory->data()), cudaSuccess);
    EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
  }
}

TEST(Numa, ReportsNodesAndBindsGatherThreads) {
  const NumaTopology& numa = NumaTopology::machine();
  EXPECT_GE(numa.node_count(), 1);
  EXPECT_GE(numa.gpu_node(), 0);
  EXPECT_LT(numa.gpu_node(), numa.node_count());
  if (!gpu_available()) {
    EXPECT_EQ(numa.gpu_node(), 0);
  }
  std::thread gatherer([&] {
    if (numa.bind_current_thread(numa.gpu_node())) {
      EXPECT_TRUE(numa.current_thread_within(numa.gpu_node()));
    } else {
      std::printf("binding a thread to NUMA node %d was refused by the system\n", numa.gpu_node());
    }
  });
  gatherer.join();
  EXPECT_THROW(numa.bind_current_thread(numa.node_count()), Error);

  void* p = numa.allocate_on_node(1 << 20, numa.gpu_node());
  std::memset(p, 1, 1 << 20);
  numa.free_on_node(p, 1 << 20);
}

}  // namespace
}  // namespace dso
