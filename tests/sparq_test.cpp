// SparQ-style selection (EngineConfig::selector = sparq): the per-step channel
// choice against a naive float64 reference, including ties; the engine's
// decode against a float64 reference that chooses channels, scores the full
// keys and takes the top k itself; and the configurations it refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "cpu/scores.h"
#include "support/engine_cases.h"
#include "support/engine_reference.h"

namespace dso::test {
namespace {

// Channels by descending sum over the group of |q|, lower channel first on
// equal sums; the first r.
template <class T>
std::vector<int> naive_sparq_channels(const T* q, int group, int d, int r) {
  std::vector<double> magnitude(std::size_t(d), 0.0);
  for (int h = 0; h < group; ++h)
    for (int c = 0; c < d; ++c) magnitude[std::size_t(c)] += std::abs(double(to_float(q[h * d + c])));
  std::vector<int> order(static_cast<std::size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return magnitude[std::size_t(a)] > magnitude[std::size_t(b)]; });
  order.resize(std::size_t(r));
  return order;
}

TEST(SparqChannels, MatchNaiveReferenceWithTies) {
  for (std::uint64_t seed : {31u, 32u, 33u}) {
    std::mt19937_64 rng(seed);
    for (int group : {1, 3, 4})
      for (int d : {2, 10, 64})
        for (int r : {1, d / 2, d}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " group " + std::to_string(group) + " d " +
                       std::to_string(d) + " r " + std::to_string(r));
          // Normal values; small integers, where equal sums are common; all equal.
          std::normal_distribution<float> normal(0.0f, 1.0f);
          for (int kind = 0; kind < 3; ++kind) {
            std::vector<Half> q(std::size_t(group) * d);
            for (Half& x : q)
              x = from_float<Half>(kind == 0 ? normal(rng) : kind == 1 ? float(int(rng() % 5) - 2) : 1.0f);
            std::vector<int> got(static_cast<std::size_t>(r));
            cpu::sparq_channels(q.data(), group, d, r, got.data());
            EXPECT_EQ(got, naive_sparq_channels(q.data(), group, d, r)) << "kind " << kind;
          }
        }
  }
}

// The engine's cache mirrored as in reference_run, with SparQ's selection.
template <class T>
std::vector<std::vector<double>> sparq_reference(const EngineConfig& config, const DecodeInputs<T>& in) {
  const AttentionShape& shape = in.shape;
  const int layers = shape.layers, hkv = shape.kv_heads, d = shape.head_dim, g = shape.group();
  std::vector<std::vector<T>> keys(std::size_t(in.batch) * layers * hkv), values(keys.size());
  const auto mirror = [&](int s, int l, int h) { return (std::size_t(s) * layers + l) * hkv + std::size_t(h); };
  const auto push = [&](std::size_t m, const T* k, const T* v) {
    keys[m].insert(keys[m].end(), k, k + d);
    values[m].insert(values[m].end(), v, v + d);
  };
  for (int s = 0; s < in.batch; ++s)
    for (int l = 0; l < layers; ++l)
      for (std::int64_t t = 0; t < in.prefill[std::size_t(s)]; ++t)
        for (int h = 0; h < hkv; ++h) {
          const std::size_t i = std::size_t(s) * layers + l, at = (std::size_t(t) * hkv + h) * d;
          push(mirror(s, l, h), in.prefill_k[i].data() + at, in.prefill_v[i].data() + at);
        }
  std::vector<std::vector<double>> out;
  for (int step = 0; step < in.steps; ++step)
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(step) * layers + l;
      std::vector<double> o(in.q[i].size());
      for (int s = 0; s < in.batch; ++s)
        for (int h = 0; h < hkv; ++h) {
          const std::size_t m = mirror(s, l, h);
          const auto n = std::int64_t(keys[m].size()) / d;
          const T* q = in.q[i].data() + (std::size_t(s) * shape.q_heads + std::size_t(h) * g) * d;
          const std::vector<int> channels = naive_sparq_channels(q, g, d, config.sparq_r);
          std::vector<double> score(static_cast<std::size_t>(n), 0.0);
          for (std::int64_t t = 0; t < n; ++t)
            for (int gh = 0; gh < g; ++gh)
              for (int c : channels)
                score[std::size_t(t)] +=
                    double(to_float(q[gh * d + c])) * double(to_float(keys[m][std::size_t(t) * d + std::size_t(c)]));
          TokenBudget b = config.budget;
          if (config.k_fraction > 0) b.k = std::max<std::int64_t>(1, std::int64_t(config.k_fraction * double(n)));
          const std::int64_t sink = std::min(n, b.sink), recent_begin = std::max(sink, n - b.recent);
          std::vector<std::int64_t> candidates(static_cast<std::size_t>(recent_begin - sink));
          std::iota(candidates.begin(), candidates.end(), sink);
          std::stable_sort(candidates.begin(), candidates.end(), [&](std::int64_t a, std::int64_t c) {
            return score[std::size_t(a)] > score[std::size_t(c)];
          });
          candidates.resize(std::size_t(std::min<std::int64_t>(b.k, std::int64_t(candidates.size()))));
          std::vector<std::int64_t> positions(static_cast<std::size_t>(sink));
          std::iota(positions.begin(), positions.end(), 0);
          positions.insert(positions.end(), candidates.begin(), candidates.end());
          for (std::int64_t t = recent_begin; t < n; ++t) positions.push_back(t);
          positions.push_back(n);
          std::sort(positions.begin(), positions.end());
          const std::size_t at = (std::size_t(s) * hkv + h) * d;
          push(m, in.k_new[i].data() + at, in.v_new[i].data() + at);
          detail::attention_f64(q, g, d, keys[m], values[m], positions,
                                o.data() + (std::size_t(s) * shape.q_heads + std::size_t(h) * g) * d);
        }
      out.push_back(std::move(o));
    }
  return out;
}

