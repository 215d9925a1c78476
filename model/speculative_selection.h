#pragma once
// How well ds_offload's speculative selection stands in for the exact one
// (ds_offload, docs/architecture.md). At every decode step and every layer i >= 1,
// the top-k tokens chosen per KV head with the speculative query q̂_i (made
// during layer i - 1 from its normalised input) are compared with those the
// true query q_i chooses over the same cached tokens; and two decoders, one
// selecting speculatively (ds_offload) and one exactly (ds_offload_sync), are
// run teacher-forced side by side to count how often their greedy tokens agree.
#include <cstdint>
#include <span>
#include <vector>

#include "model/decoder.h"
#include "model/weight_source.h"

namespace dso {

// Of the tokens in `exact` at positions [first, last), how many `spec` holds
// too. Both ascending, as select_topk writes them.
struct Overlap {
  std::int64_t found = 0;
  std::int64_t wanted = 0;
};
Overlap selection_overlap(std::span<const std::int32_t> exact, std::span<const std::int32_t> spec,
                          std::int64_t first, std::int64_t last);

// At each decode step of a ds_offload decoder, asks its engine which tokens
// the true query and the speculative one select at every layer
// (Engine::probe_selection), over the same cached tokens. Only the top-k
// picks count: the sink and recent tokens are in both selections by
// construction.
class SelectionComparer {
 public:
  explicit SelectionComparer(const EngineConfig& config);

  // For DecoderOptions; the comparer must outlive the decoder, and follow()
  // it before its first decode step.
  DecodeObserver decode_observer();
  void follow(Decoder& decoder) { decoder_ = &decoder; }

  // Per layer: the top-k picks of the exact query the speculative one found,
  // summed over steps and KV heads. Layer 0 (and any layer without a
  // speculative query) stays at zero.
  const std::vector<Overlap>& per_layer() const { return per_layer_; }

 private:
  void on_decode(const DecodeActivations& a);
  void compare(int layer, std::span<const float> q, std::span<const float> q_hat);
  // The engine's selection for a query the observer saw in fp32.
  SelectionProbe probe(Engine& engine, int layer, std::span<const float> q);

  EngineConfig config_;
  Decoder* decoder_ = nullptr;
  std::vector<std::vector<float>> q_hat_;  // [layer]: speculative query from the layer before, if any
  std::vector<Overlap> per_layer_;
};

struct SpeculativeAccuracy {
  std::vector<Overlap> per_layer;     // [layer]
  std::int64_t steps = 0;             // teacher-forced decode steps
  std::int64_t greedy_agreements = 0;  // steps where ds_offload and ds_offload_sync chose the same token
};

// tokens: the whole window; its first tokens.size() - steps are prefilled,
// the rest decoded one by one. `options` names the budget, the label
// channels and the dtype, on the cpu backend, for one sequence of capacity at
// least tokens.size(); its policy is set to ds_offload, then ds_offload_sync.
SpeculativeAccuracy measure_speculative_accuracy(const WeightSource& weights, DecoderOptions options,
                                                 std::span<const std::int32_t> tokens, std::int64_t steps);

}  // namespace dso
