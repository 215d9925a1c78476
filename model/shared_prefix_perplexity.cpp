#include "model/shared_prefix_perplexity.h"

#include <algorithm>

#include "core/error.h"
#include "model/prefix_recorder.h"

namespace dso {

namespace {

void check_plan(const WindowPlan& plan, std::size_t text_tokens) {
  require(plan.context >= 2, "windows need at least 2 tokens, got ", plan.context);
  require(plan.windows >= 1, "at least one window is needed, got ", plan.windows);
  require(plan.batch >= 1, "batch must be at least 1, got ", plan.batch);
  require(plan.score_tokens >= 1 && plan.score_tokens <= plan.context - 1, "score_tokens ", plan.score_tokens,
          " must be in [1, ", plan.context - 1, "] for windows of ", plan.context, " tokens");
  require(plan.windows * plan.context <= std::int64_t(text_tokens), plan.windows, " windows of ", plan.context,
          " tokens need ", plan.windows * plan.context, " tokens of text; it holds ", text_tokens);
}

}  // namespace

SharedPrefixPerplexity::SharedPrefixPerplexity(const WeightSource& weights, DecoderOptions dense,
                                               std::span<const std::int32_t> tokens, const WindowPlan& plan,
                                               const PerplexityProgress& progress)
    : weights_(weights), tokens_(tokens), plan_(plan), prefixes_(std::size_t(std::max<std::int64_t>(plan.windows, 0))) {
  check_plan(plan_, tokens.size());
  dense.engine.policy = Policy::dense_gpu;
  dense.engine.selector = Selector::labels;
  PrefixRecorder recorder(weights.config());
  dense.prefill_observer = recorder.observer();
  const auto decoder = make_decoder(weights_, fitted(std::move(dense)));
  const PerplexityOptions options{plan_.context, plan_.prefix(), plan_.windows};
  dense_ = perplexity(*decoder, tokens_, options, progress, [&](Decoder& d, int sequence, std::int64_t window) {
    recorder.keep(sequence, prefixes_[std::size_t(window)], plan_.prefix());
    d.prefill(sequence, tokens_.subspan(std::size_t(window * plan_.context), std::size_t(plan_.prefix())));
  });
}

PerplexityResult SharedPrefixPerplexity::score(DecoderOptions options, const PerplexityProgress& progress) const {
  options.prefill_observer = {};
  const auto decoder = make_decoder(weights_, fitted(std::move(options)));
  const PerplexityOptions po{plan_.context, plan_.prefix(), plan_.windows};
  return perplexity(*decoder, tokens_, po, progress, [&](Decoder& d, int sequence, std::int64_t window) {
    d.restore_prefix(sequence, prefixes_[std::size_t(window)]);
  });
}

DecoderOptions SharedPrefixPerplexity::fitted(DecoderOptions options) const {
  options.engine.batch = int(std::min<std::int64_t>(plan_.batch, plan_.windows));
  options.engine.capacity = plan_.context;
  return options;
}

}  // namespace dso
