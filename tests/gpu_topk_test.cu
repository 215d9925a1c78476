// GPU top-k selection against cpu::select_topk (exact equality), and by its
// properties, on random, all-equal and low-entropy scores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/shape.h"
#include "cpu/topk.h"
#include "gpu/candidates.cuh"
#include "gpu/topk.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

// decoys: normal, except that the tokens the threshold is sampled from score
// far above the rest, so fewer than k candidates reach the threshold and the
// selection must fall back to all of the head's scores.
enum class Scores { normal, equal, few_values, signed_zeros, decoys };

const char* name(Scores s) {
  switch (s) {
    case Scores::normal:
      return "normal";
    case Scores::equal:
      return "equal";
    case Scores::few_values:
      return "few_values";
    case Scores::signed_zeros:
      return "signed_zeros";
    case Scores::decoys:
      return "decoys";
  }
  return "?";
}

float draw(Scores kind, std::mt19937_64& rng) {
  switch (kind) {
    case Scores::normal:
    case Scores::decoys:
      return std::normal_distribution<float>(0.0f, 3.0f)(rng);
    case Scores::equal:
      return 0.75f;
    case Scores::few_values:
      return float(int(rng() % 4)) - 1.5f;
    case Scores::signed_zeros: {
      const int r = int(rng() % 4);
      return r == 0 ? 0.0f : r == 1 ? -0.0f : r == 2 ? 1.0f : -1.0f;
    }
  }
  return 0.0f;
}

struct Case {
  std::vector<std::int32_t> lengths;  // per sequence
  int kv_heads;
  TokenBudget budget;
};

std::string describe(const Case& c) {
  std::string s = "lengths=";
  for (auto n : c.lengths) s += std::to_string(n) + ",";
  return s + " kv_heads=" + std::to_string(c.kv_heads) + " k=" + std::to_string(c.budget.k) +
         " sink=" + std::to_string(c.budget.sink) + " recent=" + std::to_string(c.budget.recent);
}

// The properties a selection must have, checked without the reference.
void expect_selection_properties(const float* scores, std::int64_t n, const TokenBudget& b,
                                 const std::int32_t* idx, std::int64_t count) {
  ASSERT_EQ(count, selection_size(n, b));
  for (std::int64_t i = 1; i < count; ++i) ASSERT_LT(idx[i - 1], idx[i]) << "indices not strictly ascending at " << i;
  std::vector<bool> chosen(n, false);
  for (std::int64_t i = 0; i < count; ++i) {
    ASSERT_GE(idx[i], 0);
    ASSERT_LT(idx[i], n);
    chosen[idx[i]] = true;
  }
  const std::int64_t sink_end = std::min(n, b.sink), recent_begin = std::max(sink_end, n - b.recent);
  for (std::int64_t t = 0; t < sink_end; ++t) ASSERT_TRUE(chosen[t]) << "sink token " << t << " missing";
  for (std::int64_t t = recent_begin; t < n; ++t) ASSERT_TRUE(chosen[t]) << "recent token " << t << " missing";
  // Every chosen candidate beats every rejected one, and ties go to the lower index.
  std::int64_t worst_chosen = -1, best_rejected = -1;
  for (std::int64_t t = sink_end; t < recent_begin; ++t) {
    if (chosen[t]) {
      if (worst_chosen < 0 || scores[t] <= scores[worst_chosen]) worst_chosen = t;
    } else if (best_rejected < 0 || scores[t] > scores[best_rejected]) {
      best_rejected = t;
    }
  }
  if (worst_chosen >= 0 && best_rejected >= 0) {
    ASSERT_GE(scores[worst_chosen], scores[best_rejected]);
    if (scores[worst_chosen] == scores[best_rejected]) {
      for (std::int64_t t = sink_end; t < recent_begin; ++t)
        if (!chosen[t] && scores[t] == scores[worst_chosen]) {
          for (std::int64_t u = t + 1; u < recent_begin; ++u)
            ASSERT_FALSE(chosen[u] && scores[u] == scores[t]) << "tie at " << t << " lost to higher index " << u;
          break;
        }
    }
  }
}

