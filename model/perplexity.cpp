#include "model/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace dso {

double PerplexityResult::perplexity() const {
  return tokens_scored > 0 ? std::exp(nll / double(tokens_scored)) : std::nan("");
}

PerplexityResult perplexity(Decoder& decoder, std::span<const std::int32_t> tokens, const PerplexityOptions& options,
                            const PerplexityProgress& progress, const WindowStart& start) {
  require(options.context >= 2, "perplexity needs a context of at least 2 tokens, got ", options.context);
  require(tokens.size() >= 2, "perplexity needs at least 2 tokens of text, got ", tokens.size());
  require(options.max_windows >= 0, "max_windows must not be negative, got ", options.max_windows);
  PerplexityResult result;
  result.context = std::min<std::int64_t>(options.context, std::int64_t(tokens.size()));
  std::int64_t windows = std::int64_t(tokens.size()) / result.context;
  if (options.max_windows > 0) windows = std::min(windows, options.max_windows);
  const std::int64_t context = result.context;
  require(options.prefill >= 0 && options.prefill < context - 1, "prefill of ", options.prefill,
          " tokens leaves nothing to score in windows of ", context, " tokens (it must be below ", context - 1, ")");
  require(context <= decoder.engine_config().capacity, "windows of ", context,
          " tokens do not fit the decoder's capacity of ", decoder.engine_config().capacity);

  for (std::int64_t first = 0; first < windows; first += decoder.max_batch()) {
    const int batch = int(std::min<std::int64_t>(decoder.max_batch(), windows - first));
    decoder.reset(batch);
    const auto window = [&](int b) { return tokens.subspan(std::size_t((first + b) * context), std::size_t(context)); };
    for (int b = 0; b < batch; ++b) {
      if (start)
        start(decoder, b, first + b);
      else
        decoder.prefill(b, window(b).first(std::size_t(options.prefill)));
      require(decoder.position(b) == options.prefill, "window ", first + b, " starts with ", decoder.position(b),
              " tokens in place, expected ", options.prefill);
    }
    std::vector<std::int32_t> step(static_cast<std::size_t>(batch)), next(step.size());
    for (std::int64_t i = options.prefill; i + 1 < context; ++i) {
      for (int b = 0; b < batch; ++b) {
        step[std::size_t(b)] = window(b)[std::size_t(i)];
        next[std::size_t(b)] = window(b)[std::size_t(i) + 1];
      }
      decoder.decode(step);
      for (double lp : decoder.log_probs(next)) result.nll -= lp;
      result.tokens_scored += batch;
      if (progress) progress(result, windows);
    }
    result.windows += batch;
  }
  return result;
}

}  // namespace dso
