

// Calibration statistics against naive float64 means, channel orders, and the
// end-to-end claim of channel sparsity: on Q/K with outlier channels,
// calibrated labels find the tokens that carry the softmax mass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "calibration/channel_order.h"
#include "calibration/label_selection.h"
#include "calibration/statistics.h"
#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "support/fill.h"
#include "support/planted_qk.h"

namespace dso {
namespace {

using calibration::ChannelStatistics;
using calibration::Statistic;
using calibration::StatisticsAccumulator;

// Means written straight from the definitions, in float64.
ChannelStatistics reference_means(const AttentionShape& s, const std::vector<std::vector<float>>& q_pre,
                                  const std::vector<std::vector<float>>& k_pre,
                                  const std::vector<std::vector<float>>& q_post,
                                  const std::vector<std::vector<float>>& k_post, std::int64_t tokens) {
  const int d = s.head_dim;
  ChannelStatistics out{s, {}, {}, {}};
  for (int l = 0; l < s.layers; ++l) {
    for (int h = 0; h < s.q_heads; ++h)
      for (int c = 0; c < d; ++c) {
        double sum_q = 0, sum_qk = 0;
        for (std::int64_t t = 0; t < tokens; ++t) {
          sum_q += std::abs(double(q_pre[l][(t * s.q_heads + h) * d + c]));
          const int j = h / (s.q_heads / s.kv_heads);
          sum_qk += std::abs(double(q_post[l][(t * s.q_heads + h) * d + c]) *
                             double(k_post[l][(t * s.kv_heads + j) * d + c]));
        }
        out.q.push_back(sum_q / double(tokens));
        out.qk.push_back(sum_qk / double(tokens));
      }
    for (int j = 0; j < s.kv_heads; ++j)
      for (int c = 0; c < d; ++c) {
        double sum_k = 0;
        for (std::int64_t t = 0; t < tokens; ++t) sum_k += std::abs(double(k_pre[l][(t * s.kv_heads + j) * d + c]));
        out.k.push_back(sum_k / double(tokens));
      }
  }
  return out;
}

std::span<const float> rows(const std::vector<float>& x, std::int64_t first, std::int64_t n, int heads, int d) {
  return std::span<const float>(x).subspan(std::size_t(first) * heads * d, std::size_t(n) * heads * d);
}

struct StatShape {
  AttentionShape shape;
  std::int64_t tokens;
};

class CalibrationStatistics : public ::testing::TestWithParam<StatShape> {};

TEST_P(CalibrationStatistics, StreamingEqualsOneShotAndFloat64Reference) {
  const auto [s, tokens] = GetParam();
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::vector<std::vector<float>> q_pre, k_pre, q_post, k_post;
    for (int l = 0; l < s.layers; ++l) {
      const std::uint64_t base = seed * 1000 + std::uint64_t(l) * 10;
      q_pre.push_back(test::random_tensor<float>(tokens * s.q_heads * s.head_dim, base + 1));
      k_pre.push_back(test::random_tensor<float>(tokens * s.kv_heads * s.head_dim, base + 2, 3.0f));
      q_post.push_back(test::random_tensor<float>(tokens * s.q_heads * s.head_dim, base + 3));
      k_post.push_back(test::random_tensor<float>(tokens * s.kv_heads * s.head_dim, base + 4, 0.5f));
    }

    StatisticsAccumulator one_shot(s), streaming(s);
    std::mt19937_64 rng(seed);
    for (int l = s.layers - 1; l >= 0; --l) {  // layer order must not matter
      one_shot.add_projections(l, tokens, q_pre[l], k_pre[l]);
      one_shot.add_rotated(l, tokens, q_post[l], k_post[l]);
      // Uneven chunks, empty ones included, and pre/post-RoPE chunked differently.
      for (bool post : {false, true}) {
        for (std::int64_t first = 0; first < tokens;) {
          const std::int64_t n = std::min<std::int64_t>(tokens - first, std::int64_t(rng() % 8));
          const auto& q = post ? q_post[l] : q_pre[l];
          const auto& k = post ? k_post[l] : k_pre[l];
          if (post)
            streaming.add_rotated(l, n, rows(q, first, n, s.q_heads, s.head_dim),
                                  rows(k, first, n, s.kv_heads, s.head_dim));
          else
            streaming.add_projections(l, n, rows(q, first, n, s.q_heads, s.head_dim),
                                      rows(k, first, n, s.kv_heads, s.head_dim));
          first += n;
        }
      }
      EXPECT_EQ(streaming.projected_tokens(l), tokens);
      EXPECT_EQ(streaming.rotated_tokens(l), tokens);
    }

    const ChannelStatistics want = reference_means(s, q_pre, k_pre, q_post, k_post, tokens);
    const ChannelStatistics a = one_shot.means(), b = streaming.means();
    for (Statistic st : calibration::all_statistics) {
      SCOPED_TRACE(calibration::statistic_name(st));
      for (int l = 0; l < s.layers; ++l)
        for (int h = 0; h < calibration::heads_of(st, s); ++h) {
          const auto got_a = a.of(st, l, h), got_b = b.of(st, l, h), ref = want.of(st, l, h);
          for (int c = 0; c < s.head_dim; ++c) {
            // Token-by-token accumulation in one order: chunking changes nothing, bit for bit.
            ASSERT_EQ(got_a[c], got_b[c]) << "layer " << l << " head " << h << " channel " << c;
            ASSERT_NEAR(got_a[c], ref[c], 1e-12 * std::max(1.0, std::abs(ref[c])))
                << "layer " << l << " head " << h << " channel " << c;
          }
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CalibrationStatistics,
                         ::testing::Values(StatShape{{1, 1, 1, 2}, 1}, StatShape{{3, 3, 1, 8}, 37},
                                           StatShape{{2, 12, 4, 64}, 29}, StatShape{{2, 4, 4, 6}, 101},
                                           StatShape{{1, 9, 3, 64}, 53}));

TEST(CalibrationStatistics, RejectsMisshapenChunksAndUnfedLayers) {
  const AttentionShape s{2, 4, 2, 8};
  StatisticsAccumulator acc(s);
  std::vector<float> q(3 * 4 * 8, 1.0f), k(3 * 2 * 8, 1.0f);
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { acc.add_projections(0, 2, q, k); }).find("expected 2 tokens x 4 heads x 8"),
            std::string::npos);
  EXPECT_NE(message([&] { acc.add_rotated(2, 3, q, k); }).find("layer 2 is outside [0, 2)"), std::string::npos);
  acc.add_projections(0, 3, q, k);
  acc.add_rotated(0, 3, q, k);
  EXPECT_NE(message([&] { acc.means(); }).find("layer 1 received no tokens"), std::string::npos);
  acc.add_projections(1, 3, q, k);
  EXPECT_NE(message([&] { acc.means(); }).find("layer 1 received no tokens after RoPE"), std::string::npos);
  q[5] = NAN;
  acc.add_rotated(1, 3, q, k);
  EXPECT_NE(message([&] { acc.means(); }).find("NaN"), std::string::npos);
  EXPECT_THROW(StatisticsAccumulator(AttentionShape{2, 3, 2, 8}), Error);
}

TEST(ChannelOrder, DescendingWithLowerChannelFirstOnTies) {
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    for (int d : {1, 3, 64, 127}) {
      std::vector<double> values(d);
      for (auto& v : values) v = double(rng() % 5);  // few distinct values: ties everywhere
      std::vector<std::pair<double, int>> want;
      for (int c = 0; c < d; ++c) want.emplace_back(-values[c], c);
      std::sort(want.begin(), want.end());
      const std::vector<int> got = calibration::order_by_descending(values);
      ASSERT_EQ(got.size(), std::size_t(d));
      for (int i = 0; i < d; ++i) ASSERT_EQ(got[i], want[i].second) << "position " << i;
    }
  }
}

struct PlantedCase {
  int head_dim;
  int group;
};

class PlantedChannels : public ::testing::TestWithParam<PlantedCase> {};

std::vector<int> sorted(std::span<const int> channels) {
  std::vector<int> out(channels.begin(), channels.end());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(PlantedChannels, CalibrationRecoversPlantedOutliers) {
  const auto [d, group] = GetParam();
  const AttentionShape s{2, 2 * group, 2, d};
  const int r = d / 16;
  for (std::uint64_t seed : {31u, 32u, 33u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    const test::PlantedQK model(s, r / 2, 6.0f, seed);
    const ChannelStatistics stats = test::calibrate(model, 300, 64, seed + 7);
    const calibration::ChannelConfig config = calibration::config_from_statistics(stats);
    for (Statistic st : calibration::all_statistics) {
      SCOPED_TRACE(calibration::statistic_name(st));
      const auto& orders = config.orders(st);
      for (int l = 0; l < s.layers; ++l) {
        // Every head's own order starts with its planted channels...
        for (int h = 0; h < orders.heads; ++h) {
          const int j = st == Statistic::k ? h : h / group;
          EXPECT_EQ(sorted(orders.of(l, h).first(r)), model.planted(l, j)) << "layer " << l << " head " << h;
        }
        // ...and so does the per-KV-head selection, by either path.
        const LabelChannels by_stats = calibration::label_channels_from_statistics(stats, st, r);
        const LabelChannels by_config = calibration::label_channels_from_config(config, s, st, r);
        for (int j = 0; j < s.kv_heads; ++j) {
          EXPECT_EQ(sorted(by_stats.of(l, j)), model.planted(l, j)) << "layer " << l << " KV head " << j;
          EXPECT_EQ(sorted(by_config.of(l, j)), model.planted(l, j)) << "layer " << l << " KV head " << j;
        }
      }
    }
  }
}

// Probability mass of `selected` under the exact softmax over all n tokens,
// averaged over the group's query heads (each head has its own softmax).
double softmax_mass(const std::vector<float>& q, int group, int d, const std::vector<float>& keys, std::int64_t n,
                    const std::vector<std::int32_t>& selected) {
  double mass = 0;
  for (int h = 0; h < group; ++h) {
    std::vector<double> logit(n);
    for (std::int64_t t = 0; t < n; ++t) {
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += double(q[h * d + c]) * double(keys[t * d + c]);
      logit[t] = dot / std::sqrt(double(d));
    }
    const double top = *std::max_element(logit.begin(), logit.end());
    double total = 0, picked = 0;
    for (double& l : logit) total += (l = std::exp(l - top));
    for (std::int32_t t : selected) picked += logit[t];
    mass += picked / total;
  }
  return mass / group;
}

std::vector<std::int32_t> select_by_labels(const std::vector<float>& q, int group, int d,
                                           const std::vector<float>& keys, std::int64_t n,
                                           std::span<const int> channels, std::int64_t k) {
  std::vector<float> labels(std::size_t(n) * channels.size()), scores(n);
  cpu::gather_labels(keys.data(), n, d, channels, labels.data());
  cpu::score_labels(q.data(), group, d, channels, labels.data(), n, scores.data());
  std::vector<std::int32_t> out(k);
  out.resize(cpu::select_topk(scores.data(), n, TokenBudget{k, 0, 0}, out.data()));
  return out;
}

TEST_P(PlantedChannels, LabelTopKCapturesTheSoftmaxMassOfExactTopK) {
  const auto [d, group] = GetParam();
  const AttentionShape s{1, 2 * group, 2, d};
  const int r = d / 16;
  const std::int64_t n = 4099;  // prime: k = n/16 is not a round number
  const std::int64_t k = n / 16;
  std::vector<int> every_channel(d);
  std::iota(every_channel.begin(), every_channel.end(), 0);
  for (std::uint64_t seed : {41u, 42u, 43u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    // Outlier pairs with 6x the magnitude in q and in k carry about 99% of the
    // variance of q.k at r = d/16: the regime in which channel sparsity works.
    constexpr float gain = 6.0f;
    const test::PlantedQK model(s, r / 2, gain, seed);
    const ChannelStatistics stats = test::calibrate(model, 256, 100, seed + 1);
    const calibration::ChannelConfig config = calibration::config_from_statistics(stats);
    const LabelChannels by_config = calibration::label_channels_from_config(config, s, Statistic::qk, r);
    const LabelChannels by_stats = calibration::label_channels_from_statistics(stats, Statistic::qk, r);

    // A context of n tokens and the next token's query, all after RoPE.
    std::mt19937_64 rng(seed + 2);
    const test::QKChunk context = model.rotated(model.projections(0, n, rng), 0);
    test::QKChunk next = model.rotated(model.projections(0, 1, rng), n);
    // The query's scale sets how peaked the softmax is, not which tokens
    // either top-k picks: bring the logits to a standard deviation near 3.
    const float pairs = float(r / 2);
    const float logit_std = std::sqrt((2 * pairs * std::pow(gain, 4.0f) + (float(d) - 2 * pairs)) / float(d));
    for (float& x : next.q) x *= 3.0f / logit_std;
    for (int j = 0; j < s.kv_heads; ++j) {
      SCOPED_TRACE(testing::Message() << "KV head " << j);
      std::vector<float> keys(std::size_t(n) * d);
      for (std::int64_t t = 0; t < n; ++t)
        std::copy_n(context.k.begin() + (t * s.kv_heads + j) * d, d, keys.begin() + t * d);
      const std::vector<float> q(next.q.begin() + std::size_t(j) * group * d,
                                 next.q.begin() + std::size_t(j + 1) * group * d);

      // Exact top-k: the true scores summed over the group (every channel a
      // label), the best a selection per KV head can do.
      const auto mass_by = [&](std::span<const int> channels) {
        return softmax_mass(q, group, d, keys, n, select_by_labels(q, group, d, keys, n, channels, k));
      };
      const double exact = mass_by(every_channel);
      for (const LabelChannels* labels : {&by_config, &by_stats}) {
        const double calibrated = mass_by(labels->of(0, j));
        EXPECT_GE(calibrated, 0.9 * exact) << (labels == &by_config ? "from config" : "from statistics")
                                           << ": calibrated " << calibrated << ", exact " << exact;
      }

      // The bar is not met by any r channels: the least important ones miss it.
      const std::span<const int> order = config.orders(Statistic::qk).of(0, j * group);
      const double worst = mass_by(order.last(r));
      EXPECT_LT(worst, 0.9 * exact) << "least important channels " << worst << ", exact " << exact;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDimsAndGroups, PlantedChannels,
                         ::testing::Values(PlantedCase{64, 1}, PlantedCase{64, 3}, PlantedCase{64, 4},
                                           PlantedCase{128, 1}, PlantedCase{128, 3}, PlantedCase{128, 4}),
                         [](const auto& info) {
                           return "d" + std::to_string(info.param.head_dim) + "_group" +
                                  std::to_string(info.param.group);
                         });

}  // namespace
}  // namespace dso
