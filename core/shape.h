#pragma once
// The attention shape of a model: everything the engine needs to know of it.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/recent_window.h"

namespace dso {

struct AttentionShape {
  int layers = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;

  int group() const { return q_heads / kv_heads; }

  void validate() const {
    require(layers > 0 && q_heads > 0 && kv_heads > 0 && head_dim > 0,
            "attention shape must be positive: layers=", layers, " q_heads=", q_heads,
            " kv_heads=", kv_heads, " head_dim=", head_dim);
    require(q_heads % kv_heads == 0, "q_heads (", q_heads, ") is not a multiple of kv_heads (",
            kv_heads, ")");
    require(head_dim % 2 == 0, "head_dim (", head_dim, ") must be even for RoPE");
  }
};

// Which tokens of one (sequence, KV head) decode attention reads, besides the
// current one: the `sink` first tokens and the `recent` last are always kept,
// and `k` more are chosen by score from the rest.
struct TokenBudget {
  std::int64_t k = 0;
  std::int64_t sink = 0;
  std::int64_t recent = 0;
};

// How many tokens a selection over n cached tokens holds: the sink and the
// recent window, and k of the tokens between.
inline std::int64_t selection_size(std::int64_t n, const TokenBudget& b) {
  const std::int64_t always = sink_end(n, b.sink) + (n - window_begin(n, b.sink, b.recent));
  return always + std::min(n - always, b.k);
}

}  // namespace dso
