#include "gpu/topk.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/memory.h"
#include "gpu/topk.cuh"

namespace dso::gpu {

namespace {

constexpr int kMaxTiles = 1024;  // the compaction sums the earlier tiles' counts, one per thread and pass

struct TopkLayout {
  std::size_t histograms = 0, state = 0, survivors = 0, survivor_counts = 0, tile_greater = 0, tile_cum = 0,
              total = 0;
};

TopkLayout layout(int sequences, int kv_heads, int tiles, std::int64_t tile_tokens) {
  const std::size_t heads = std::size_t(sequences) * kv_heads;
  const std::size_t tile_count = heads * tiles;
  TopkLayout l;
  l.histograms = 0;
  l.state = heads * kernels::kHeadHistogramWords * sizeof(std::uint32_t);  // a multiple of 8
  l.survivors = l.state + heads * 2 * sizeof(uint2);
  l.survivor_counts = l.survivors + tile_count * std::size_t(tile_tokens) * sizeof(uint2);
  l.tile_greater = l.survivor_counts + tile_count * sizeof(std::uint32_t);
  l.tile_cum = l.tile_greater + tile_count * sizeof(std::uint32_t);
  l.total = l.tile_cum + tile_count * kernels::kTileCumWords * sizeof(std::uint32_t);
  return l;
}

}  // namespace

TopkPlan plan_topk(int sequences, int kv_heads, std::int64_t max_tokens) {
  require(sequences >= 0 && kv_heads >= 0 && max_tokens >= 0, "top-k plan: negative sizes (sequences=", sequences,
          " kv_heads=", kv_heads, " max_tokens=", max_tokens, ")");
  require(max_tokens <= std::int64_t(INT32_MAX), "top-k plan: max_tokens=", max_tokens,
          " exceeds the 32-bit token indices");
  require(sequences <= 65535 && kv_heads <= 65535, "top-k plan: at most 65535 sequences and KV heads, got ",
          sequences, " and ", kv_heads);
  TopkPlan plan;
  plan.sequences = sequences;
  plan.kv_heads = kv_heads;
  plan.max_tokens = max_tokens;
  // One wave of the blocks the kernels are built to keep resident, each tile a
  // whole number of rounds of loads.
  constexpr std::int64_t round = kernels::kTopkRound;
  const std::int64_t heads = std::max<std::int64_t>(1, std::int64_t(sequences) * kv_heads);
  const std::int64_t wanted = kernels::kTopkMinBlocks * std::int64_t(multiprocessor_count()) / heads;
  const std::int64_t most = std::max<std::int64_t>(1, (max_tokens + round - 1) / round);
  plan.tiles = int(std::clamp<std::int64_t>(wanted, 1, std::min<std::int64_t>(most, kMaxTiles)));
  const std::int64_t per_tile = std::max<std::int64_t>(1, (max_tokens + plan.tiles - 1) / plan.tiles);
  plan.tile_tokens = (per_tile + round - 1) / round * round;
  plan.workspace_bytes = layout(sequences, kv_heads, plan.tiles, plan.tile_tokens).total;
  return plan;
}

namespace {

kernels::TopkParams checked_params(const TopkPlan& plan, const TopkArgs& a) {
  const TokenBudget& b = a.budget;
  require(b.k >= 0 && b.sink >= 0 && b.recent >= 0, "top-k: budget must be non-negative (k=", b.k, " sink=", b.sink,
          " recent=", b.recent, ")");
  require(a.score_stride >= plan.max_tokens, "top-k: score_stride=", a.score_stride, " is below max_tokens=",
          plan.max_tokens);
  const std::int64_t most = selection_size(plan.max_tokens, b);
  require(a.index_stride >= most, "top-k: index_stride=", a.index_stride, " cannot hold the ", most,
          " indices a sequence of ", plan.max_tokens, " tokens selects");
  require(a.workspace_bytes >= plan.workspace_bytes, "top-k: workspace of ", a.workspace_bytes,
          " bytes is smaller than the plan's ", plan.workspace_bytes);
  if (plan.sequences > 0 && plan.kv_heads > 0)
    require(a.scores && a.lengths && a.indices && a.counts && a.workspace,
            "top-k: scores, lengths, indices, counts and workspace must be device pointers, got null");
  const TopkLayout l = layout(plan.sequences, plan.kv_heads, plan.tiles, plan.tile_tokens);
  auto* ws = static_cast<unsigned char*>(a.workspace);
  return {a.scores,
          a.score_stride,
          a.lengths,
          plan.kv_heads,
          b.k,
          b.sink,
          b.recent,
          plan.tiles,
          plan.tile_tokens,
          a.indices,
          a.index_stride,
          a.counts,
          reinterpret_cast<std::uint32_t*>(ws + l.histograms),
          reinterpret_cast<uint2*>(ws + l.state),
          reinterpret_cast<uint2*>(ws + l.survivors),
          reinterpret_cast<std::uint32_t*>(ws + l.survivor_counts),
          reinterpret_cast<std::uint32_t*>(ws + l.tile_greater),
          reinterpret_cast<std::uint32_t*>(ws + l.tile_cum)};
}

}  // namespace

TopkFirstDigit begin_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream) {
  const kernels::TopkParams p = checked_params(plan, args);
  DSO_CUDA_CHECK(kernels::clear_topk_histograms(p, plan.sequences, stream));
  return {p.histograms, args.budget};
}

void select_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream) {
  const kernels::TopkParams p = checked_params(plan, args);
  DSO_CUDA_CHECK(kernels::launch_topk(p, plan.sequences, args.first_digit_counted, stream));
}

}  // namespace dso::gpu
