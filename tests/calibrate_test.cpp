// Calibration through the decoder (model/calibrate.h): its statistics against
// a float64 forward pass that measures the same q/k, and a tiny model whose
// W_q/W_k rows carry planted outlier channels, which calibration must find.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "calibration/channel_order.h"
#include "calibration/label_selection.h"
#include "core/error.h"
#include "model/calibrate.h"
#include "model/dummy_weights.h"
#include "support/llama_reference.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

using calibration::Statistic;

constexpr std::uint64_t kSeeds[] = {21, 22, 23};

// Mean statistics of `tokens` run in blocks, each a fresh sequence, in float64.
calibration::ChannelStatistics reference_statistics(const WeightSource& source, std::span<const std::int32_t> tokens,
                                                    std::int64_t block) {
  const test::ReferenceModel model = test::reference_model(source);
  const LlamaConfig& c = model.config;
  const AttentionShape shape = c.attention();
  const int d = c.head_dim, group = shape.group();
  calibration::ChannelStatistics out{shape, {}, {}, {}};
  out.q.assign(std::size_t(c.layers) * c.q_heads * d, 0.0);
  out.k.assign(std::size_t(c.layers) * c.kv_heads * d, 0.0);
  out.qk.assign(out.q.size(), 0.0);
  for (std::size_t begin = 0; begin < tokens.size(); begin += std::size_t(block)) {
    const auto part = tokens.subspan(begin, std::min(tokens.size() - begin, std::size_t(block)));
    test::reference_logits<Half>(model, part, std::int64_t(part.size()), {}, [&](const test::ReferenceQK& a) {
      for (int h = 0; h < c.q_heads; ++h)
        for (int ch = 0; ch < d; ++ch) {
          const std::size_t at = (std::size_t(a.layer) * c.q_heads + h) * d + ch;
          out.q[at] += std::abs(a.q_proj[std::size_t(h * d + ch)]);
          out.qk[at] += std::abs(a.q[std::size_t(h * d + ch)] * a.k[std::size_t(h / group * d + ch)]);
        }
      for (int h = 0; h < c.kv_heads; ++h)
        for (int ch = 0; ch < d; ++ch)
          out.k[(std::size_t(a.layer) * c.kv_heads + h) * d + ch] += std::abs(a.k_proj[std::size_t(h * d + ch)]);
    });
  }
  for (std::vector<double>* table : {&out.q, &out.k, &out.qk})
    for (double& x : *table) x /= double(tokens.size());
  return out;
}

DecoderOptions calibration_options(std::int64_t prefill_chunk) {
  DecoderOptions o = test::decoder_options(Policy::dense_gpu, DType::f16, 1, 1);
  o.prefill_chunk = prefill_chunk;
  return o;
}

TEST(Calibrate, StatisticsMatchFloat64Reference) {
  const LlamaConfig config = test::tiny_llama_config();
  for (std::uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto source = dummy_weights(config, seed);
    // 37 tokens in blocks of 16 (the last holds 5), prefill chunks of 7: no boundary lines up.
    const std::vector<std::int32_t> tokens = test::random_tokens(37, config.vocab_size, seed);
    std::int64_t last_done = 0, planned = 0;
    const calibration::ChannelStatistics got =
        calibrate(*source, calibration_options(7), tokens, 16, [&](std::int64_t done, std::int64_t total) {
          EXPECT_GT(done, last_done);
          last_done = done;
          planned = total;
        });
    EXPECT_EQ(last_done, planned);
    EXPECT_EQ(planned, 37 * config.layers);
    const calibration::ChannelStatistics want = reference_statistics(*source, tokens, 16);
    for (Statistic s : calibration::all_statistics)
      for (int l = 0; l < config.layers; ++l)
        for (int h = 0; h < calibration::heads_of(s, config.attention()); ++h) {
          const auto g = got.of(s, l, h), w = want.of(s, l, h);
          for (int c = 0; c < config.head_dim; ++c)
            // q and k before RoPE are fp32 sums of the same products; after
            // RoPE both sides are rounded to f16 (qk), and every layer's input
            // carries the rounding of the attention output before it.
            EXPECT_NEAR(g[std::size_t(c)], w[std::size_t(c)], 1e-3 * std::abs(w[std::size_t(c)]) + 1e-4)
                << calibration::statistic_name(s) << " layer " << l << " head " << h << " channel " << c;
        }
  }
}

