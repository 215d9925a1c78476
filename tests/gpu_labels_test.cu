// GPU label append against cpu::gather_labels.
#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <numeric>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "cpu/labels.h"
#include "gpu/labels.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

template <class T>
void run_label_append(int head_dim, int r, int count, std::uint64_t seed) {
  SCOPED_TRACE("dtype=" + std::string(dtype_name(dtype_of<T>())) + " d=" + std::to_string(head_dim) +
               " r=" + std::to_string(r) + " count=" + std::to_string(count) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int sequences = 2, kv_heads = 3;
  const std::int64_t capacity = 37;
  // New keys token-major, as a projection writes them: [sequence][token][kv_head][d].
  const gpu::RowStrides key_strides{std::int64_t(count) * kv_heads * head_dim, head_dim,
                                    std::int64_t(kv_heads) * head_dim};
  const std::vector<T> keys = test::random_values<T>(std::size_t(sequences) * count * kv_heads * head_dim, rng);
  // Each head's channels: a random r-subset of [0, d).
  std::vector<std::int32_t> channels;
  for (int h = 0; h < kv_heads; ++h) {
    std::vector<std::int32_t> all(head_dim);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    channels.insert(channels.end(), all.begin(), all.begin() + r);
  }
  // The second sequence's last tokens fall past the capacity and must be dropped.
  const std::vector<std::int32_t> positions = {3, std::int32_t(capacity - count / 2 - 1)};
  const gpu::RowStrides label_strides = gpu::RowStrides::dense(kv_heads, capacity, r);

  DeviceArray<T> d_keys(keys);
  DeviceArray<std::int32_t> d_channels(channels), d_positions(positions);
  DeviceArray<T> d_labels(std::size_t(sequences) * kv_heads * capacity * r);
  d_labels.poison();
  gpu::LabelAppendArgs args;
  args.dtype = dtype_of<T>();
  args.head_dim = head_dim;
  args.r = r;
  args.keys = {d_keys.data(), key_strides};
  args.tokens = {sequences, kv_heads, count, d_positions.data()};
  args.channels = d_channels.data();
  args.labels = {d_labels.data(), label_strides};
  args.capacity = capacity;
  gpu::append_labels(args, nullptr);
  const std::vector<T> labels = d_labels.download();

  std::vector<T> key_row(head_dim), expected(r);
  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h)
      for (std::int64_t pos = 0; pos < capacity; ++pos) {
        const T* got = labels.data() + label_strides.offset(s, h, pos);
        const std::int64_t t = pos - positions[s];
        if (t < 0 || t >= count) {
          for (int c = 0; c < r; ++c) ASSERT_TRUE(test::is_poison(got[c])) << "s" << s << " h" << h << " pos " << pos;
          continue;
        }
        const T* key = keys.data() + key_strides.offset(s, h, t);
        cpu::gather_labels(key, 1, head_dim, std::span<const int>(channels.data() + h * r, r), expected.data());
        for (int c = 0; c < r; ++c)
          ASSERT_EQ(got[c].bits, expected[c].bits) << "s" << s << " h" << h << " pos " << pos << " c" << c;
      }
}

TEST(GpuLabels, AppendMatchesCpuGather) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  for (int d : {64, 128})
    for (int r : {1, 3, 8, d})
      for (int count : {1, 5}) {
        run_label_append<Half>(d, r, count, test::seed_for(seed++));
        run_label_append<BFloat16>(d, r, count, test::seed_for(seed++));
      }
}

TEST(GpuLabels, RejectsBadR) {
  DSO_SKIP_WITHOUT_GPU();
  gpu::LabelAppendArgs args;
  args.head_dim = 64;
  args.r = 65;
  args.capacity = 10;
  EXPECT_THROW(gpu::append_labels(args, nullptr), Error);
}

}  // namespace
}  // namespace dso
