#include "model/speculative_selection.h"

#include <algorithm>

#include "core/error.h"
#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "offload/policy_rules.h"

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
    : config_(config),
      keys_(std::size_t(config.shape.layers)),
      length_(std::size_t(config.shape.layers), 0),
      q_hat_(std::size_t(config.shape.layers)),
      per_layer_(std::size_t(config.shape.layers)) {
  require(config.batch == 1, "the selection comparer follows one sequence, the engine has ", config.batch);
  config.channels.validate(config.shape);
  const std::int64_t per_layer = std::int64_t(config.shape.kv_heads) * config.capacity * config.shape.head_dim;
  for (auto& k : keys_) k.resize(std::size_t(per_layer));
  labels_.resize(std::size_t(config.capacity) * std::size_t(config.channels.r));
  exact_scores_.resize(std::size_t(config.capacity));
  spec_scores_.resize(exact_scores_.size());
  exact_.resize(exact_scores_.size());
  spec_.resize(exact_scores_.size());
}

PrefillObserver SelectionComparer::prefill_observer() {
  return [this](const PrefillActivations& a) { on_prefill(a); };
}

DecodeObserver SelectionComparer::decode_observer() {
  return [this](const DecodeActivations& a) { on_decode(a); };
}

void SelectionComparer::on_prefill(const PrefillActivations& a) {
  const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
  auto& length = length_[std::size_t(a.layer)];
  require(a.first == length && length + a.tokens <= config_.capacity, "prefill chunk of layer ", a.layer,
          " at tokens ", a.first, "..", a.first + a.tokens, " does not follow the ", length, " tokens held");
  for (std::int64_t t = 0; t < a.tokens; ++t)
    for (int h = 0; h < heads; ++h)
      std::copy_n(a.k.data() + (t * heads + h) * d, d,
                  keys_[std::size_t(a.layer)].data() + ((h * config_.capacity) + length + t) * d);
  length += a.tokens;
}

void SelectionComparer::on_decode(const DecodeActivations& a) {
  const auto l = std::size_t(a.layer);
  const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
  if (!q_hat_[l].empty()) compare(a.layer, a.q, q_hat_[l]);
  if (l + 1 < q_hat_.size()) q_hat_[l + 1].assign(a.q_next.begin(), a.q_next.end());
  require(length_[l] < config_.capacity, "decode past the capacity of ", config_.capacity, " tokens");
  for (int h = 0; h < heads; ++h)
    std::copy_n(a.k_new.data() + h * d, d, keys_[l].data() + (h * config_.capacity + length_[l]) * d);
  ++length_[l];
}

void SelectionComparer::compare(int layer, std::span<const float> q, std::span<const float> q_hat) {
  const AttentionShape& s = config_.shape;
  const int d = s.head_dim, group = s.group();
  const std::int64_t n = length_[std::size_t(layer)];
  if (n == 0) return;
  const TokenBudget budget = budget_at(config_, n);
  const std::int64_t first = std::min(n, budget.sink), last = window_begin(n, budget);
  for (int h = 0; h < s.kv_heads; ++h) {
    const std::span<const int> channels = config_.channels.of(layer, h);
    cpu::gather_labels(keys_[std::size_t(layer)].data() + std::int64_t(h) * config_.capacity * d, n, d, channels,
                       labels_.data());
    const std::int64_t q_at = std::int64_t(h) * group * d;
    cpu::score_labels(q.data() + q_at, group, d, channels, labels_.data(), n, exact_scores_.data());
    cpu::score_labels(q_hat.data() + q_at, group, d, channels, labels_.data(), n, spec_scores_.data());
    const std::int64_t picked = cpu::select_topk(exact_scores_.data(), n, budget, exact_.data());
    cpu::select_topk(spec_scores_.data(), n, budget, spec_.data());
    const Overlap o = selection_overlap({exact_.data(), std::size_t(picked)}, {spec_.data(), std::size_t(picked)},
                                        first, last);
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
  options.prefill_observer = comparer.prefill_observer();
  options.decode_observer = comparer.decode_observer();
  const auto speculative = make_decoder(weights, options);
  options.prefill_observer = {};
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
