#include "support/tiny_gguf.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "model/byte_unicode.h"
#include "support/tiny_llama.h"

namespace dso::test {

namespace {

// 256 byte tokens (each byte alone, no merges), then control tokens; the last is end-of-sequence.
void add_byte_tokenizer(GgufWriter& w, int count) {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  for (int i = 0; i < count; ++i) {
    tokens.push_back(i < 256 ? std::string(byte_to_unicode(std::uint8_t(i))) : "<|control" + std::to_string(i) + "|>");
    types.push_back(i < 256 ? 1 : 3);
  }
  w.string("tokenizer.ggml.model", "gpt2");
  w.string("tokenizer.ggml.pre", "smollm");
  w.strings("tokenizer.ggml.tokens", tokens);
  w.array("tokenizer.ggml.token_type", types);
  w.strings("tokenizer.ggml.merges", {});
  w.scalar<std::uint32_t>("tokenizer.ggml.eos_token_id", std::uint32_t(count - 1));
}

}  // namespace

GgufWriter tiny_gguf_writer(const WeightSource& hf, const TinyGguf& how) {
  const LlamaConfig& c = hf.config();
  const LlamaConfig& m = how.metadata ? *how.metadata : c;
  GgufWriter w;
  w.string("general.architecture", "llama");
  w.string("general.name", "tiny");
  w.scalar<std::uint32_t>("llama.block_count", std::uint32_t(m.layers));
  w.scalar<std::uint32_t>("llama.context_length", std::uint32_t(m.context_length));
  w.scalar<std::uint32_t>("llama.embedding_length", std::uint32_t(m.hidden));
  w.scalar<std::uint32_t>("llama.feed_forward_length", std::uint32_t(m.ffn_hidden));
  w.scalar<std::uint32_t>("llama.attention.head_count", std::uint32_t(m.q_heads));
  w.scalar<std::uint32_t>("llama.attention.head_count_kv", std::uint32_t(m.kv_heads));
  w.scalar<float>("llama.rope.freq_base", m.rope_theta);
  w.scalar<float>("llama.attention.layer_norm_rms_epsilon", m.rms_eps);
  w.scalar<std::uint32_t>("llama.vocab_size", std::uint32_t(m.vocab_size));
  if (how.tokenizer_tokens > 0) add_byte_tokenizer(w, how.tokenizer_tokens);
  const auto add = [&](WeightKind kind, int layer, const std::string& name) {
    const WeightShape s = weight_shape(c, kind);
    std::vector<float> values(std::size_t(s.size()));
    hf.read(kind, layer, values);
    if (kind == WeightKind::wq || kind == WeightKind::wk) {
      const std::vector<float> hf_rows = values;
      const int d = c.head_dim;
      for (std::int64_t row = 0; row < s.rows; ++row) {
        const std::int64_t head = row / d, g = row % d, i = g / 2, j = g % 2;
        const std::int64_t from = head * d + j * (d / 2) + i;
        std::copy_n(hf_rows.begin() + from * s.cols, s.cols, values.begin() + row * s.cols);
      }
    }
    if (how.edit) how.edit(name, values);
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    const std::vector<std::int64_t> dims = is_norm_weight(kind) ? std::vector<std::int64_t>{s.cols}
                                                                 : std::vector<std::int64_t>{s.cols, s.rows};
    w.tensor(name, dims, TensorType::f32, std::move(bytes));
  };
  add(WeightKind::token_embedding, 0, "token_embd.weight");
  add(WeightKind::final_norm, 0, "output_norm.weight");
  if (how.with_output) add(WeightKind::lm_head, 0, "output.weight");
  for (int l = 0; l < c.layers; ++l)
    for (WeightKind kind : layer_weight_kinds)
      add(kind, l, "blk." + std::to_string(l) + "." + std::string(weight_name(kind)) + ".weight");
  return w;
}

LlamaConfig tiny_tool_config() {
  LlamaConfig c = tiny_llama_config();
  c.vocab_size = 258;
  return c;
}

}  // namespace dso::test