// Dummy weights whose W_q and W_k rows at a planted RoPE pair (c, c + d/2)
// per (layer, KV head) are `gain` times larger, in the keys and in every
// query head of the group: the outlier channels calibration must find.
class PlantedRows final : public WeightSource {
 public:
  PlantedRows(const LlamaConfig& config, std::uint64_t seed, float gain)
      : inner_(dummy_weights(config, seed)), gain_(gain) {
    std::mt19937_64 rng(seed * 7919 + 1);
    for (int i = 0; i < config.layers * config.kv_heads; ++i) {
      const int c = int(rng() % std::uint64_t(config.head_dim / 2));
      planted_.push_back({c, c + config.head_dim / 2});
    }
  }

  const LlamaConfig& config() const override { return inner_->config(); }
  bool is_dummy() const override { return true; }
  bool tied_lm_head() const override { return inner_->tied_lm_head(); }
  void read(WeightKind kind, int layer, std::span<float> out) const override {
    inner_->read(kind, layer, out);
    if (kind != WeightKind::wq && kind != WeightKind::wk) return;
    const LlamaConfig& c = config();
    const int heads = kind == WeightKind::wq ? c.q_heads : c.kv_heads;
    const int group = kind == WeightKind::wq ? c.q_heads / c.kv_heads : 1;
    for (int h = 0; h < heads; ++h)
      for (int ch : planted(layer, h / group))
        for (int col = 0; col < c.hidden; ++col) out[std::size_t((h * c.head_dim + ch) * c.hidden + col)] *= gain_;
  }

  std::set<int> planted(int layer, int kv_head) const {
    return planted_[std::size_t(layer * config().kv_heads + kv_head)];
  }

 private:
  std::unique_ptr<WeightSource> inner_;
  float gain_;
  std::vector<std::set<int>> planted_;
};

TEST(Calibrate, FindsPlantedOutlierChannels) {
  const LlamaConfig config = test::tiny_llama_config();
  for (std::uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const PlantedRows source(config, seed, 8.0f);
    const std::vector<std::int32_t> tokens = test::random_tokens(61, config.vocab_size, seed);
    const calibration::ChannelConfig channels =
        calibration::config_from_statistics(calibrate(source, calibration_options(256), tokens, 32));
    for (Statistic s : calibration::all_statistics) {
      const LabelChannels labels = calibration::label_channels_from_config(channels, config.attention(), s, 2);
      for (int l = 0; l < config.layers; ++l)
        for (int j = 0; j < config.kv_heads; ++j) {
          const auto got = labels.of(l, j);
          EXPECT_EQ(std::set<int>(got.begin(), got.end()), source.planted(l, j))
              << calibration::statistic_name(s) << " layer " << l << " KV head " << j;
        }
    }
  }
}

TEST(Calibrate, RefusesNoTextAndABadBlock) {
  const auto source = dummy_weights(test::tiny_llama_config(), 1);
  const std::vector<std::int32_t> none;
  const std::vector<std::int32_t> some{1, 2, 3};
  EXPECT_THROW(calibrate(*source, calibration_options(8), none, 16), Error);
  EXPECT_THROW(calibrate(*source, calibration_options(8), some, 0), Error);
}

TEST(RandomLabelChannels, SeededDistinctAndInRange) {
  const AttentionShape shape{5, 6, 3, 10};
  for (int r : {1, 3, 10}) {
    const LabelChannels a = calibration::random_label_channels(shape, r, 5);
    a.validate(shape);  // distinct, in range, of the shape
    EXPECT_EQ(a.index, calibration::random_label_channels(shape, r, 5).index);
    if (r < shape.head_dim) EXPECT_NE(a.index, calibration::random_label_channels(shape, r, 6).index) << "r " << r;
  }
  EXPECT_THROW(calibration::random_label_channels(shape, 0, 1), Error);
  EXPECT_THROW(calibration::random_label_channels(shape, 11, 1), Error);
}

}  // namespace
}  // namespace dso
