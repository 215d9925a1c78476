// What the engine reports per step against counts made independently: bytes
// that cross PCIe (flexgen: the whole layer; the offload policies: the
// selected tokens below the GPU window only; none for GPU-resident policies),
// tokens attended, and the memory plan.
#include <gtest/gtest.h>

#include "offload/engine.h"
#include "support/engine_cases.h"
#include "support/engine_reference.h"

namespace dso::test {
namespace {

constexpr Policy all_policies[] = {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload,
                                   Policy::ds_offload_sync};

TEST(EngineAccounting, StepCountersMatchTheReference) {
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds) {
      const auto in = case_inputs<Half>(c, seed, false);
      for (Policy p : all_policies) {
        SCOPED_TRACE(trace(c, seed, p));
        const EngineConfig config = case_config(c, in, p);
        const auto run = run_engine(config, in);
        const auto ref = reference_run(config, in);
        for (int step = 0; step < c.steps; ++step) {
          const StepStats& st = run.step_stats[std::size_t(step)];
          EXPECT_EQ(st.steps, 1);
          EXPECT_EQ(st.h2d_bytes, ref.h2d_bytes[std::size_t(step)]) << "step " << step;
          EXPECT_EQ(st.tokens_selected, ref.tokens[std::size_t(step)]) << "step " << step;
          EXPECT_GE(st.ms_select, 0.0);
          EXPECT_GE(st.ms_fetch, 0.0);
          EXPECT_GE(st.ms_attend, 0.0);
        }
      }
    }
}

// The closed form, from the lengths the engine reported before each layer:
// flexgen moves K and V of every cached token of every sequence.
TEST(EngineAccounting, FlexgenMovesTheWholeLayer) {
  for (const EngineCase& c : engine_cases()) {
    const auto in = case_inputs<BFloat16>(c, engine_seeds[0], true);
    const auto run = run_engine(case_config(c, in, Policy::flexgen), in);
    for (int step = 0; step < c.steps; ++step) {
      std::int64_t tokens = 0;
      for (int l = 0; l < c.shape.layers; ++l)
        for (std::int64_t n : run.lengths_before[std::size_t(step) * c.shape.layers + l]) tokens += n;
      EXPECT_EQ(run.step_stats[std::size_t(step)].h2d_bytes, tokens * c.shape.kv_heads * 2 * c.shape.head_dim * 2)
          << c.name << " step " << step;
    }
  }
}

// With no sink and no recent window, the GPU window is the current token
// alone, so ds_offload moves exactly k tokens per (layer, sequence, KV head)
// once the context is longer than k.
TEST(EngineAccounting, OffloadMovesTheSelectedTokensOnly) {
  EngineCase c{"k3", {3, 4, 2, 16}, {50, 23}, {3, 0, 0}, 0, 2, {0}, 4};
  const auto in = case_inputs<Half>(c, 5, false);
  for (Policy p : {Policy::ds_offload, Policy::ds_offload_sync}) {
    SCOPED_TRACE(std::string(policy_name(p)));
    const auto run = run_engine(case_config(c, in, p), in);
    for (const StepStats& st : run.step_stats) {
      EXPECT_EQ(st.h2d_bytes, std::int64_t(c.shape.layers) * 2 * c.shape.kv_heads * 3 * (2 * c.shape.head_dim * 2));
      EXPECT_EQ(st.tokens_selected, std::int64_t(c.shape.layers) * 2 * c.shape.kv_heads * (3 + 1));
    }
  }
}

TEST(EngineAccounting, MemoryPlanIsTheAnalyticCount) {
  EngineConfig config;
  config.shape = {32, 32, 8, 128};  // llama-3-8b
  config.batch = 2;
  config.capacity = 131072;
  config.k_fraction = 1.0 / 16;
  config.budget = {0, 4, 60};
  config.channels = LabelChannels::leading(config.shape, 8);
  const std::int64_t B = 2, L = 32, H = 8, N = 131072, d = 128, r = 8, e = 2;
  const std::int64_t selection = 4 + 60 + (N - 1 - 64 < (N - 1) / 16 ? N - 1 - 64 : (N - 1) / 16);
  const std::int64_t most_attended = selection + 1;
  const std::int64_t kv = 2 * B * L * H * N * d * e;
  const std::int64_t labels = B * L * H * N * r * e;
  const std::int64_t workspace = B * H * (N + most_attended) * 4;
  const std::int64_t window = B * L * H * 61 * 2 * d * e;
  const std::int64_t token = 2 * d * e;

  struct Expect {
    Policy policy;
    std::int64_t host, gpu, fetch;
  };
  const Expect expected[] = {
      {Policy::dense_gpu, 0, kv, 0},
      {Policy::ds_gpu, 0, kv + labels + workspace, 0},
      {Policy::flexgen, kv, 2 * B * H * N * token, 2 * B * H * N * token},
      {Policy::ds_offload, kv, labels + workspace + window + 2 * B * H * most_attended * token,
       2 * B * H * most_attended * token},
      {Policy::ds_offload_sync, kv, labels + workspace + window + B * H * most_attended * token,
       B * H * most_attended * token},
  };
  for (const Expect& want : expected) {
    SCOPED_TRACE(std::string(policy_name(want.policy)));
    config.policy = want.policy;
    const MemoryPlan plan = Engine::plan(config);
    EXPECT_EQ(plan.kv_bytes, kv);
    EXPECT_EQ(plan.host_bytes, want.host);
    EXPECT_EQ(plan.gpu_bytes, want.gpu);
    EXPECT_EQ(plan.fetch_bytes, want.fetch);
  }
}

}  // namespace
}  // namespace dso::test
