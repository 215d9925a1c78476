#pragma once
// The hyper-parameters of a Llama-family decoder: read from a GGUF file's
// metadata, or one of the built-in shapes that benchmarks run with dummy
// weights (docs/architecture.md, the benchmark protocol).
#include <string>
#include <string_view>
#include <vector>

#include "core/shape.h"

namespace dso {

class GgufFile;

struct LlamaConfig {
  std::string name;
  int layers = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int hidden = 0;          // embedding width
  int ffn_hidden = 0;      // width of the SwiGLU feed-forward layer
  int vocab_size = 0;
  int context_length = 0;  // the longest context the model was trained for
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;

  AttentionShape attention() const { return {layers, q_heads, kv_heads, head_dim}; }

  // Throws dso::Error naming the first inconsistent field.
  void validate() const;
};

// Reads `<arch>.*` keys of a file whose general.architecture is "llama";
// head_dim is embedding_length / head_count (or attention.key_length when
// present), vocab_size is llama.vocab_size or else the token list's length.
LlamaConfig llama_config_from_gguf(const GgufFile& file);

// "llama-2-7b" or "llama-3-8b"; throws dso::Error listing the names otherwise.
LlamaConfig builtin_llama_config(std::string_view name);
std::vector<std::string_view> builtin_llama_config_names();

}  // namespace dso
