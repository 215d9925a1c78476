#include "prefetch/token_selection.h"

#include <algorithm>

#include "core/checked_math.h"
#include "core/error.h"
#include "gpu/scores.h"
#include "gpu/sparq.h"

namespace dso {

namespace {

bool same_budget(const TokenBudget& a, const TokenBudget& b) {
  return a.k == b.k && a.sink == b.sink && a.recent == b.recent;
}

std::int64_t score_bytes(const SelectionShape& s) {
  return checked_product("the label score buffer", s.sequences, s.kv_heads, s.max_tokens, 4);
}

std::int64_t sparq_channel_bytes(const SelectionShape& s) {
  return checked_product("the SparQ channel buffer", s.sequences, s.kv_heads, s.sparq_r, 4);
}

std::int64_t sparq_query_bytes(const SelectionShape& s) {
  if (s.sparq_r == 0) return 0;
  return checked_product("the SparQ query buffer", s.sequences, s.q_heads, s.head_dim, dtype_size(s.dtype));
}

}  // namespace

TokenSelection::Plans TokenSelection::make_plans(const SelectionShape& s) {
  Plans p;
  p.all = gpu::plan_topk(s.sequences, s.kv_heads, s.max_tokens);
  p.one = gpu::plan_topk(1, s.kv_heads, s.max_tokens);
  p.workspace_bytes = std::max(p.all.workspace_bytes, p.one.workspace_bytes);
  return p;
}

std::int64_t TokenSelection::device_bytes(const SelectionShape& shape) {
  std::int64_t total =
      checked_sum("the selection workspace", score_bytes(shape), std::int64_t(make_plans(shape).workspace_bytes));
  total = checked_sum("the selection workspace", total, sparq_channel_bytes(shape));
  return checked_sum("the selection workspace", total, sparq_query_bytes(shape));
}

TokenSelection::TokenSelection(const SelectionShape& shape)
    : shape_(shape),
      plans_(make_plans(shape)),
      scores_(std::size_t(score_bytes(shape))),
      workspace_(plans_.workspace_bytes),
      sparq_channels_(std::size_t(sparq_channel_bytes(shape))),
      sparq_query_(std::size_t(sparq_query_bytes(shape))) {}

void TokenSelection::select(const SelectionInputs& in, std::span<const TokenBudget> budgets,
                            const SelectionOutputs& out, cudaStream_t stream) const {
  require(budgets.size() == std::size_t(shape_.sequences), "token selection: ", budgets.size(),
          " budgets for ", shape_.sequences, " sequences");
  const bool uniform = std::all_of(budgets.begin(), budgets.end(),
                                   [&](const TokenBudget& b) { return same_budget(b, budgets.front()); });
  if (uniform) {
    select_range(in, 0, shape_.sequences, budgets.front(), out, stream);
    return;
  }
  for (int s = 0; s < shape_.sequences; ++s) select_range(in, s, 1, budgets[std::size_t(s)], out, stream);
}

void TokenSelection::select_sparq(const SparqSelectionInputs& in, std::span<const TokenBudget> budgets,
                                  const SelectionOutputs& out, cudaStream_t stream) const {
  const SelectionShape& s = shape_;
  require(s.sparq_r > 0, "token selection: planned without SparQ channels (sparq_r = 0)");
  gpu::SparqChannelArgs channels;
  channels.dtype = s.dtype;
  channels.sequences = s.sequences;
  channels.q_heads = s.q_heads;
  channels.kv_heads = s.kv_heads;
  channels.head_dim = s.head_dim;
  channels.r = s.sparq_r;
  channels.q = in.q;
  channels.channels = sparq_channels_.as<std::int32_t>();
  channels.masked_q = sparq_query_.data();
  gpu::sparq_channels(channels, stream);
  select({sparq_query_.data(), nullptr, in.keys, in.lengths}, budgets, out, stream);
}

void TokenSelection::select_range(const SelectionInputs& in, int first, int count, const TokenBudget& budget,
                                  const SelectionOutputs& out, cudaStream_t stream) const {
  const SelectionShape& s = shape_;
  const std::int64_t elem = dtype_size(s.dtype);
  const std::int64_t head_scores = std::int64_t(first) * s.kv_heads;
  const gpu::TopkPlan& plan = count == s.sequences ? plans_.all : plans_.one;

  float* scores = scores_.as<float>() + head_scores * s.max_tokens;
  gpu::TopkArgs topk;
  topk.scores = scores;
  topk.score_stride = s.max_tokens;
  topk.lengths = in.lengths + first;
  topk.budget = budget;
  topk.indices = out.indices + head_scores * out.index_stride;
  topk.index_stride = out.index_stride;
  topk.counts = out.counts + head_scores;
  topk.workspace = workspace_.data();
  topk.workspace_bytes = workspace_.bytes();
  topk.candidates_written = true;

  gpu::LabelScoreArgs score;
  score.dtype = s.dtype;
  score.sequences = count;
  score.q_heads = s.q_heads;
  score.kv_heads = s.kv_heads;
  score.head_dim = s.head_dim;
  score.r = in.channels ? s.r : s.head_dim;
  score.q = static_cast<const std::byte*>(in.q) + std::int64_t(first) * s.q_heads * s.head_dim * elem;
  score.channels = in.channels;
  score.labels = {static_cast<const std::byte*>(in.labels.data) + first * in.labels.strides.sequence * elem,
                  in.labels.strides};
  score.lengths = in.lengths + first;
  score.max_tokens = s.max_tokens;
  score.scores = scores;
  score.score_stride = s.max_tokens;
  // The score kernels sample the selection's threshold, list its candidates instead of writing the
  // scores, and find each head's k-th key; select_topk then writes the indices.
  score.candidates = gpu::topk_candidates(plan, topk);
  gpu::score_labels(score, stream);
  gpu::select_topk(plan, topk, stream);
}

}  // namespace dso
