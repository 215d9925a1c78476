// Model configuration from GGUF metadata, its validation, and the built-in
// benchmark shapes.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "model/gguf.h"
#include "model/llama_config.h"
#include "support/gguf_writer.h"

namespace dso {
namespace {

using test::GgufWriter;

struct Fields {
  std::uint32_t layers, q_heads, kv_heads, head_dim, ffn, vocab, context;
  float theta, eps;
};

Fields random_fields(std::mt19937& rng) {
  Fields f{};
  f.layers = 1 + rng() % 40;
  f.kv_heads = 1 + rng() % 8;
  f.q_heads = f.kv_heads * (1 + rng() % 4);
  f.head_dim = 2 * (1 + rng() % 64);
  f.ffn = 1 + rng() % 20000;
  f.vocab = 1 + rng() % 200000;
  f.context = 1 + rng() % 1000000;
  f.theta = 1000.0f + float(rng() % 1000000);
  f.eps = 1e-6f * float(1 + rng() % 10);
  return f;
}

// The keys llama.cpp's converter writes for a Llama model.
GgufWriter llama_file(const Fields& f) {
  GgufWriter w;
  w.string("general.architecture", "llama");
  w.string("general.name", "test model");
  w.scalar("llama.block_count", f.layers);
  w.scalar("llama.context_length", f.context);
  w.scalar("llama.embedding_length", f.q_heads * f.head_dim);
  w.scalar("llama.feed_forward_length", f.ffn);
  w.scalar("llama.attention.head_count", f.q_heads);
  w.scalar("llama.attention.head_count_kv", f.kv_heads);
  w.scalar("llama.rope.freq_base", f.theta);
  w.scalar("llama.attention.layer_norm_rms_epsilon", f.eps);
  w.scalar("llama.vocab_size", f.vocab);
  w.scalar("llama.rope.dimension_count", f.head_dim);
  return w;
}

std::string config_error(GgufWriter w) {
  try {
    llama_config_from_gguf(GgufFile::parse(w.build(), "config.gguf"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LlamaConfig, ReadsTheLlamaKeys) {
  for (unsigned seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const Fields f = random_fields(rng);
    const LlamaConfig c = llama_config_from_gguf(GgufFile::parse(llama_file(f).build(), "config.gguf"));
    EXPECT_EQ(c.name, "test model");
    EXPECT_EQ(c.layers, int(f.layers));
    EXPECT_EQ(c.q_heads, int(f.q_heads));
    EXPECT_EQ(c.kv_heads, int(f.kv_heads));
    EXPECT_EQ(c.head_dim, int(f.head_dim));
    EXPECT_EQ(c.hidden, int(f.q_heads * f.head_dim));
    EXPECT_EQ(c.ffn_hidden, int(f.ffn));
    EXPECT_EQ(c.vocab_size, int(f.vocab));
    EXPECT_EQ(c.context_length, int(f.context));
    EXPECT_EQ(c.rope_theta, f.theta);
    EXPECT_EQ(c.rms_eps, f.eps);
    const AttentionShape s = c.attention();
    EXPECT_EQ(s.layers, c.layers);
    EXPECT_EQ(s.group(), int(f.q_heads / f.kv_heads));
  }
}

TEST(LlamaConfig, FillsOptionalKeysAsLlamaCppDoes) {
  std::mt19937 rng(5);
  const Fields f = random_fields(rng);
  GgufWriter w;
  w.string("general.architecture", "llama");
  w.scalar("llama.block_count", f.layers);
  w.scalar("llama.context_length", f.context);
  w.scalar("llama.embedding_length", f.q_heads * f.head_dim);
  w.scalar("llama.feed_forward_length", f.ffn);
  w.scalar("llama.attention.head_count", f.q_heads);
  w.scalar("llama.attention.layer_norm_rms_epsilon", f.eps);
  w.strings("tokenizer.ggml.tokens", {"a", "b", "c"});
  const LlamaConfig c = llama_config_from_gguf(GgufFile::parse(w.build(), "config.gguf"));
  EXPECT_EQ(c.kv_heads, c.q_heads);   // no head_count_kv: plain multi-head attention
  EXPECT_EQ(c.head_dim, int(f.head_dim));
  EXPECT_EQ(c.vocab_size, 3);         // no vocab_size: the token list's length
  EXPECT_EQ(c.rope_theta, 10000.0f);  // no freq_base: Llama's default
}

TEST(LlamaConfig, RefusesInconsistentOrMissingFieldsByName) {
  std::mt19937 rng(6);
  Fields f = random_fields(rng);
  f.kv_heads = 3;
  f.q_heads = 9;

  GgufWriter gpt2;
  gpt2.string("general.architecture", "gpt2");
  EXPECT_NE(config_error(gpt2).find("only 'llama'"), std::string::npos);

  GgufWriter missing;
  missing.string("general.architecture", "llama");
  const std::string m = config_error(missing);
  EXPECT_NE(m.find("'llama.block_count'"), std::string::npos) << m;
  EXPECT_NE(m.find("config.gguf"), std::string::npos) << m;

  Fields bad_group = f;
  bad_group.kv_heads = 2;
  EXPECT_NE(config_error(llama_file(bad_group)).find("not a multiple of kv_heads"), std::string::npos);

  Fields zero_layers = f;
  zero_layers.layers = 0;
  EXPECT_NE(config_error(llama_file(zero_layers)).find("block count is 0"), std::string::npos);

  GgufWriter partial_rope = llama_file(f);
  partial_rope.scalar<std::uint32_t>("llama.attention.key_length", f.head_dim + 2);
  EXPECT_NE(config_error(partial_rope).find("partial RoPE"), std::string::npos);

  GgufWriter wrong_type = llama_file(f);
  wrong_type.string("llama.attention.layer_norm_epsilon", "x");
  EXPECT_EQ(config_error(wrong_type), "");  // keys that Llama does not read do not matter

  LlamaConfig c = llama_config_from_gguf(GgufFile::parse(llama_file(f).build(), "config.gguf"));
  c.hidden += 1;
  EXPECT_THROW(c.validate(), Error);
}

TEST(LlamaConfig, RefusesAVocabularySizeThatDisagreesWithTheTokenList) {
  std::mt19937 rng(7);
  Fields f = random_fields(rng);
  f.vocab = 3;
  GgufWriter same = llama_file(f);
  same.strings("tokenizer.ggml.tokens", {"a", "b", "c"});
  EXPECT_EQ(config_error(same), "");
  // Generation would fail only once it reached an id the token list lacks.
  GgufWriter longer = llama_file(f);
  longer.strings("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
  const std::string m = config_error(longer);
  EXPECT_NE(m.find("llama.vocab_size is 3, but tokenizer.ggml.tokens lists 4 tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("config.gguf"), std::string::npos) << m;
}

TEST(LlamaConfig, BuiltInShapesAreTheBenchmarkShapes) {
  ASSERT_EQ(builtin_llama_config_names().size(), 2u);
  for (std::string_view name : builtin_llama_config_names()) {
    const LlamaConfig c = builtin_llama_config(name);
    EXPECT_EQ(c.name, name);
    EXPECT_NO_THROW(c.validate());
    EXPECT_EQ(c.layers, 32);
    EXPECT_EQ(c.q_heads, 32);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.hidden, 4096);
  }
  const LlamaConfig l2 = builtin_llama_config("llama-2-7b");
  EXPECT_EQ(l2.attention().group(), 1);
  EXPECT_EQ(l2.ffn_hidden, 11008);
  EXPECT_EQ(l2.vocab_size, 32000);
  EXPECT_EQ(l2.rope_theta, 10000.0f);
  const LlamaConfig l3 = builtin_llama_config("llama-3-8b");
  EXPECT_EQ(l3.attention().group(), 4);
  EXPECT_EQ(l3.ffn_hidden, 14336);
  EXPECT_EQ(l3.vocab_size, 128256);
  EXPECT_EQ(l3.rope_theta, 500000.0f);

  try {
    builtin_llama_config("llama-2-70b");
    ADD_FAILURE() << "an unknown shape was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("llama-2-70b"), std::string::npos) << m;
    EXPECT_NE(m.find("llama-2-7b, llama-3-8b"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace dso
