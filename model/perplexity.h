#pragma once
// Perplexity of a token stream under a decoder. The stream is cut into
// windows of `context` tokens, each a fresh sequence; windows run `batch` at a
// time as one decode batch. In a window, the first `prefill` tokens are fed by
// prefill and every later token but the last is decoded, its logits scoring
// the token after it, so the policy's attention (sparse or not) acts on every
// scored position: context - 1 - prefill tokens are scored per window.
#include <cstdint>
#include <functional>
#include <span>

#include "model/decoder.h"

namespace dso {

struct PerplexityOptions {
  std::int64_t context = 0;      // tokens per window; a stream shorter than one window is one shorter window
  std::int64_t prefill = 0;      // leading tokens of each window fed by prefill, in [0, context - 1)
  std::int64_t max_windows = 0;  // 0: every whole window of the stream
};

struct PerplexityResult {
  std::int64_t windows = 0;
  std::int64_t context = 0;        // tokens per window actually used
  std::int64_t tokens_scored = 0;
  double nll = 0.0;                // sum of -log p over the scored tokens

  double perplexity() const;
};

// Called after every decode step with the totals so far and the windows planned.
using PerplexityProgress = std::function<void(const PerplexityResult& so_far, std::int64_t windows_planned)>;

// Puts the first `prefill` tokens of window `window` (counted from the start
// of the stream) into sequence `sequence` of a freshly reset decoder.
using WindowStart = std::function<void(Decoder& decoder, int sequence, std::int64_t window)>;

// Resets the decoder for every group of windows; its max_batch() windows run
// together. Each window's leading tokens go in by prefill, or by `start`
// where one is given (Decoder::restore_prefix of a prefix saved earlier).
// Throws dso::Error before any work where the options do not fit the stream
// or the decoder's capacity.
PerplexityResult perplexity(Decoder& decoder, std::span<const std::int32_t> tokens, const PerplexityOptions& options,
                            const PerplexityProgress& progress = {}, const WindowStart& start = {});

}  // namespace dso
