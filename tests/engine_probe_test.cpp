// What the engine's public header offers a model beyond decode: which layers
// need q_next, and the selection probe accuracy tools compare selections with.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "support/engine_cases.h"

namespace dso::test {
namespace {

// The selection of one (sequence, layer, KV head) recomputed from the
// prefilled keys, as engine_reference.h does.
std::vector<std::int32_t> reference_selection(const EngineConfig& config, const DecodeInputs<Half>& in, int s,
                                              int layer, int h, const Half* q_sequence) {
  const AttentionShape& shape = in.shape;
  const int d = shape.head_dim, g = shape.group();
  const std::int64_t n = in.prefill[std::size_t(s)];
  std::vector<Half> keys(std::size_t(n) * d);
  const std::vector<Half>& k = in.prefill_k[std::size_t(s) * shape.layers + layer];
  for (std::int64_t t = 0; t < n; ++t)
    for (int c = 0; c < d; ++c) keys[std::size_t(t * d + c)] = k[std::size_t((t * shape.kv_heads + h) * d + c)];
  TokenBudget b = config.budget;
  if (config.k_fraction > 0) b.k = std::max<std::int64_t>(1, std::int64_t(config.k_fraction * double(n)));
  const auto channels = config.channels.of(layer, h);
  std::vector<Half> labels(std::size_t(n) * channels.size());
  cpu::gather_labels(keys.data(), n, d, channels, labels.data());
  std::vector<float> scores(static_cast<std::size_t>(n));
  cpu::score_labels(q_sequence + std::size_t(h) * g * d, g, d, channels, labels.data(), n, scores.data());
  std::vector<std::int32_t> picked(static_cast<std::size_t>(n));
  picked.resize(std::size_t(cpu::select_topk(scores.data(), n, b, picked.data())));
  return picked;
}

TEST(EngineProbe, SelectionMatchesTheReferenceAndChangesNothing) {
  for (const EngineCase& c : engine_cases())
    for (Policy p : {Policy::ds_gpu, Policy::ds_offload, Policy::ds_offload_sync}) {
      SCOPED_TRACE(c.name + " " + std::string(policy_name(p)));
      const DecodeInputs<Half> in = case_inputs<Half>(c, engine_seeds[1], false);
      const EngineConfig config = case_config(c, in, p);
      const auto engine = Engine::create(config);
      for (int s = 0; s < in.batch; ++s)
        for (int l = 0; l < in.shape.layers; ++l) {
          const std::size_t i = std::size_t(s) * in.shape.layers + l;
          engine->prefill(l, s, in.prefill_k[i].data(), in.prefill_v[i].data(), in.prefill[std::size_t(s)]);
        }
      const std::size_t per_sequence = std::size_t(in.shape.q_heads) * in.shape.head_dim;
      for (int s = 0; s < in.batch; ++s)
        for (int l = 0; l < in.shape.layers; ++l) {
          const Half* q = in.q[std::size_t(l)].data() + std::size_t(s) * per_sequence;
          const SelectionProbe probe = engine->probe_selection(l, s, q);
          const std::int64_t n = in.prefill[std::size_t(s)];
          EXPECT_EQ(probe.cached, n);
          ASSERT_EQ(probe.per_head.size(), std::size_t(in.shape.kv_heads));
          for (int h = 0; h < in.shape.kv_heads; ++h)
            EXPECT_EQ(probe.per_head[std::size_t(h)], reference_selection(config, in, s, l, h, q))
                << "sequence " << s << " layer " << l << " head " << h;
          EXPECT_EQ(engine->length(s, l), n);
        }
      EXPECT_EQ(engine->stats().h2d_bytes, 0);
      EXPECT_EQ(engine->stats().tokens_selected, 0);
      EXPECT_EQ(engine->stats().ms_select, 0);
    }
}

TEST(EngineProbe, RefusedWherePolicySelectsNothing) {
  const EngineCase c = engine_cases()[0];
  const DecodeInputs<Half> in = case_inputs<Half>(c, engine_seeds[0], false);
  for (Policy p : {Policy::dense_gpu, Policy::flexgen}) {
    const auto engine = Engine::create(case_config(c, in, p));
    try {
      engine->probe_selection(0, 0, in.q[0].data());
      FAIL() << policy_name(p) << " accepted a selection probe";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("selects no tokens"), std::string::npos) << e.what();
    }
  }
}

TEST(EngineProbe, NeedsQNextFollowsTheSyncLayers) {
  EngineCase c = engine_cases()[2];  // 4 layers, sync layers 0 and 2
  const DecodeInputs<Half> in = case_inputs<Half>(c, engine_seeds[0], false);
  const auto offload = Engine::create(case_config(c, in, Policy::ds_offload));
  EXPECT_EQ((std::vector<bool>{offload->needs_q_next(0), offload->needs_q_next(1), offload->needs_q_next(2),
                               offload->needs_q_next(3)}),
            (std::vector<bool>{true, false, true, false}));
  const auto sync = Engine::create(case_config(c, in, Policy::ds_offload_sync));
  for (int l = 0; l < 4; ++l) EXPECT_FALSE(sync->needs_q_next(l)) << "layer " << l;
  EXPECT_TRUE(uses_label_channels(case_config(c, in, Policy::ds_gpu)));
  EXPECT_FALSE(uses_label_channels(case_config(c, in, Policy::flexgen)));
}

}  // namespace
}  // namespace dso::test
