#include "model/weight_source.h"

#include "core/error.h"

namespace dso {

WeightShape weight_shape(const LlamaConfig& c, WeightKind kind) {
  const std::int64_t q_dim = std::int64_t(c.q_heads) * c.head_dim, kv_dim = std::int64_t(c.kv_heads) * c.head_dim;
  switch (kind) {
    case WeightKind::token_embedding:
    case WeightKind::lm_head: return {c.vocab_size, c.hidden};
    case WeightKind::attn_norm:
    case WeightKind::ffn_norm:
    case WeightKind::final_norm: return {1, c.hidden};
    case WeightKind::wq: return {q_dim, c.hidden};
    case WeightKind::wk:
    case WeightKind::wv: return {kv_dim, c.hidden};
    case WeightKind::wo: return {c.hidden, q_dim};
    case WeightKind::w_gate:
    case WeightKind::w_up: return {c.ffn_hidden, c.hidden};
    case WeightKind::w_down: return {c.hidden, c.ffn_hidden};
  }
  fail("unknown weight kind ", int(kind));
}

bool is_layer_weight(WeightKind kind) {
  return kind != WeightKind::token_embedding && kind != WeightKind::final_norm && kind != WeightKind::lm_head;
}

bool is_norm_weight(WeightKind kind) {
  return kind == WeightKind::attn_norm || kind == WeightKind::ffn_norm || kind == WeightKind::final_norm;
}

std::string_view weight_name(WeightKind kind) {
  switch (kind) {
    case WeightKind::token_embedding: return "token_embd";
    case WeightKind::attn_norm: return "attn_norm";
    case WeightKind::wq: return "attn_q";
    case WeightKind::wk: return "attn_k";
    case WeightKind::wv: return "attn_v";
    case WeightKind::wo: return "attn_output";
    case WeightKind::ffn_norm: return "ffn_norm";
    case WeightKind::w_gate: return "ffn_gate";
    case WeightKind::w_up: return "ffn_up";
    case WeightKind::w_down: return "ffn_down";
    case WeightKind::final_norm: return "output_norm";
    case WeightKind::lm_head: return "output";
  }
  return "unknown";
}

void check_weight_read(const LlamaConfig& config, WeightKind kind, int layer, std::span<float> out) {
  if (is_layer_weight(kind))
    require(layer >= 0 && layer < config.layers, "weight ", weight_name(kind), " of layer ", layer,
            ": the model has ", config.layers, " layers");
  const std::int64_t size = weight_shape(config, kind).size();
  require(std::int64_t(out.size()) == size, "weight ", weight_name(kind), " has ", size,
          " elements, the buffer given holds ", out.size());
}

}  // namespace dso
