// SparQ-style selection on the GPU (gpu/sparq.h): the per-step channel choice
// against cpu::sparq_channels, ties included, with the masked query it writes;
// and the scores of every cached token over the full key rows at those
// channels against cpu::score_key_channels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/scores.h"
#include "gpu/scores.h"
#include "gpu/sparq.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

// How the query is drawn: normal values; small integers, where equal sums over
// the group are common; every element equal, so every channel ties.
enum class QueryKind { normal, small_integers, all_equal };

template <class T>
std::vector<T> make_query(std::size_t n, QueryKind kind, std::mt19937_64& rng) {
  if (kind == QueryKind::normal) return test::random_values<T>(n, rng, 2.0f);
  std::vector<T> q(n);
  for (T& x : q) x = from_float<T>(kind == QueryKind::all_equal ? -0.75f : float(int(rng() % 5) - 2));
  return q;
}

struct ChannelCase {
  int sequences, kv_heads, group, head_dim, r;
  QueryKind kind;
};

std::string describe(const ChannelCase& c, DType dtype, std::uint64_t seed) {
  return std::string(dtype_name(dtype)) + " sequences=" + std::to_string(c.sequences) +
         " kv_heads=" + std::to_string(c.kv_heads) + " group=" + std::to_string(c.group) +
         " d=" + std::to_string(c.head_dim) + " r=" + std::to_string(c.r) + " kind=" + std::to_string(int(c.kind)) +
         " seed=" + std::to_string(seed);
}

// The kernel's outputs for one query, downloaded.
struct ChannelRun {
  std::vector<std::int32_t> channels;  // [sequences][kv_heads][r], then a guard that must stay poisoned
  std::vector<std::uint16_t> masked_bits;
};

constexpr std::size_t kGuard = 16;

template <class T>
gpu::SparqChannelArgs channel_args(const ChannelCase& c, const DeviceArray<T>& q, DeviceArray<std::int32_t>& channels,
                                   DeviceArray<T>& masked) {
  gpu::SparqChannelArgs a;
  a.dtype = dtype_of<T>();
  a.sequences = c.sequences;
  a.q_heads = c.kv_heads * c.group;
  a.kv_heads = c.kv_heads;
  a.head_dim = c.head_dim;
  a.r = c.r;
  a.q = q.data();
  a.channels = channels.data();
  a.masked_q = masked.data();
  return a;
}

template <class T>
void check_channels(const ChannelCase& c, std::uint64_t seed) {
  SCOPED_TRACE(describe(c, dtype_of<T>(), seed));
  std::mt19937_64 rng(seed);
  const int d = c.head_dim, q_heads = c.kv_heads * c.group;
  const std::vector<T> q = make_query<T>(std::size_t(c.sequences) * q_heads * d, c.kind, rng);
  const std::size_t chosen = std::size_t(c.sequences) * c.kv_heads * c.r;
  DeviceArray<T> d_q(q), d_masked(q.size());
  DeviceArray<std::int32_t> d_channels(chosen + kGuard);
  d_masked.poison();
  d_channels.poison();
  gpu::sparq_channels(channel_args(c, d_q, d_channels, d_masked), nullptr);
  const std::vector<std::int32_t> got = d_channels.download();
  const std::vector<T> masked = d_masked.download();

  for (int s = 0; s < c.sequences; ++s)
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::size_t first_q = (std::size_t(s) * q_heads + std::size_t(h) * c.group) * d;
      std::vector<int> want(static_cast<std::size_t>(c.r));
      cpu::sparq_channels(q.data() + first_q, c.group, d, c.r, want.data());
      const std::int32_t* g = got.data() + (std::size_t(s) * c.kv_heads + h) * c.r;
      ASSERT_EQ(std::vector<int>(g, g + c.r), want) << "sequence " << s << " KV head " << h;
      std::vector<bool> is_chosen(static_cast<std::size_t>(d), false);
      for (int ch : want) is_chosen[std::size_t(ch)] = true;
      for (int gh = 0; gh < c.group; ++gh)
        for (int ch = 0; ch < d; ++ch) {
          const std::size_t i = first_q + std::size_t(gh) * d + std::size_t(ch);
          const std::uint16_t expected = is_chosen[std::size_t(ch)] ? q[i].bits : std::uint16_t(0);
          ASSERT_EQ(masked[i].bits, expected) << "masked query, sequence " << s << " KV head " << h << " head "
                                              << gh << " channel " << ch;
        }
    }
  for (std::size_t i = chosen; i < got.size(); ++i)
    ASSERT_TRUE(test::is_poison(got[i])) << "written past the channel table at " << i;
}

std::vector<int> r_values(int d) { return {1, 3, d / 16, d / 4, d - 1, d}; }

TEST(GpuSparq, ChannelsMatchCpu) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  for (int d : {64, 128})
    for (int group : {1, 3, 4, 8})
      for (int r : r_values(d))
        for (QueryKind kind : {QueryKind::normal, QueryKind::small_integers, QueryKind::all_equal}) {
          const ChannelCase c{3, 2, group, d, r, kind};
          check_channels<Half>(c, test::seed_for(seed++));
          check_channels<BFloat16>(c, test::seed_for(seed++));
        }
}

// One sequence and one KV head, and many of each (more blocks than a wave).
TEST(GpuSparq, ChannelsOverOddGrids) {
  DSO_SKIP_WITHOUT_GPU();
  check_channels<Half>({1, 1, 1, 64, 5, QueryKind::small_integers}, test::seed_for(900));
  check_channels<BFloat16>({257, 3, 3, 128, 13, QueryKind::normal}, test::seed_for(901));
}

