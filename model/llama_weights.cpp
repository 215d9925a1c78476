#include "model/llama_weights.h"

#include "core/checked_math.h"
#include "core/error.h"

namespace dso {

std::vector<float>& LayerWeights::of(WeightKind kind) {
  switch (kind) {
    case WeightKind::attn_norm: return attn_norm;
    case WeightKind::wq: return wq;
    case WeightKind::wk: return wk;
    case WeightKind::wv: return wv;
    case WeightKind::wo: return wo;
    case WeightKind::ffn_norm: return ffn_norm;
    case WeightKind::w_gate: return w_gate;
    case WeightKind::w_up: return w_up;
    case WeightKind::w_down: return w_down;
    default: break;
  }
  fail("weight ", weight_name(kind), " is not a per-layer weight");
}

std::int64_t llama_weight_count(const LlamaConfig& config, bool tied_lm_head) {
  std::int64_t per_layer = 0;
  for (WeightKind kind : layer_weight_kinds)
    per_layer = checked_sum("the weight count", per_layer, weight_shape(config, kind).size());
  std::int64_t total = checked_product("the weight count", per_layer, std::int64_t(config.layers));
  for (WeightKind kind : {WeightKind::token_embedding, WeightKind::final_norm, WeightKind::lm_head})
    if (kind != WeightKind::lm_head || !tied_lm_head)
      total = checked_sum("the weight count", total, weight_shape(config, kind).size());
  return total;
}

void round_to_dtype(std::span<float> x, DType type) {
  dispatch_dtype(type, [&](auto tag) {
    using T = decltype(tag);
    for (float& v : x) v = to_float(from_float<T>(v));
  });
}

LlamaWeights load_llama_weights(const WeightSource& source, std::optional<DType> round_to) {
  const LlamaConfig& config = source.config();
  const auto read = [&](WeightKind kind, int layer) {
    std::vector<float> w(std::size_t(weight_shape(config, kind).size()));
    source.read(kind, layer, w);
    if (round_to) round_to_dtype(w, *round_to);
    return w;
  };
  LlamaWeights weights;
  weights.config = config;
  weights.dummy = source.is_dummy();
  weights.token_embedding = read(WeightKind::token_embedding, 0);
  weights.final_norm = read(WeightKind::final_norm, 0);
  if (!source.tied_lm_head()) weights.lm_head = read(WeightKind::lm_head, 0);
  weights.layers.resize(std::size_t(config.layers));
  for (int layer = 0; layer < config.layers; ++layer)
    for (WeightKind kind : layer_weight_kinds) weights.layers[std::size_t(layer)].of(kind) = read(kind, layer);
  return weights;
}

}  // namespace dso
