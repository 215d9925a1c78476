// GPU label scoring (GQA sum over the group) against cpu::score_labels.
#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <numeric>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "cpu/scores.h"
#include "gpu/scores.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

template <class T>
void run_scores(int head_dim, int group, int r, std::vector<std::int32_t> lengths, std::uint64_t seed) {
  SCOPED_TRACE("dtype=" + std::string(dtype_name(dtype_of<T>())) + " d=" + std::to_string(head_dim) +
               " group=" + std::to_string(group) + " r=" + std::to_string(r) + " n=" + std::to_string(lengths[0]) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int sequences = int(lengths.size()), kv_heads = 2, q_heads = kv_heads * group;
  const std::int64_t max_tokens = *std::max_element(lengths.begin(), lengths.end());
  const std::int64_t capacity = max_tokens + 7;
  const std::int64_t score_stride = max_tokens + 1;
  const gpu::RowStrides label_strides = gpu::RowStrides::dense(kv_heads, capacity, r);
  const std::vector<T> q = test::random_values<T>(std::size_t(sequences) * q_heads * head_dim, rng);
  const std::vector<T> labels = test::random_values<T>(std::size_t(sequences) * kv_heads * capacity * r, rng);
  std::vector<std::int32_t> channels;
  for (int h = 0; h < kv_heads; ++h) {
    std::vector<std::int32_t> all(head_dim);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    channels.insert(channels.end(), all.begin(), all.begin() + r);
  }

  DeviceArray<T> d_q(q), d_labels(labels);
  DeviceArray<std::int32_t> d_channels(channels), d_lengths(lengths);
  DeviceArray<float> d_scores(std::size_t(sequences) * kv_heads * score_stride);
  d_scores.poison();
  gpu::LabelScoreArgs args;
  args.dtype = dtype_of<T>();
  args.sequences = sequences;
  args.q_heads = q_heads;
  args.kv_heads = kv_heads;
  args.head_dim = head_dim;
  args.r = r;
  args.q = d_q.data();
  args.channels = d_channels.data();
  args.labels = {d_labels.data(), label_strides};
  args.lengths = d_lengths.data();
  args.max_tokens = max_tokens;
  args.scores = d_scores.data();
  args.score_stride = score_stride;
  gpu::score_labels(args, nullptr);
  const std::vector<float> scores = d_scores.download();

  const test::Tolerance tol{1e-4, 1e-5};
  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h) {
      const std::int64_t n = lengths[s];
      std::vector<float> expected(n);
      cpu::score_labels(q.data() + (std::int64_t(s) * q_heads + std::int64_t(h) * group) * head_dim, group,
                        head_dim, std::span<const int>(channels.data() + h * r, r),
                        labels.data() + label_strides.offset(s, h, 0), n, expected.data());
      const float* got = scores.data() + (std::int64_t(s) * kv_heads + h) * score_stride;
      for (std::int64_t t = 0; t < n; ++t)
        ASSERT_TRUE(tol.accepts(got[t], expected[t])) << "s" << s << " h" << h << " t" << t << ": " << got[t]
                                                      << " vs " << expected[t];
      for (std::int64_t t = n; t < score_stride; ++t)
        ASSERT_TRUE(test::is_poison(got[t])) << "written past the length at " << t;
    }
}

TEST(GpuScores, MatchesCpuScoreLabels) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  for (int d : {64, 128})
    for (int group : {1, 3, 4, 8})
      for (int r : {1, 4, 8, 13, 16})
        for (std::vector<std::int32_t> lengths : {std::vector<std::int32_t>{1, 3}, {2049, 5001}}) {
          run_scores<Half>(d, group, r, lengths, test::seed_for(seed++));
          run_scores<BFloat16>(d, group, r, lengths, test::seed_for(seed++));
        }
}

TEST(GpuScores, FullWidthLabelsLongContext) {
  DSO_SKIP_WITHOUT_GPU();
  run_scores<Half>(128, 4, 128, {70001}, test::seed_for(500));
  run_scores<BFloat16>(64, 1, 64, {65537, 3}, test::seed_for(501));
}

}  // namespace
}  // namespace dso
