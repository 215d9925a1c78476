#pragma once
// A whole model's weights in host memory, as the CPU decoder reads them:
// float, HF layout, each tensor [rows][cols] as weight_shape() says.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "model/weight_source.h"

namespace dso {

struct LayerWeights {
  std::vector<float> attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;

  std::vector<float>& of(WeightKind kind);
};

struct LlamaWeights {
  LlamaConfig config;
  bool dummy = false;
  std::vector<float> token_embedding;
  std::vector<float> final_norm;
  std::vector<float> lm_head;  // empty when tied to the embedding
  std::vector<LayerWeights> layers;

  std::span<const float> output_head() const { return lm_head.empty() ? token_embedding : lm_head; }
};

// Elements of every tensor a decoder holds, the LM head once when tied.
std::int64_t llama_weight_count(const LlamaConfig& config, bool tied_lm_head);

// Reads every tensor of `source`. With `round_to`, each value is rounded to
// that 16-bit type (and kept as a float): the weights the GPU decoder holds.
LlamaWeights load_llama_weights(const WeightSource& source, std::optional<DType> round_to = std::nullopt);

// Rounds each value to `type` in place (float storage, 16-bit values).
void round_to_dtype(std::span<float> x, DType type);

}  // namespace dso
