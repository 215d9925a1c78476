#include "gpu/topk.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/topk.cuh"

namespace dso::gpu {

namespace kernels {

// The candidate lists from given scores. Grid: (tiles, kv_heads, sequences).
__global__ void __launch_bounds__(kTileThreads) topk_candidate_kernel(TopkParams p) {
  __shared__ CandidateStorage storage;
  const TileHead t = tile_head(p, blockIdx.x);
  if (t.sel.mode != SelectMode::select || t.begin >= t.sel.recent_begin) return;  // the whole block
  const float* row = p.scores + t.head * p.score_stride;
  float score[kTileItems];
#pragma unroll
  for (int i = 0; i < kTileItems; ++i) {
    const std::int64_t token = t.begin + i * kTileThreads + threadIdx.x;
    score[i] = token < t.sel.recent_begin ? row[token] : 0.0f;
  }
  allow_next_grid();
  write_candidates(p.candidates, storage, t.head, t.tile, t.sel, score);
}

// Grid: (segments, kv_heads, sequences).
__global__ void __launch_bounds__(kTileThreads) topk_compact_kernel(TopkParams p) {
  using PairScan = cub::BlockScan<unsigned long long, kTileThreads>;
  __shared__ typename PairScan::TempStorage scan;
  __shared__ Segment segment;
  wait_for_previous_grids();
  allow_next_grid();
  const TileHead t = tile_head(p, std::int64_t(blockIdx.x) * kSegmentTiles);
  const HeadSelection& sel = t.sel;
  std::int32_t* out = p.indices + t.head * p.index_stride;
  if (blockIdx.x == 0 && threadIdx.x == 0) p.counts[t.head] = std::int32_t(sel.total());
  const std::int64_t end = t.begin + kSegmentTiles * kTileTokens < sel.n ? t.begin + kSegmentTiles * kTileTokens : sel.n;
  if (sel.mode == SelectMode::all) {
    for (std::int64_t token = t.begin + threadIdx.x; token < end; token += kTileThreads) out[token] = std::int32_t(token);
    return;
  }
  for (std::int64_t token = t.begin + threadIdx.x; token < end && token < sel.sink_end; token += kTileThreads)
    out[token] = std::int32_t(token);
  const std::int64_t recent_out = sel.sink_end + sel.k - sel.recent_begin;
  for (std::int64_t token = (t.begin > sel.recent_begin ? t.begin : sel.recent_begin) + threadIdx.x; token < end;
       token += kTileThreads)
    out[recent_out + token] = std::int32_t(token);
  if (sel.mode != SelectMode::select || t.begin >= sel.recent_begin) return;  // the whole block

  const HeadState state = p.candidates.states[t.head];
  const uint2 before = p.tile_before[t.head * p.candidates.tiles + t.tile];
  std::uint32_t counts[kSegmentTiles];
  if (threadIdx.x == 0) Segment::fetch(p, t, counts);
  segment.publish(t, counts);
  // The segment's items in token order: listed keys, or every candidate's score.
  const float* row = p.scores + t.head * p.score_stride;
  const std::int64_t first_token = t.begin > sel.sink_end ? t.begin : sel.sink_end;
  const std::int64_t last_token = end < sel.recent_begin ? end : sel.recent_begin;
  const std::uint32_t total = state.listed                  ? segment.start[kSegmentTiles]
                              : last_token > first_token ? std::uint32_t(last_token - first_token)
                                                         : 0u;  // a segment inside the sink
  std::uint32_t g_base = before.x, e_base = before.y;
  std::int32_t* selected = out + sel.sink_end;
  for (std::uint32_t base = 0; base < total; base += kSegmentRound) {
    const std::uint32_t first = base + threadIdx.x * kSegmentItems;
    int tile = state.listed && first < total ? segment.tile_of(first, 0) : 0;
    uint2 v[kSegmentItems];
    unsigned long long mine = 0;
#pragma unroll
    for (int j = 0; j < kSegmentItems; ++j) {
      const std::uint32_t i = first + j;
      if (i >= total) continue;
      if (state.listed) {
        tile = segment.tile_of(i, tile);
        v[j] = segment.items(p, t.head, tile)[i];
      } else {
        const std::int64_t token = first_token + i;
        v[j] = make_uint2(radix_key(row[token]), std::uint32_t(token));
      }
      mine += v[j].x > state.kth ? 1ull : v[j].x == state.kth ? (1ull << 32) : 0ull;
    }
    unsigned long long prefix = 0, round_total = 0;
    PairScan(scan).ExclusiveSum(mine, prefix, round_total);
    std::uint32_t g = g_base + std::uint32_t(prefix), e = e_base + std::uint32_t(prefix >> 32);
#pragma unroll
    for (int j = 0; j < kSegmentItems; ++j) {
      if (first + j >= total) continue;
      const bool greater = v[j].x > state.kth, equal = v[j].x == state.kth;
      const std::uint32_t position = g + min(e, state.take_equal);
      if ((greater || (equal && e < state.take_equal)) && position < std::uint32_t(sel.k))
        selected[position] = std::int32_t(v[j].y);
      g += greater;
      e += equal;
    }
    g_base += std::uint32_t(round_total);
    e_base += std::uint32_t(round_total >> 32);
    __syncthreads();  // the scan storage is reused by the next round
  }
}

inline cudaError_t launch_sample_scores(const TopkParams& p, int sequences, cudaStream_t stream) {
  const ScoreRows rows{p.scores, p.score_stride, p.kv_heads};
  sample_threshold_kernel<ScoreRows>
      <<<dim3(unsigned(p.kv_heads), unsigned(sequences)), kSampleThreads, 0, stream>>>(p.candidates, p.lengths,
                                                                                       p.kv_heads, rows);
  return launch_status(stream);
}

// The selection; when candidates_written, score_labels already ran everything
// up to the compaction.
inline cudaError_t launch_topk(const TopkParams& p, int sequences, bool candidates_written, cudaStream_t stream) {
  if (sequences == 0 || p.kv_heads == 0) return cudaSuccess;
  if (!candidates_written) {
    DSO_CUDA_TRY(launch_sample_scores(p, sequences, stream));
    const dim3 tiles(unsigned(p.candidates.tiles), unsigned(p.kv_heads), unsigned(sequences));
    DSO_CUDA_TRY(launch_after_previous(topk_candidate_kernel, tiles, dim3(kTileThreads), stream, p));
    DSO_CUDA_TRY_LAUNCH(stream);
    DSO_CUDA_TRY(launch_bucket(p, sequences, ScoresWritten{}, stream));
  }
  DSO_CUDA_TRY(launch_after_previous(topk_compact_kernel, segment_grid(p, sequences), dim3(kTileThreads), stream, p));
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace kernels

namespace {

struct TopkLayout {
  std::size_t states = 0, histograms = 0, tile_counts = 0, tile_above = 0, tile_before = 0, candidates = 0,
              bucket = 0, total = 0;
};

TopkLayout layout(int sequences, int kv_heads, std::int64_t tiles) {
  const std::size_t heads = std::size_t(sequences) * kv_heads;
  const std::size_t tile_count = heads * std::size_t(tiles);
  auto align8 = [](std::size_t b) { return (b + 7) / 8 * 8; };
  TopkLayout l;
  l.states = 0;
  l.histograms = l.states + heads * sizeof(kernels::HeadState);
  l.tile_counts = l.histograms + heads * kernels::kFirstBins * sizeof(std::uint32_t);
  l.tile_above = l.tile_counts + tile_count * sizeof(std::uint32_t);
  l.tile_before = align8(l.tile_above + tile_count * sizeof(std::uint32_t));
  l.candidates = l.tile_before + tile_count * sizeof(uint2);
  l.bucket = l.candidates + tile_count * kernels::kTileTokens * sizeof(uint2);
  l.total = l.bucket + tile_count * kernels::kTileTokens * sizeof(uint2);
  return l;
}

}  // namespace

TopkPlan plan_topk(int sequences, int kv_heads, std::int64_t max_tokens) {
  require(sequences >= 0 && kv_heads >= 0 && max_tokens >= 0, "top-k plan: negative sizes (sequences=", sequences,
          " kv_heads=", kv_heads, " max_tokens=", max_tokens, ")");
  constexpr std::int64_t most_tokens = kernels::kMaxTiles * kernels::kTileTokens;
  require(max_tokens <= most_tokens, "top-k plan: max_tokens=", max_tokens, " exceeds the supported ", most_tokens,
          " tokens per sequence");
  require(sequences <= 65535 && kv_heads <= 65535, "top-k plan: at most 65535 sequences and KV heads, got ",
          sequences, " and ", kv_heads);
  TopkPlan plan;
  plan.sequences = sequences;
  plan.kv_heads = kv_heads;
  plan.max_tokens = max_tokens;
  plan.tiles = std::max<std::int64_t>(1, (max_tokens + kernels::kTileTokens - 1) / kernels::kTileTokens);
  plan.workspace_bytes = layout(sequences, kv_heads, plan.tiles).total;
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
  const TopkLayout l = layout(plan.sequences, plan.kv_heads, plan.tiles);
  auto* ws = static_cast<unsigned char*>(a.workspace);
  const kernels::CandidateParams candidates{b.k,
                                            b.sink,
                                            b.recent,
                                            reinterpret_cast<kernels::HeadState*>(ws + l.states),
                                            reinterpret_cast<std::uint32_t*>(ws + l.histograms),
                                            reinterpret_cast<uint2*>(ws + l.candidates),
                                            reinterpret_cast<std::uint32_t*>(ws + l.tile_counts),
                                            plan.tiles};
  return {a.scores,
          a.score_stride,
          a.lengths,
          plan.kv_heads,
          a.indices,
          a.index_stride,
          a.counts,
          candidates,
          reinterpret_cast<uint2*>(ws + l.bucket),
          reinterpret_cast<std::uint32_t*>(ws + l.tile_above),
          reinterpret_cast<uint2*>(ws + l.tile_before)};
}

}  // namespace

TopkCandidates topk_candidates(const TopkPlan& plan, const TopkArgs& args) {
  const kernels::TopkParams p = checked_params(plan, args);
  const kernels::CandidateParams& c = p.candidates;
  return {c.states,   c.histograms,    c.candidates,  c.tile_counts,  p.bucket,       p.tile_above,
          p.tile_before, plan.tiles, plan.sequences, plan.kv_heads, args.budget};
}

void select_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream) {
  const kernels::TopkParams p = checked_params(plan, args);
  DSO_CUDA_CHECK(kernels::launch_topk(p, plan.sequences, args.candidates_written, stream));
}

}  // namespace dso::gpu