template <class T>
class SparqEngineTest : public ::testing::Test {};
using DTypes = ::testing::Types<Half, BFloat16>;
TYPED_TEST_SUITE(SparqEngineTest, DTypes);

TYPED_TEST(SparqEngineTest, DecodeMatchesFloat64Reference) {
  using T = TypeParam;
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds)
      for (int r : {1, c.r, c.shape.head_dim}) {
        SCOPED_TRACE(trace(c, seed, Policy::ds_gpu) + " sparq r " + std::to_string(r));
        const auto in = case_inputs<T>(c, seed, true);
        EngineConfig config = case_config(c, in, Policy::ds_gpu);
        config.selector = Selector::sparq;
        config.sparq_r = r;
        config.channels = {};  // SparQ needs no calibration
        const auto run = run_engine(config, in);
        const auto ref = sparq_reference(config, in);
        ASSERT_EQ(run.out.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) expect_close(run.out[i], ref[i]);
      }
}

TEST(SparqConfig, KeepsNoLabelCacheAndRefusesWhatItCannotRun) {
  EngineConfig config;
  config.shape = {2, 4, 2, 16};
  config.policy = Policy::ds_gpu;
  config.capacity = 64;
  config.budget.k = 8;
  config.selector = Selector::sparq;
  config.sparq_r = 4;
  EXPECT_EQ(Engine::plan(config).label_bytes, 0);
  EngineConfig offload = config;
  offload.policy = Policy::ds_offload;
  offload.channels = LabelChannels::leading(config.shape, 4);
  EXPECT_THROW(Engine::plan(offload), Error);
  // The cuda backend runs it too, under ds_gpu alone.
  EngineConfig cuda = config;
  cuda.backend = Backend::cuda;
  EXPECT_NO_THROW(Engine::plan(cuda));
  EXPECT_EQ(Engine::plan(cuda).label_bytes, 0);
  EngineConfig cuda_offload = offload;
  cuda_offload.backend = Backend::cuda;
  EXPECT_THROW(Engine::plan(cuda_offload), Error);
  for (int r : {0, 17}) {
    EngineConfig bad = config;
    bad.sparq_r = r;
    EXPECT_THROW(Engine::plan(bad), Error) << "sparq_r " << r;
  }
  EXPECT_EQ(parse_selector("sparq"), Selector::sparq);
  EXPECT_THROW(parse_selector("labelz"), Error);
}

}  // namespace
}  // namespace dso::test
