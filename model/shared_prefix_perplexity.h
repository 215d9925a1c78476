#pragma once
// Perplexity of many decoding settings over the same windows, paying for the
// expensive part once. Each window of `context` tokens is split: its first
// context - 1 - score_tokens tokens are run by a dense prefill, once, and
// their K/V kept; every setting then starts from those prefixes
// (Decoder::restore_prefix) and decodes the rest with its own policy, each
// decoded token's logits scoring the next, so score_tokens tokens per window
// are scored under the setting's attention.
#include <cstdint>
#include <span>
#include <vector>

#include "model/decoder.h"
#include "model/perplexity.h"
#include "model/weight_source.h"

namespace dso {

struct WindowPlan {
  std::int64_t context = 0;       // tokens per window
  std::int64_t windows = 0;       // consecutive windows from the start of the text
  std::int64_t score_tokens = 0;  // scored at the end of each window, in [1, context - 1]
  int batch = 1;                  // windows decoded together

  std::int64_t prefix() const { return context - 1 - score_tokens; }
};

class SharedPrefixPerplexity {
 public:
  // Runs the dense prefill of every window with `dense` (its policy, batch
  // and capacity are set here) and scores the dense decoding of the rest.
  // Throws before any work where the text holds fewer than `windows` windows.
  // The weights and the tokens must outlive the object.
  SharedPrefixPerplexity(const WeightSource& weights, DecoderOptions dense, std::span<const std::int32_t> tokens,
                         const WindowPlan& plan, const PerplexityProgress& progress = {});

  const WindowPlan& plan() const { return plan_; }
  const PerplexityResult& dense() const { return dense_; }

  // The same windows decoded under `options` (policy, budget, channels,
  // selector; batch and capacity are set here), from the kept prefixes.
  PerplexityResult score(DecoderOptions options, const PerplexityProgress& progress = {}) const;

 private:
  DecoderOptions fitted(DecoderOptions options) const;

  const WeightSource& weights_;
  std::span<const std::int32_t> tokens_;
  WindowPlan plan_;
  std::vector<CachedPrefix> prefixes_;  // by window
  PerplexityResult dense_;
};

}  // namespace dso