// Raises every sampled token of every head that samples far above the rest,
// so that any threshold drawn from the sample keeps at most the sample, and
// checks that the sample is smaller than k.
void plant_decoys(std::vector<float>& scores, std::int64_t stride, const std::vector<std::int32_t>& lengths,
                  int kv_heads, const TokenBudget& b) {
  for (std::size_t s = 0; s < lengths.size(); ++s)
    for (int h = 0; h < kv_heads; ++h) {
      const auto sel = gpu::kernels::head_selection(lengths[s], b.k, b.sink, b.recent);
      if (gpu::kernels::sample_rank(sel) == 0) continue;
      ASSERT_LT(gpu::kernels::kSampleSize, sel.k) << "the sample alone must not be able to hold k candidates";
      float* row = scores.data() + (std::int64_t(s) * kv_heads + h) * stride;
      for (std::int64_t t = sel.sink_end; t < sel.recent_begin; ++t)
        ASSERT_LT(std::abs(row[t]), 1000.0f) << "normal scores must stay below the decoys";
      for (int i = 0; i < gpu::kernels::kSampleSize; ++i) {
        float& x = row[gpu::kernels::sample_token(sel, i)];
        x = 1000.0f + std::abs(x);
      }
    }
}

void run_case(const Case& c, Scores kind, std::uint64_t seed) {
  SCOPED_TRACE(describe(c) + " scores=" + name(kind) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int sequences = int(c.lengths.size());
  const std::int64_t max_tokens = *std::max_element(c.lengths.begin(), c.lengths.end()) + 3;
  const std::int64_t score_stride = max_tokens + 5;
  const std::int64_t heads = std::int64_t(sequences) * c.kv_heads;
  std::vector<float> scores(heads * score_stride);
  for (auto& x : scores) x = draw(kind, rng);
  const std::vector<std::int32_t> lengths = c.lengths;
  if (kind == Scores::decoys) plant_decoys(scores, score_stride, lengths, c.kv_heads, c.budget);

  const gpu::TopkPlan plan = gpu::plan_topk(sequences, c.kv_heads, max_tokens);
  const std::int64_t index_stride = selection_size(max_tokens, c.budget) + 2;
  DeviceArray<float> d_scores(scores);
  DeviceArray<std::int32_t> d_lengths(lengths);
  DeviceArray<std::int32_t> d_indices(heads * index_stride);
  DeviceArray<std::int32_t> d_counts(heads);
  DeviceArray<unsigned char> d_workspace(plan.workspace_bytes);
  d_indices.poison();
  d_counts.poison();
  d_workspace.poison();

  gpu::TopkArgs args;
  args.scores = d_scores.data();
  args.score_stride = score_stride;
  args.lengths = d_lengths.data();
  args.budget = c.budget;
  args.indices = d_indices.data();
  args.index_stride = index_stride;
  args.counts = d_counts.data();
  args.workspace = d_workspace.data();
  args.workspace_bytes = plan.workspace_bytes;
  gpu::select_topk(plan, args, nullptr);
  const std::vector<std::int32_t> indices = d_indices.download();
  const std::vector<std::int32_t> counts = d_counts.download();

  std::vector<std::int32_t> expected(index_stride);
  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < c.kv_heads; ++h) {
      SCOPED_TRACE("sequence " + std::to_string(s) + " head " + std::to_string(h));
      const std::int64_t head = std::int64_t(s) * c.kv_heads + h;
      const float* row = scores.data() + head * score_stride;
      const std::int64_t n = lengths[s];
      const std::int64_t want = cpu::select_topk(row, n, c.budget, expected.data());
      ASSERT_EQ(counts[head], want);
      const std::int32_t* got = indices.data() + head * index_stride;
      for (std::int64_t i = 0; i < want; ++i) ASSERT_EQ(got[i], expected[i]) << "index " << i << " of " << want;
      for (std::int64_t i = want; i < index_stride; ++i)
        ASSERT_TRUE(test::is_poison(got[i])) << "written past the selection at " << i;
      expect_selection_properties(row, n, c.budget, got, want);
    }
}

