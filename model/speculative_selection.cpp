#include "model/speculative_selection.h"

#include <algorithm>

#include "core/error.h"
#include "core/dtype.h"
#include "cpu/model_ops.h"

namespace dso {

Overlap selection_overlap(std::span<const std::int32_t> exact, std::span<const std::int32_t> spec,
                          std::int64_t first, std::int64_t last) {
  Overlap o;
  auto s = spec.begin();
  for (std::int32_t t : exact) {
    if (t < first || t >= last) continue;
    ++o.wanted;
    s = std::lower_bound(s, spec.end(), t);
    if (s != spec.end() && *s == t) ++o.found;
  }
  return o;
}

SelectionComparer::SelectionComparer(const EngineConfig& config)
    : config_(config), q_hat_(std::size_t(config.shape.layers)), per_layer_(std::size_t(config.shape.layers)) {
  require(config.batch == 1, "the selection comparer follows one sequence, the engine has ", config.batch);
}

DecodeObserver SelectionComparer::decode_observer() {
  return [this](const DecodeActivations& a) { on_decode(a); };
}

void SelectionComparer::on_decode(const DecodeActivations& a) {
  const auto l = std::size_t(a.layer);
  if (!q_hat_[l].empty()) compare(a.layer, a.q, q_hat_[l]);
  if (l + 1 < q_hat_.size()) q_hat_[l + 1].assign(a.q_next.begin(), a.q_next.end());
}

SelectionProbe SelectionComparer::probe(Engine& engine, int layer, std::span<const float> q) {
  // The observer's fp32 values are the engine's dtype widened: narrowing is exact.
  return dispatch_dtype(config_.dtype, [&](auto tag) {
    std::vector<decltype(tag)> typed(q.size());
    cpu::cast(q.data(), std::int64_t(q.size()), typed.data());
    return engine.probe_selection(layer, 0, typed.data());
  });
}

void SelectionComparer::compare(int layer, std::span<const float> q, std::span<const float> q_hat) {
  require(decoder_ != nullptr, "the selection comparer follows no decoder");
  Engine& engine = decoder_->engine();
  if (engine.length(0, layer) == 0) return;
  const SelectionProbe exact = probe(engine, layer, q);
  const SelectionProbe spec = probe(engine, layer, q_hat);
  for (std::size_t h = 0; h < exact.per_head.size(); ++h) {
    const Overlap o = selection_overlap(exact.per_head[h], spec.per_head[h], exact.ranked_begin, exact.ranked_end);
    per_layer_[std::size_t(layer)].found += o.found;
    per_layer_[std::size_t(layer)].wanted += o.wanted;
  }
}

SpeculativeAccuracy measure_speculative_accuracy(const WeightSource& weights, DecoderOptions options,
                                                 std::span<const std::int32_t> tokens, std::int64_t steps) {
  const auto n = std::int64_t(tokens.size());
  require(steps >= 1 && steps < n, "decode steps must be in [1, ", n - 1, "] for a window of ", n,
          " tokens, got ", steps);
  require(options.engine.backend == Backend::cpu, "the speculative-selection measurement runs on the cpu backend");
  require(options.engine.batch == 1 && options.engine.capacity >= n, "the measurement needs one sequence of ",
          "capacity at least ", n, " tokens, the options give ", options.engine.batch, " of ",
          options.engine.capacity);
  options.engine.shape = weights.config().attention();
  options.engine.policy = Policy::ds_offload;
  SelectionComparer comparer(options.engine);
  options.decode_observer = comparer.decode_observer();
  const auto speculative = make_decoder(weights, options);
  comparer.follow(*speculative);
  options.decode_observer = {};
  options.engine.policy = Policy::ds_offload_sync;
  const auto exact = make_decoder(weights, options);

  const std::span<const std::int32_t> prompt = tokens.first(std::size_t(n - steps));
  speculative->prefill(0, prompt);
  exact->prefill(0, prompt);
  SpeculativeAccuracy result;
  for (std::int64_t t = n - steps; t < n; ++t) {
    const std::int32_t input[1] = {tokens[std::size_t(t)]};
    speculative->decode(input);
    exact->decode(input);
    if (speculative->greedy_tokens()[0] == exact->greedy_tokens()[0]) ++result.greedy_agreements;
    ++result.steps;
  }
  result.per_layer = comparer.per_layer();
  return result;
}

}  // namespace dso
