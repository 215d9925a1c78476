#include "gpu/scores.h"


#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/scores.cuh"

namespace dso::gpu {

namespace {

// The widest label load (in elements, at most 16 bytes) that every row start is aligned to.
int label_vector_width(const LabelScoreArgs& a) {
  auto aligned = [&](int vec) {
    const auto elements = std::int64_t(vec);
    return a.r % vec == 0 && a.labels.strides.token % elements == 0 && a.labels.strides.head % elements == 0 &&
           a.labels.strides.sequence % elements == 0 &&
           reinterpret_cast<std::uintptr_t>(a.labels.data) % (elements * 2) == 0;
  };
  for (int vec : {8, 4, 2})
    if (aligned(vec)) return vec;
  return 1;
}

}  // namespace

void score_labels(const LabelScoreArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads > 0 && a.q_heads > 0 && a.q_heads % a.kv_heads == 0,
          "label scores: q_heads=", a.q_heads, " must be a positive multiple of kv_heads=", a.kv_heads);
  require(a.r >= 1 && a.r <= a.head_dim && a.r <= kernels::kMaxLabelWidth, "label scores: r=", a.r,
          " must be in [1, min(head_dim=", a.head_dim, ", ", kernels::kMaxLabelWidth, ")]");
  require(a.max_tokens >= 0 && a.score_stride >= a.max_tokens, "label scores: score_stride=", a.score_stride,
          " must cover max_tokens=", a.max_tokens);
  require(a.labels.strides.token >= a.r, "label scores: label rows overlap (token stride ", a.labels.strides.token,
          " < r=", a.r, ")");
  if (a.sequences == 0 || a.max_tokens == 0) return;
  require(a.q && a.labels.data && a.lengths && a.scores,
          "label scores: q, labels, lengths and scores must be device pointers, got null");
  constexpr std::int64_t tile = kernels::kTileTokens;
  const std::int64_t tiles = (a.max_tokens + tile - 1) / tile;
  require(tiles < (std::int64_t(1) << 31), "label scores: max_tokens=", a.max_tokens, " is too large");
  require(a.kv_heads <= 65535 && a.sequences <= 65535, "label scores: at most 65535 sequences and KV heads");
  const TopkCandidates& c = a.candidates;
  const bool listing = c.states != nullptr;
  if (listing) {
    const TokenBudget& b = c.budget;
    require(b.k >= 0 && b.sink >= 0 && b.recent >= 0, "label scores: top-k budget must be non-negative (k=", b.k,
            " sink=", b.sink, " recent=", b.recent, ")");
    require(c.histograms && c.candidates && c.tile_counts && c.bucket && c.tile_above && c.tile_before,
            "label scores: top-k candidate lists without storage");
    require(c.sequences == a.sequences && c.kv_heads == a.kv_heads && c.tiles >= tiles,
            "label scores: the top-k plan (", c.sequences, " sequences, ", c.kv_heads, " KV heads, ",
            c.tiles * tile, " tokens) does not cover these scores (", a.sequences, ", ", a.kv_heads, ", ",
            a.max_tokens, ")");
  }
  const kernels::CandidateParams candidates{c.budget.k,
                                            c.budget.sink,
                                            c.budget.recent,
                                            static_cast<kernels::HeadState*>(c.states),
                                            c.histograms,
                                            static_cast<uint2*>(c.candidates),
                                            c.tile_counts,
                                            c.tiles};
  const kernels::TopkParams topk{a.scores,     a.score_stride,        a.lengths,
                                 a.kv_heads,   nullptr,               0,
                                 nullptr,      candidates,            static_cast<uint2*>(c.bucket),
                                 c.tile_above, static_cast<uint2*>(c.tile_before)};
  const kernels::LabelScoreParams p{a.q,
                                    a.q_heads,
                                    a.kv_heads,
                                    a.q_heads / a.kv_heads,
                                    a.head_dim,
                                    a.r,
                                    a.channels,
                                    a.labels.data,
                                    a.labels.strides,
                                    a.lengths,
                                    a.scores,
                                    a.score_stride,
                                    listing,
                                    topk};
  dispatch_storage(a.dtype, [&](auto storage) {
    using T = decltype(storage);
    cudaError_t e = cudaSuccess;
    switch (label_vector_width(a)) {
      case 8:
        e = kernels::launch_label_score<T, 8>(p, a.sequences, tiles, stream);
        break;
      case 4:
        e = kernels::launch_label_score<T, 4>(p, a.sequences, tiles, stream);
        break;
      case 2:
        e = kernels::launch_label_score<T, 2>(p, a.sequences, tiles, stream);
        break;
      default:
        e = kernels::launch_label_score<T, 1>(p, a.sequences, tiles, stream);
        break;
    }
    DSO_CUDA_CHECK(e);
  });
}

}  // namespace dso::gpu
