// The Double Sparsity step on the GPU, end to end: label append, label
// scores, top-k and attention through the index list, against the CPU chain
// gather_labels -> score_labels -> select_topk -> sparse_attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cpu/attention.h"
#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "gpu/candidates.cuh"
#include "gpu/decode_attention.h"
#include "gpu/labels.h"
#include "gpu/scores.h"
#include "gpu/topk.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

// fused: the selection's threshold sampled and its candidates listed by the
// score kernels. decoys: the keys of the tokens the threshold is sampled from
// point along each head's summed query, so their scores top everyone else's,
// fewer than k candidates reach the threshold, and the fused selection must
// score and select from every token instead.
template <class T>
void run_step(int head_dim, int group, int r, std::int32_t n, TokenBudget budget, bool fused, std::uint64_t seed,
              bool decoys = false) {
  SCOPED_TRACE("dtype=" + std::string(dtype_name(dtype_of<T>())) + " d=" + std::to_string(head_dim) + " group=" +
               std::to_string(group) + " r=" + std::to_string(r) + " n=" + std::to_string(n) +
               " fused=" + std::to_string(fused) + " decoys=" + std::to_string(decoys) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int kv_heads = 3, q_heads = kv_heads * group, d = head_dim;
  const std::int64_t capacity = n + 11;
  const gpu::RowStrides kv = gpu::RowStrides::dense(kv_heads, capacity, d);
  const gpu::RowStrides label_rows = gpu::RowStrides::dense(kv_heads, capacity, r);
  std::vector<T> k = test::random_values<T>(kv_heads * capacity * d, rng);
  const std::vector<T> v = test::random_values<T>(kv_heads * capacity * d, rng);
  const std::vector<T> q = test::random_values<T>(q_heads * d, rng, 1.5f);
  std::vector<std::int32_t> channels;
  for (int h = 0; h < kv_heads; ++h) {
    std::vector<std::int32_t> all(d);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    channels.insert(channels.end(), all.begin(), all.begin() + r);
  }
  if (decoys) {
    const auto sel = gpu::kernels::head_selection(n, budget.k, budget.sink, budget.recent);
    ASSERT_GT(gpu::kernels::sample_rank(sel), 0u) << "the case must sample its threshold";
    ASSERT_LT(gpu::kernels::kSampleSize, sel.k) << "the sample alone must not be able to hold k candidates";
    for (int h = 0; h < kv_heads; ++h)
      for (int i = 0; i < gpu::kernels::kSampleSize; ++i) {
        T* row = k.data() + kv.offset(0, h, gpu::kernels::sample_token(sel, i));
        for (int c = 0; c < d; ++c) {
          float q_sum = 0.0f;
          for (int g = 0; g < group; ++g) q_sum += to_float(q[(h * group + g) * d + c]);
          row[c] = from_float<T>(q_sum >= 0.0f ? 8.0f : -8.0f);
        }
      }
  }

  DeviceArray<T> d_k(k), d_v(v), d_q(q), d_labels(kv_heads * capacity * r);
  DeviceArray<std::int32_t> d_channels(channels), d_zero(std::vector<std::int32_t>{0}), d_n(std::vector<std::int32_t>{n});
  // Labels of the whole prefix, appended as one prefill of n tokens.
  gpu::LabelAppendArgs append{dtype_of<T>(), d, r, {d_k.data(), kv}, {1, kv_heads, n, d_zero.data()},
                              d_channels.data(), {d_labels.data(), label_rows}, capacity};
  gpu::append_labels(append, nullptr);

  DeviceArray<float> d_scores(kv_heads * std::int64_t(n));
  const gpu::TopkPlan topk_plan = gpu::plan_topk(1, kv_heads, n);
  const std::int64_t k_max = selection_size(n, budget);
  DeviceArray<std::int32_t> d_indices(kv_heads * k_max), d_counts(kv_heads);
  DeviceArray<unsigned char> d_topk_ws(topk_plan.workspace_bytes);
  d_indices.poison();
  d_topk_ws.poison();
  gpu::TopkArgs topk{d_scores.data(), n,
                     d_n.data(),      budget,
                     d_indices.data(), k_max,
                     d_counts.data(), d_topk_ws.data(),
                     topk_plan.workspace_bytes, fused};
  gpu::LabelScoreArgs score{dtype_of<T>(), 1,  q_heads,    kv_heads,     d, r, d_q.data(), d_channels.data(),
                            {d_labels.data(), label_rows}, d_n.data(), n, d_scores.data(), n};
  if (fused) {
    gpu::LabelScoreArgs listing = score;
    listing.candidates = gpu::topk_candidates(topk_plan, topk);
    gpu::score_labels(listing, nullptr);
  } else {
    gpu::score_labels(score, nullptr);
  }
  gpu::select_topk(topk_plan, topk, nullptr);
  // The fused path writes no scores; the plain call gives the scores it selected from.
  if (fused) gpu::score_labels(score, nullptr);

  const gpu::DecodeAttentionPlan plan = gpu::plan_decode_attention(1, q_heads, kv_heads, d, k_max);
  DeviceArray<float> d_out(q_heads * d);
  DeviceArray<unsigned char> d_attention_ws(plan.workspace_bytes);
  d_out.poison();
  gpu::DecodeAttentionArgs attend;
  attend.dtype = dtype_of<T>();
  attend.q = d_q.data();
  attend.k = {d_k.data(), kv};
  attend.v = {d_v.data(), kv};
  attend.lengths = d_counts.data();
  attend.length_stride_sequence = kv_heads;
  attend.length_stride_head = 1;
  attend.indices = d_indices.data();
  attend.index_stride = k_max;
  attend.out_f32 = d_out.data();
  attend.workspace = d_attention_ws.data();
  attend.workspace_bytes = plan.workspace_bytes;
  gpu::decode_attention(plan, attend, nullptr);

  const auto scores = d_scores.download();
  const auto indices = d_indices.download();
  const auto out = d_out.download();
  const test::Tolerance score_tol{1e-4, 1e-5}, out_tol{1e-4, 1e-3};
  std::vector<T> labels(std::int64_t(n) * r);
  std::vector<float> want_scores(n), want_out(std::size_t(group) * d);
  std::vector<std::int32_t> want_indices(k_max);
  for (int h = 0; h < kv_heads; ++h) {
    const std::span<const int> s_j(channels.data() + h * r, r);
    cpu::gather_labels(k.data() + kv.offset(0, h, 0), n, d, s_j, labels.data());
    cpu::score_labels(q.data() + h * group * d, group, d, s_j, labels.data(), n, want_scores.data());
    for (std::int32_t t = 0; t < n; ++t)
      ASSERT_TRUE(score_tol.accepts(scores[h * n + t], want_scores[t])) << "head " << h << " token " << t;
    // Selection is compared on the GPU's own scores: FMA rounding may reorder near-ties.
    const std::int64_t count = cpu::select_topk(scores.data() + h * n, n, budget, want_indices.data());
    ASSERT_EQ(count, k_max);
    for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(indices[h * k_max + i], want_indices[i]) << "head " << h;
    cpu::sparse_attention(q.data() + h * group * d, group, d, k.data() + kv.offset(0, h, 0),
                          v.data() + kv.offset(0, h, 0), want_indices.data(), count, want_out.data());
    for (int e = 0; e < group * d; ++e)
      ASSERT_TRUE(out_tol.accepts(out[h * group * d + e], want_out[e])) << "head " << h << " element " << e;
  }
}

TEST(GpuPipeline, DoubleSparsityStepMatchesCpuChain) {
  DSO_SKIP_WITHOUT_GPU();
  for (bool fused : {false, true}) {
    run_step<Half>(128, 1, 8, 20000, {20000 / 16, 4, 64}, fused, test::seed_for(1));
    run_step<BFloat16>(128, 4, 8, 33333, {33333 / 16, 0, 16}, fused, test::seed_for(2));
    run_step<Half>(64, 3, 4, 4099, {256, 1, 1}, fused, test::seed_for(3));
    run_step<BFloat16>(64, 8, 16, 1000, {2000, 0, 0}, fused, test::seed_for(4));
    run_step<Half>(128, 2, 8, 70001, {70001 / 16, 4, 64}, fused, test::seed_for(5));
  }
}

TEST(GpuPipeline, FusedSelectionWhenTheThresholdMisses) {
  DSO_SKIP_WITHOUT_GPU();
  run_step<Half>(128, 2, 8, 70001, {70001 / 16, 4, 64}, true, test::seed_for(6), true);
  run_step<BFloat16>(64, 4, 16, 100003, {100003 / 8, 0, 100}, true, test::seed_for(7), true);
}

}  // namespace
}  // namespace dso
