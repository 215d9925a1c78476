// The speculative-selection measurement: its overlap count against a naive
// set intersection, and whole runs on the tiny model where the speculative
// query must equal the true one, or the budget takes every token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/dummy_weights.h"
#include "model/speculative_selection.h"
#include "model/weight_source.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

std::vector<std::int32_t> random_subset(std::int64_t n, std::int64_t size, std::mt19937_64& rng) {
  std::vector<std::int32_t> all(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) all[std::size_t(i)] = std::int32_t(i);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(std::size_t(size));
  std::sort(all.begin(), all.end());
  return all;
}

TEST(SpeculativeSelection, OverlapMatchesNaiveIntersection) {
  for (std::uint64_t seed : {1u, 7u, 31u, 101u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    for (std::int64_t n : {1, 3, 17, 257}) {
      const std::int64_t size = 1 + std::int64_t(rng() % std::uint64_t(n));
      const auto exact = random_subset(n, size, rng), spec = random_subset(n, size, rng);
      const std::int64_t first = std::int64_t(rng() % std::uint64_t(n + 1));
      const std::int64_t last = first + std::int64_t(rng() % std::uint64_t(n - first + 1));
      const std::set<std::int32_t> in_spec(spec.begin(), spec.end());
      std::int64_t wanted = 0, found = 0;
      for (std::int32_t t : exact)
        if (t >= first && t < last) {
          ++wanted;
          found += std::int64_t(in_spec.count(t));
        }
      const Overlap o = selection_overlap(exact, spec, first, last);
      EXPECT_EQ(o.wanted, wanted) << "n " << n << " range " << first << ".." << last;
      EXPECT_EQ(o.found, found) << "n " << n << " range " << first << ".." << last;
    }
  }
}

// The tiny model with every layer a copy of layer 0 and no residual updates
// (W_o = W_down = 0): each layer's input is the previous one's, so the
// speculative query q̂_{i+1} = RoPE(W_q^{i+1} norm_i(x_i)) is the true query.
class RepeatedLayers final : public WeightSource {
 public:
  explicit RepeatedLayers(std::uint64_t seed)
      : config_(test::tiny_llama_config()), base_(dummy_weights(config_, seed)) {
    config_.layers = 4;
  }
  const LlamaConfig& config() const override { return config_; }
  bool is_dummy() const override { return true; }
  bool tied_lm_head() const override { return base_->tied_lm_head(); }
  void read(WeightKind kind, int layer, std::span<float> out) const override {
    check_weight_read(config_, kind, layer, out);
    if (kind == WeightKind::wo || kind == WeightKind::w_down)
      std::fill(out.begin(), out.end(), 0.0f);
    else
      base_->read(kind, is_layer_weight(kind) ? 0 : layer, out);
  }

 private:
  LlamaConfig config_;
  std::unique_ptr<WeightSource> base_;
};

TEST(SpeculativeSelection, ExactWhereTheSpeculativeQueryIsTheTrueOne) {
  for (std::uint64_t seed : {3u, 11u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    const RepeatedLayers weights(seed);
    const std::int64_t n = 97, steps = 13;
    DecoderOptions o = test::decoder_options(Policy::ds_offload, DType::f16, 1, n);
    o.engine.channels = test::random_channels(weights.config().attention(), 5, seed);
    o.engine.budget = {7, 1, 2};
    const SpeculativeAccuracy acc =
        measure_speculative_accuracy(weights, o, test::random_tokens(std::size_t(n), 50, seed), steps);
    EXPECT_EQ(acc.steps, steps);
    EXPECT_EQ(acc.greedy_agreements, steps);
    ASSERT_EQ(acc.per_layer.size(), 4u);
    EXPECT_EQ(acc.per_layer[0].wanted, 0) << "layer 0 selects with its true query";
    for (int l = 1; l < 4; ++l) {
      EXPECT_EQ(acc.per_layer[std::size_t(l)].wanted, steps * 2 * 7) << "layer " << l;
      EXPECT_EQ(acc.per_layer[std::size_t(l)].found, acc.per_layer[std::size_t(l)].wanted) << "layer " << l;
    }
  }
}

TEST(SpeculativeSelection, AgreesWhereTheBudgetKeepsEveryToken) {
  const auto weights = dummy_weights(test::tiny_llama_config(), 5);
  const std::int64_t n = 41, steps = 9;
  DecoderOptions o = test::decoder_options(Policy::ds_offload, DType::f16, 1, n);
  o.engine.channels = test::random_channels(weights->config().attention(), 3, 5);
  o.engine.budget = {n, 0, 0};
  const SpeculativeAccuracy acc =
      measure_speculative_accuracy(*weights, o, test::random_tokens(std::size_t(n), 50, 5), steps);
  EXPECT_EQ(acc.greedy_agreements, steps);
  EXPECT_EQ(acc.per_layer[1].found, acc.per_layer[1].wanted);
  EXPECT_GT(acc.per_layer[1].wanted, 0);
}

// Random layers predict each other badly: a small budget must miss some of
// the exact top-k, or the measurement could not tell a bad prediction.
TEST(SpeculativeSelection, MissesWhereLayersDiffer) {
  const auto weights = dummy_weights(test::tiny_llama_config(), 9);
  const std::int64_t n = 120, steps = 20;
  DecoderOptions o = test::decoder_options(Policy::ds_offload, DType::f16, 1, n);
  o.engine.channels = test::random_channels(weights->config().attention(), 4, 9);
  o.engine.budget = {8, 0, 0};
  const SpeculativeAccuracy acc =
      measure_speculative_accuracy(*weights, o, test::random_tokens(std::size_t(n), 50, 9), steps);
  EXPECT_EQ(acc.per_layer[1].wanted, steps * 2 * 8);
  EXPECT_LT(acc.per_layer[1].found, acc.per_layer[1].wanted);
}

// The counts of MissesWhereLayersDiffer's run as measured before the
// comparer asked the engine for its selections (commit 46027e3, when it
// scored a copy of the keys itself): the engine's selection is the same one.
TEST(SpeculativeSelection, CountsUnchangedSinceTheComparerKeptItsOwnCopy) {
  const auto weights = dummy_weights(test::tiny_llama_config(), 9);
  const std::int64_t n = 120, steps = 20;
  DecoderOptions o = test::decoder_options(Policy::ds_offload, DType::f16, 1, n);
  o.engine.channels = test::random_channels(weights->config().attention(), 4, 9);
  o.engine.budget = {8, 2, 3};
  const SpeculativeAccuracy acc =
      measure_speculative_accuracy(*weights, o, test::random_tokens(std::size_t(n), 50, 9), steps);
  std::vector<std::int64_t> found;
  for (const Overlap& layer : acc.per_layer) found.push_back(layer.found);
  EXPECT_EQ(found, (std::vector<std::int64_t>{0, 159}));
  EXPECT_EQ(acc.greedy_agreements, 12);
}

TEST(SpeculativeSelection, ObserversAreRefusedOnTheCudaBackend) {
  const auto weights = dummy_weights(test::tiny_llama_config(), 2);
  DecoderOptions o = test::decoder_options(Policy::dense_gpu, DType::f16, 1, 16, Backend::cuda);
  o.decode_observer = [](const DecodeActivations&) {};
  try {
    make_decoder(*weights, o);
    FAIL() << "a decode observer on the cuda backend was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu backend only"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dso
