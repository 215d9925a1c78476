#include "model/llama_config.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "core/printable.h"
#include "model/gguf.h"

namespace dso {
namespace {

int read_count(const GgufFile& file, const std::string& key) {
  const auto v = file.get<std::uint64_t>(key);
  file.check(v <= std::uint64_t(std::numeric_limits<int>::max()), "'", key, "' is ", v, ", too large");
  return int(v);
}

}  // namespace

void LlamaConfig::validate() const {
  const std::string who = name.empty() ? std::string("model config") : concat("model config '", name, "'");
  require(layers > 0, who, ": block count is ", layers, ", must be positive");
  require(q_heads > 0 && kv_heads > 0, who, ": head counts must be positive (q_heads=", q_heads, ", kv_heads=",
          kv_heads, ")");
  require(q_heads % kv_heads == 0, who, ": q_heads (", q_heads, ") is not a multiple of kv_heads (", kv_heads, ")");
  require(head_dim > 0 && head_dim % 2 == 0, who, ": head_dim is ", head_dim, ", must be positive and even for RoPE");
  require(hidden > 0, who, ": embedding length is ", hidden, ", must be positive");
  require(std::int64_t(q_heads) * head_dim == hidden, who, ": q_heads x head_dim = ", q_heads, " x ", head_dim, " = ",
          std::int64_t(q_heads) * head_dim, " differs from the embedding length ", hidden);
  require(ffn_hidden > 0, who, ": feed-forward length is ", ffn_hidden, ", must be positive");
  require(vocab_size > 0, who, ": vocabulary size is ", vocab_size, ", must be positive");
  require(context_length > 0, who, ": context length is ", context_length, ", must be positive");
  require(std::isfinite(rope_theta) && rope_theta > 0, who, ": RoPE base is ", rope_theta, ", must be positive");
  require(std::isfinite(rms_eps) && rms_eps > 0, who, ": RMS-norm epsilon is ", rms_eps, ", must be positive");
}

LlamaConfig llama_config_from_gguf(const GgufFile& file) {
  const std::string_view arch = file.get<std::string_view>("general.architecture");
  file.check(arch == "llama", "general.architecture is ", in_quotes(arch), ", only 'llama' is supported");
  const std::string p = "llama.";
  LlamaConfig c;
  c.name = std::string(file.get_or<std::string_view>("general.name", "llama"));
  c.layers = read_count(file, p + "block_count");
  c.hidden = read_count(file, p + "embedding_length");
  c.ffn_hidden = read_count(file, p + "feed_forward_length");
  c.q_heads = read_count(file, p + "attention.head_count");
  file.check(c.q_heads > 0, p, "attention.head_count is 0");
  c.kv_heads = file.has(p + "attention.head_count_kv") ? read_count(file, p + "attention.head_count_kv") : c.q_heads;
  c.head_dim = file.has(p + "attention.key_length") ? read_count(file, p + "attention.key_length") : c.hidden / c.q_heads;
  c.context_length = read_count(file, p + "context_length");
  c.rope_theta = file.get_or<float>(p + "rope.freq_base", 10000.0f);
  c.rms_eps = file.get<float>(p + "attention.layer_norm_rms_epsilon");
  // A token list of another length than the embedding's rows would fail only
  // when generation reaches an id one of them lacks.
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  if (tokens) file.check(tokens->count <= std::uint64_t(std::numeric_limits<int>::max()), "the token list is too long");
  if (file.has(p + "vocab_size")) {
    c.vocab_size = read_count(file, p + "vocab_size");
    file.check(!tokens || tokens->count == std::uint64_t(c.vocab_size), p, "vocab_size is ", c.vocab_size,
               ", but tokenizer.ggml.tokens lists ", tokens ? tokens->count : 0, " tokens");
  } else {
    file.check(tokens != nullptr, "lacks the required key 'tokenizer.ggml.tokens' (or '", p, "vocab_size')");
    c.vocab_size = int(tokens->count);
  }
  if (file.has(p + "rope.dimension_count")) {
    const int rope_dims = read_count(file, p + "rope.dimension_count");
    file.check(rope_dims == c.head_dim, p, "rope.dimension_count (", rope_dims, ") differs from head_dim (",
               c.head_dim, "): partial RoPE is not supported");
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail("GGUF file '", file.name(), "': ", e.what());
  }
  return c;
}

std::vector<std::string_view> builtin_llama_config_names() { return {"llama-2-7b", "llama-3-8b"}; }

LlamaConfig builtin_llama_config(std::string_view name) {
  LlamaConfig c;
  c.name = std::string(name);
  c.layers = 32;
  c.q_heads = 32;
  c.head_dim = 128;
  c.hidden = 4096;
  c.rms_eps = 1e-5f;
  if (name == "llama-2-7b") {
    c.kv_heads = 32;
    c.ffn_hidden = 11008;
    c.vocab_size = 32000;
    c.context_length = 4096;
    c.rope_theta = 10000.0f;
  } else if (name == "llama-3-8b") {
    c.kv_heads = 8;
    c.ffn_hidden = 14336;
    c.vocab_size = 128256;
    c.context_length = 8192;
    c.rope_theta = 500000.0f;
  } else {
    std::string names;
    for (std::string_view n : builtin_llama_config_names()) names += concat(names.empty() ? "" : ", ", n);
    fail("unknown model shape '", name, "' (built-in shapes: ", names, ")");
  }
  c.validate();
  return c;
}

}  // namespace dso
