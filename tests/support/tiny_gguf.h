#pragma once
// GGUF files of a model's weights as llama.cpp's converter writes them: every
// head's Q and K rows reordered so that RoPE pairs sit side by side (row
// 2i + j of a head holds HF row j * d/2 + i), f32 tensors. With a tokenizer,
// the tool can run such a file as a user would.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "model/llama_config.h"
#include "model/weight_source.h"
#include "support/gguf_writer.h"

namespace dso::test {

struct TinyGguf {
  bool with_output = true;                // output.weight present; otherwise the head is tied to the embedding
  const LlamaConfig* metadata = nullptr;  // the config the metadata describes; the weights' own by default
  int tokenizer_tokens = 0;               // a byte-level tokenizer of this many tokens (at least 256); 0: none
  // Sees every tensor's values (by GGUF name, in the file's layout) before they are written.
  std::function<void(const std::string& tensor, std::vector<float>& values)> edit;
};

GgufWriter tiny_gguf_writer(const WeightSource& hf, const TinyGguf& how = {});

inline std::vector<std::byte> tiny_gguf(const WeightSource& hf, bool with_output,
                                        const LlamaConfig* metadata = nullptr) {
  return tiny_gguf_writer(hf, {with_output, metadata, 0, {}}).build();
}

// A config for files the tool runs: tiny_llama_config()'s shape with a vocabulary of 258 tokens (256 bytes, two more).
LlamaConfig tiny_tool_config();

}  // namespace dso::test
