#pragma once
// Where a decoder's weights come from: a GGUF file (gguf_weights.h) or seeded
// random numbers for speed runs of the built-in shapes (dummy_weights.h). Both
// hand out each tensor as floats in the Hugging Face layout, so the decoders,
// the label channels and channel configs all number Q/K channels the HF way
// (core/rope.h).
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "model/dummy_weights.h"
#include "model/llama_config.h"

namespace dso {

enum class WeightKind : std::uint8_t {
  token_embedding,
  attn_norm,
  wq,
  wk,
  wv,
  wo,
  ffn_norm,
  w_gate,
  w_up,
  w_down,
  final_norm,
  lm_head,
};

inline constexpr WeightKind layer_weight_kinds[] = {WeightKind::attn_norm, WeightKind::wq,     WeightKind::wk,
                                                    WeightKind::wv,        WeightKind::wo,     WeightKind::ffn_norm,
                                                    WeightKind::w_gate,    WeightKind::w_up,   WeightKind::w_down};

// A tensor is [rows][cols], row-major: projections [out_features][in_features],
// norms [1][width], the embedding and the LM head [vocab][hidden].
struct WeightShape {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t size() const { return rows * cols; }
};

WeightShape weight_shape(const LlamaConfig& config, WeightKind kind);
bool is_layer_weight(WeightKind kind);
bool is_norm_weight(WeightKind kind);
std::string_view weight_name(WeightKind kind);  // "attn_q", as messages name it

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const LlamaConfig& config() const = 0;
  // Random weights: every output says "weights": "dummy".
  virtual bool is_dummy() const = 0;
  // The LM head is the token embedding (a GGUF file without output.weight).
  virtual bool tied_lm_head() const = 0;
  // Tensor `kind` (of `layer`, for per-layer tensors) into out, which holds
  // weight_shape(config(), kind).size() floats.
  virtual void read(WeightKind kind, int layer, std::span<float> out) const = 0;
  // How to make a dummy tensor where it is used (on the GPU) instead of
  // reading it; nothing for real weights.
  virtual std::optional<DummyRecipe> recipe(WeightKind, int) const { return std::nullopt; }
};

// Checks a read() call's arguments; for implementations.
void check_weight_read(const LlamaConfig& config, WeightKind kind, int layer, std::span<float> out);

}  // namespace dso
