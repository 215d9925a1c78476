#pragma once
// A tiny Llama-family model for decoder tests: two layers, grouped-query
// attention (4 query heads over 2 KV heads), head_dim 16 (64 for the cuda
// backend, whose kernels take head_dim 64 or 128), a feed-forward width
// that is no multiple of 8, and a 50-token vocabulary, with seeded dummy
// weights; and the decoder options that run it.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/label_channels.h"
#include "model/decoder.h"
#include "model/llama_config.h"

namespace dso::test {

inline LlamaConfig tiny_llama_config(int head_dim = 16) {
  LlamaConfig c;
  c.name = "tiny";
  c.layers = 2;
  c.q_heads = 4;
  c.kv_heads = 2;
  c.head_dim = head_dim;
  c.hidden = c.q_heads * head_dim;
  c.ffn_hidden = 100;
  c.vocab_size = 50;
  c.context_length = 256;
  c.rope_theta = 10000.0f;
  c.rms_eps = 1e-5f;
  return c;
}

inline std::vector<std::int32_t> random_tokens(std::size_t n, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> out(n);
  for (auto& t : out) t = std::int32_t(rng() % std::uint64_t(vocab));
  return out;
}

// r distinct random channels for every (layer, KV head).
inline LabelChannels random_channels(const AttentionShape& shape, int r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  LabelChannels lc{shape.layers, shape.kv_heads, r, {}};
  for (int i = 0; i < shape.layers * shape.kv_heads; ++i) {
    std::vector<int> all(std::size_t(shape.head_dim));
    for (int c = 0; c < shape.head_dim; ++c) all[std::size_t(c)] = c;
    std::shuffle(all.begin(), all.end(), rng);
    lc.index.insert(lc.index.end(), all.begin(), all.begin() + r);
  }
  return lc;
}

inline DecoderOptions decoder_options(Policy policy, DType dtype, int batch, std::int64_t capacity,
                                      Backend backend = Backend::cpu) {
  DecoderOptions o;
  o.engine.policy = policy;
  o.engine.dtype = dtype;
  o.engine.backend = backend;
  o.engine.batch = batch;
  o.engine.capacity = capacity;
  return o;
}

}  // namespace dso::test