TEST(GpuTopk, SmallAndAwkwardSizes) {
  DSO_SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = {
      {{1}, 1, {1, 0, 0}},          {{3}, 2, {1, 0, 0}},         {{3}, 1, {3, 0, 0}},
      {{257}, 3, {16, 0, 0}},       {{257, 100}, 3, {16, 4, 8}}, {{4099, 2048}, 2, {256, 4, 64}},
      {{4097}, 1, {4096, 0, 0}},    {{4097}, 1, {4097, 0, 0}},   {{4097}, 1, {5000, 0, 0}},
      {{1000}, 2, {0, 4, 16}},      {{10}, 1, {3, 8, 8}},        {{8193, 1}, 3, {1, 1, 1}},
      {{30000}, 1, {29999, 1, 0}},  {{12289, 5000}, 2, {768, 0, 1}},
  };
  int seed = 0;
  for (const Case& c : cases)
    for (Scores kind : {Scores::normal, Scores::equal, Scores::few_values, Scores::signed_zeros})
      run_case(c, kind, test::seed_for(seed++));
}

// Fewer than k candidates reach the sampled threshold: the same exact result.
TEST(GpuTopk, ThresholdMissFallsBackToAllScores) {
  DSO_SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = {
      {{100003}, 2, {100003 / 16, 4, 64}},
      {{300007, 65536}, 1, {300007 / 8, 0, 100}},
      {{300007}, 1, {300007 / 16, 20000, 64}},  // the first 8 tiles all sink
  };
  int seed = 300;
  for (const Case& c : cases) run_case(c, Scores::decoys, test::seed_for(seed++));
}

TEST(GpuTopk, LongContexts) {
  DSO_SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = {
      {{300007}, 2, {300007 / 16, 4, 64}},
      {{1 << 20}, 2, {(1 << 20) / 16, 0, 0}},
      {{1 << 20, 777777}, 1, {(1 << 19) + 3, 16, 1000}},
  };
  int seed = 100;
  for (const Case& c : cases)
    for (Scores kind : {Scores::normal, Scores::few_values}) run_case(c, kind, test::seed_for(seed++));
}

// The workspace needs no initialisation between calls: a second selection on
// the same plan and workspace is as exact as the first.
TEST(GpuTopk, WorkspaceReuse) {
  DSO_SKIP_WITHOUT_GPU();
  const int sequences = 1, kv_heads = 4;
  const std::int64_t n = 50021;
  const TokenBudget budget{n / 16, 4, 32};
  const gpu::TopkPlan plan = gpu::plan_topk(sequences, kv_heads, n);
  const std::int64_t index_stride = selection_size(n, budget);
  DeviceArray<std::int32_t> d_lengths(std::vector<std::int32_t>{std::int32_t(n)});
  DeviceArray<std::int32_t> d_indices(kv_heads * index_stride);
  DeviceArray<std::int32_t> d_counts(kv_heads);
  DeviceArray<unsigned char> d_workspace(plan.workspace_bytes);
  DeviceArray<float> d_scores(kv_heads * n);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::mt19937_64 rng(test::seed_for(200 + round));
    std::vector<float> scores(kv_heads * n);
    for (auto& x : scores) x = draw(round == 1 ? Scores::few_values : Scores::normal, rng);
    d_scores.upload(scores);
    gpu::TopkArgs args{d_scores.data(), n,          d_lengths.data(),     budget, d_indices.data(), index_stride,
                       d_counts.data(), d_workspace.data(), plan.workspace_bytes};
    gpu::select_topk(plan, args, nullptr);
    const auto indices = d_indices.download();
    std::vector<std::int32_t> expected(index_stride);
    for (int h = 0; h < kv_heads; ++h) {
      const std::int64_t want = cpu::select_topk(scores.data() + h * n, n, budget, expected.data());
      ASSERT_EQ(want, index_stride);
      for (std::int64_t i = 0; i < want; ++i) ASSERT_EQ(indices[h * index_stride + i], expected[i]);
    }
  }
}

TEST(GpuTopk, RejectsTooSmallIndexRows) {
  DSO_SKIP_WITHOUT_GPU();
  const gpu::TopkPlan plan = gpu::plan_topk(1, 1, 1000);
  gpu::TopkArgs args;
  args.score_stride = 1000;
  args.budget = {100, 4, 4};
  args.index_stride = 107;
  args.workspace_bytes = plan.workspace_bytes;
  EXPECT_THROW(gpu::select_topk(plan, args, nullptr), Error);
}

}  // namespace
}  // namespace dso