// Scores from the masked query over the full key rows of a layer in a
// head-major cache (capacity past the longest sequence, a second layer between
// sequences), against the cpu with the cpu's channels. The two sum in
// different orders (and the GPU with FMA), so they agree within the rounding
// of an r-term sum: a bound in ulps of the sum of |terms|, far below what one
// wrong channel would change.
template <class T>
void check_scores(int head_dim, int group, int r, const std::vector<std::int32_t>& lengths, std::uint64_t seed) {
  std::string sizes;
  for (std::int32_t n : lengths) sizes += " " + std::to_string(n);
  SCOPED_TRACE(std::string(dtype_name(dtype_of<T>())) + " d=" + std::to_string(head_dim) +
               " group=" + std::to_string(group) + " r=" + std::to_string(r) + " lengths" + sizes +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int sequences = int(lengths.size()), kv_heads = 3, q_heads = kv_heads * group, d = head_dim;
  const std::int64_t max_tokens = *std::max_element(lengths.begin(), lengths.end());
  const std::int64_t capacity = max_tokens + 5, score_stride = max_tokens + 3;
  const int layers = 2, layer = 1;
  const gpu::RowStrides strides{std::int64_t(layers) * kv_heads * capacity * d, capacity * d, d};
  const std::vector<T> q = test::random_values<T>(std::size_t(sequences) * q_heads * d, rng, 2.0f);
  const std::vector<T> keys = test::random_values<T>(std::size_t(sequences) * layers * kv_heads * capacity * d, rng);

  DeviceArray<T> d_q(q), d_masked(q.size()), d_keys(keys);
  DeviceArray<std::int32_t> d_channels(std::size_t(sequences) * kv_heads * r), d_lengths(lengths);
  DeviceArray<float> d_scores(std::size_t(sequences) * kv_heads * score_stride);
  d_scores.poison();
  d_masked.poison();
  gpu::sparq_channels(channel_args(ChannelCase{sequences, kv_heads, group, d, r, QueryKind::normal}, d_q, d_channels,
                                   d_masked),
                      nullptr);
  const std::int64_t layer_offset = std::int64_t(layer) * kv_heads * capacity * d;
  gpu::LabelScoreArgs a;
  a.dtype = dtype_of<T>();
  a.sequences = sequences;
  a.q_heads = q_heads;
  a.kv_heads = kv_heads;
  a.head_dim = d;
  a.r = d;
  a.q = d_masked.data();
  a.channels = nullptr;
  a.labels = {d_keys.data() + layer_offset, strides};
  a.lengths = d_lengths.data();
  a.max_tokens = max_tokens;
  a.scores = d_scores.data();
  a.score_stride = score_stride;
  gpu::score_labels(a, nullptr);
  const std::vector<float> scores = d_scores.download();

  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h) {
      const T* q_group = q.data() + (std::size_t(s) * q_heads + std::size_t(h) * group) * d;
      const T* head_keys = keys.data() + layer_offset + strides.offset(s, h, 0);
      const std::int64_t n = lengths[std::size_t(s)];
      std::vector<int> channels(static_cast<std::size_t>(r));
      cpu::sparq_channels(q_group, group, d, r, channels.data());
      std::vector<float> want(static_cast<std::size_t>(n));
      cpu::score_key_channels(q_group, group, d, std::span<const int>(channels), head_keys, n, want.data());
      const float* got = scores.data() + (std::int64_t(s) * kv_heads + h) * score_stride;
      for (std::int64_t t = 0; t < n; ++t) {
        double magnitude = 0;
        for (int gh = 0; gh < group; ++gh)
          for (int ch : channels)
            magnitude += std::abs(double(to_float(q_group[gh * d + ch])) * double(to_float(head_keys[t * d + ch])));
        const double bound = 2.0 * (r + group + 2) * std::ldexp(magnitude, -24) + 1e-30;
        ASSERT_LE(std::abs(double(got[t]) - double(want[std::size_t(t)])), bound)
            << "sequence " << s << " KV head " << h << " token " << t << ": " << got[t] << " vs "
            << want[std::size_t(t)];
      }
      for (std::int64_t t = n; t < score_stride; ++t)
        ASSERT_TRUE(test::is_poison(got[t])) << "written past the length at " << t;
    }
}

TEST(GpuSparq, ScoresMatchCpu) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 100;
  for (int d : {64, 128})
    for (int group : {1, 3, 4, 8})
      for (int r : {1, d / 16, d / 4, d})
        for (const std::vector<std::int32_t>& lengths : {std::vector<std::int32_t>{1, 3}, {257, 2049, 0}}) {
          check_scores<Half>(d, group, r, lengths, test::seed_for(seed++));
          check_scores<BFloat16>(d, group, r, lengths, test::seed_for(seed++));
        }
}

TEST(GpuSparq, ScoresLongContext) {
  DSO_SKIP_WITHOUT_GPU();
  check_scores<Half>(128, 4, 8, {20011}, test::seed_for(950));
  check_scores<BFloat16>(64, 3, 16, {8192, 5}, test::seed_for(951));
}

// Checked before anything reaches the device, so these run without a GPU.
TEST(GpuSparq, RefusesWhatItCannotChoose) {
  gpu::SparqChannelArgs a;
  a.sequences = 1;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 64;
  for (int r : {0, 65}) {
    a.r = r;
    EXPECT_THROW(gpu::sparq_channels(a, nullptr), Error) << "r=" << r;
  }
  a.r = 4;
  a.head_dim = 256;
  EXPECT_THROW(gpu::sparq_channels(a, nullptr), Error) << "head_dim 256";
  a.head_dim = 64;
  a.q_heads = 5;
  EXPECT_THROW(gpu::sparq_channels(a, nullptr), Error) << "q_heads not a multiple of kv_heads";
}

}  // namespace
}  // namespace dso
