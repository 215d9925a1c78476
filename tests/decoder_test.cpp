// The decoder's CPU path against a float64 forward pass (support/
// llama_reference.h) on a tiny random model, every policy included; prefill
// (matrix products through the BLAS, tiled attention) against decode within
// rounding, over prompts long enough for several chunks, query tiles and key
// blocks; the paths that must agree bit for bit (a full sparse budget and
// dense attention); the weight sources (dummy, and GGUF with llama.cpp's
// Q/K row order); and, when the file is present, the real SmolLM2 model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "model/decoder.h"
#include "model/dummy_weights.h"
#include "model/gguf.h"
#include "model/gguf_weights.h"
#include "model/perplexity.h"
#include "model/tokenizer.h"
#include "support/error_of.h"
#include "support/gguf_writer.h"
#include "support/llama_reference.h"
#include "support/smollm2.h"
#include "support/tiny_gguf.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

using test::ReferencePolicy;
using Selection = ReferencePolicy::Selection;

constexpr std::uint64_t kSeeds[] = {11, 12, 13};

struct TypeNames {
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Half> ? "f16" : "bf16";
  }
};
using KvTypes = ::testing::Types<Half, BFloat16>;

// Logits are O(1); the reference rounds to T where the decoder does, so what
// is left is fp32 accumulation and the rare value that rounds the other way.
template <class T>
double tolerance() {
  return std::is_same_v<T, Half> ? 2e-3 : 2e-2;
}

template <class Want>
void expect_close(const std::vector<float>& got, const std::vector<Want>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(double(got[i]) - double(want[i])) / (1.0 + std::abs(double(want[i])));
    if (!(err <= worst)) worst = err, worst_at = i;
  }
  EXPECT_LE(worst, tol) << what << ": logit " << worst_at << " is " << got[worst_at] << ", reference "
                        << want[worst_at];
}

std::string trace(std::uint64_t seed, const std::string& what) {
  return "seed " + std::to_string(seed) + ", " + what;
}

template <class T>
class DecoderTest : public ::testing::Test {
 protected:
  static constexpr DType dtype = dtype_of<T>();
};
TYPED_TEST_SUITE(DecoderTest, KvTypes, TypeNames);

TYPED_TEST(DecoderTest, DecodeOnlyMatchesFloat64Reference) {
  const LlamaConfig config = test::tiny_llama_config();
  for (std::uint64_t seed : kSeeds) {
    SCOPED_TRACE(trace(seed, "decode only"));
    const auto source = dummy_weights(config, seed);
    const auto tokens = test::random_tokens(13, config.vocab_size, seed + 100);
    const auto ref = test::reference_logits<TypeParam>(test::reference_model(*source), tokens, 0, {});
    const auto decoder = make_decoder(*source, test::decoder_options(Policy::dense_gpu, this->dtype, 1, 16));
    for (std::size_t p = 0; p < tokens.size(); ++p) {
      decoder->decode(std::span(tokens).subspan(p, 1));
      EXPECT_EQ(decoder->position(0), std::int64_t(p) + 1);
      expect_close(decoder->logits(), ref[p], tolerance<TypeParam>(), "position " + std::to_string(p));
    }
  }
}

// Prefill runs in chunks of 3, so prompts of 1, 3 and 7 tokens end a chunk
// early, exactly, and after several. Its K/V and hidden states are those of
// decode up to rounding: a chunk's products are summed in the BLAS's order.
TYPED_TEST(DecoderTest, PrefillThenDecodeMatchesReferenceAndDecodeOnly) {
  const LlamaConfig config = test::tiny_llama_config();
  for (std::uint64_t seed : kSeeds) {
    const auto source = dummy_weights(config, seed);
    const auto tokens = test::random_tokens(12, config.vocab_size, seed + 200);
    const auto ref = test::reference_logits<TypeParam>(test::reference_model(*source), tokens, 0, {});
    DecoderOptions options = test::decoder_options(Policy::dense_gpu, this->dtype, 1, 12);
    options.prefill_chunk = 3;
    const auto decode_only = make_decoder(*source, options);
    std::vector<std::vector<float>> decoded;
    for (std::size_t p = 0; p < tokens.size(); ++p) {
      decode_only->decode(std::span(tokens).subspan(p, 1));
      decoded.push_back(decode_only->logits());
    }
    for (std::size_t prompt : {1, 3, 7, 11}) {
      SCOPED_TRACE(trace(seed, "prefill of " + std::to_string(prompt)));
      const auto decoder = make_decoder(*source, options);
      decoder->prefill(0, std::span(tokens).first(prompt));
      EXPECT_EQ(decoder->position(0), std::int64_t(prompt));
      for (std::size_t p = prompt; p < tokens.size(); ++p) {
        decoder->decode(std::span(tokens).subspan(p, 1));
        const std::vector<float> logits = decoder->logits();
        expect_close(logits, ref[p], tolerance<TypeParam>(), "position " + std::to_string(p));
        expect_close(logits, decoded[p], tolerance<TypeParam>(), "decode only, position " + std::to_string(p));
      }
    }
  }
}

// A prompt of 530 tokens in chunks of 200: chunks ending inside a 32-query
// tile of the prefill attention, queries past its first 256-key block, tiles
// spread over threads; the decode steps after it match float64.
TYPED_TEST(DecoderTest, LongPrefillOverSeveralChunksAndThreadsMatchesReference) {
  LlamaConfig config = test::tiny_llama_config();
  config.context_length = 1024;
  constexpr std::size_t prompt = 530, total = 534;
  const std::uint64_t seed = kSeeds[0];
  const auto source = dummy_weights(config, seed);
  const auto tokens = test::random_tokens(total, config.vocab_size, seed + 600);
  const auto ref = test::reference_logits<TypeParam>(test::reference_model(*source), tokens, 0, {});
  for (int threads : {1, 3}) {
    SCOPED_TRACE(trace(seed, std::to_string(threads) + " threads"));
    DecoderOptions options = test::decoder_options(Policy::dense_gpu, this->dtype, 1, total);
    options.prefill_chunk = 200;
    options.threads = threads;
    const auto decoder = make_decoder(*source, options);
    decoder->prefill(0, std::span(tokens).first(prompt));
    for (std::size_t p = prompt; p < total; ++p) {
      decoder->decode(std::span(tokens).subspan(p, 1));
      expect_close(decoder->logits(), ref[p], tolerance<TypeParam>(), "position " + std::to_string(p));
    }
  }
}

TYPED_TEST(DecoderTest, SequencesOfABatchKeepTheirOwnPositions) {
  const LlamaConfig config = test::tiny_llama_config();
  const std::size_t prompts[] = {5, 2, 0};
  constexpr std::size_t steps = 6;
  for (std::uint64_t seed : kSeeds) {
    SCOPED_TRACE(trace(seed, "batch of 3"));
    const auto source = dummy_weights(config, seed);
    const test::ReferenceModel model = test::reference_model(*source);
    const auto decoder = make_decoder(*source, test::decoder_options(Policy::dense_gpu, this->dtype, 3, 16));
    std::vector<std::vector<std::int32_t>> tokens;
    std::vector<std::vector<std::vector<double>>> ref;
    for (int s = 0; s < 3; ++s) {
      tokens.push_back(test::random_tokens(prompts[s] + steps, config.vocab_size, seed * 10 + std::uint64_t(s)));
      ref.push_back(test::reference_logits<TypeParam>(model, tokens.back(), 0, {}));
      decoder->prefill(s, std::span(tokens.back()).first(prompts[s]));
    }
    for (std::size_t step = 0; step < steps; ++step) {
      std::vector<std::int32_t> next;
      for (int s = 0; s < 3; ++s) next.push_back(tokens[std::size_t(s)][prompts[s] + step]);
      decoder->decode(next);
      const std::vector<float> logits = decoder->logits();
      for (int s = 0; s < 3; ++s) {
        EXPECT_EQ(decoder->position(s), std::int64_t(prompts[s] + step + 1));
        const std::vector<float> row(logits.begin() + s * config.vocab_size, logits.begin() + (s + 1) * config.vocab_size);
        expect_close(row, ref[std::size_t(s)][prompts[s] + step], tolerance<TypeParam>(),
                     "sequence " + std::to_string(s) + " step " + std::to_string(step));
      }
    }
  }
}

// Sparse policies select 3 of up to 13 earlier tokens by label score over 4
// random channels; ds_offload selects layer 1's tokens with the speculative
// query computed from layer 0's normalised input.
TYPED_TEST(DecoderTest, EveryPolicyMatchesFloat64Selection) {
  const LlamaConfig config = test::tiny_llama_config();
  const std::pair<Policy, Selection> policies[] = {{Policy::dense_gpu, Selection::dense},
                                                   {Policy::flexgen, Selection::dense},
                                                   {Policy::ds_gpu, Selection::true_query},
                                                   {Policy::ds_offload_sync, Selection::true_query},
                                                   {Policy::ds_offload, Selection::speculative}};
  constexpr std::size_t prompt = 4;
  for (std::uint64_t seed : kSeeds) {
    const auto source = dummy_weights(config, seed);
    const test::ReferenceModel model = test::reference_model(*source);
    const auto tokens = test::random_tokens(14, config.vocab_size, seed + 300);
    const LabelChannels channels = test::random_channels(config.attention(), 4, seed + 400);
    for (const auto& [policy, selection] : policies) {
      SCOPED_TRACE(trace(seed, std::string(policy_name(policy))));
      ReferencePolicy rp;
      rp.selection = selection;
      rp.k = 3;
      rp.channels = channels;
      const auto ref = test::reference_logits<TypeParam>(model, tokens, prompt, rp);
      DecoderOptions options = test::decoder_options(policy, this->dtype, 1, 16);
      if (is_sparse(policy)) {
        options.engine.budget.k = rp.k;
        options.engine.channels = channels;
      }
      const auto decoder = make_decoder(*source, options);
      decoder->prefill(0, std::span(tokens).first(prompt));
      for (std::size_t p = prompt; p < tokens.size(); ++p) {
        decoder->decode(std::span(tokens).subspan(p, 1));
        expect_close(decoder->logits(), ref[p], tolerance<TypeParam>(), "position " + std::to_string(p));
      }
    }
  }
}

TYPED_TEST(DecoderTest, SparsePoliciesWithAFullBudgetEqualDense) {
  const LlamaConfig config = test::tiny_llama_config();
  constexpr std::int64_t capacity = 15;
  for (std::uint64_t seed : kSeeds) {
    const auto source = dummy_weights(config, seed);
    const auto tokens = test::random_tokens(std::size_t(capacity), config.vocab_size, seed + 500);
    const auto run = [&](Policy policy) {
      DecoderOptions options = test::decoder_options(policy, this->dtype, 1, capacity);
      if (is_sparse(policy)) {
        options.engine.budget.k = capacity;
        options.engine.channels = test::random_channels(config.attention(), 3, seed);
      }
      const auto decoder = make_decoder(*source, options);
      decoder->prefill(0, std::span(tokens).first(4));
      std::vector<std::vector<float>> out;
      for (std::size_t p = 4; p < tokens.size(); ++p) {
        decoder->decode(std::span(tokens).subspan(p, 1));
        out.push_back(decoder->logits());
      }
      return out;
    };
    const auto dense = run(Policy::dense_gpu);
    for (Policy p : {Policy::ds_gpu, Policy::ds_offload, Policy::ds_offload_sync}) {
      SCOPED_TRACE(trace(seed, std::string(policy_name(p))));
      EXPECT_EQ(run(p), dense);
    }
  }
}

TEST(Decoder, GreedyTokensAndLogProbsFollowTheLogits) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto source = dummy_weights(config, 21);
  const auto decoder = make_decoder(*source, test::decoder_options(Policy::dense_gpu, DType::f16, 2, 8));
  const std::vector<std::int32_t> step{3, 41};
  decoder->decode(step);
  const std::vector<float> logits = decoder->logits();
  const std::vector<std::int32_t> greedy = decoder->greedy_tokens();
  const std::vector<std::int32_t> targets{7, 0};
  const std::vector<double> lp = decoder->log_probs(targets);
  for (int s = 0; s < 2; ++s) {
    const float* row = logits.data() + s * config.vocab_size;
    EXPECT_EQ(greedy[std::size_t(s)], std::max_element(row, row + config.vocab_size) - row);
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < config.vocab_size; ++i) mx = std::max(mx, double(row[i]));
    for (int i = 0; i < config.vocab_size; ++i) sum += std::exp(double(row[i]) - mx);
    EXPECT_NEAR(lp[std::size_t(s)], double(row[targets[std::size_t(s)]]) - mx - std::log(sum), 1e-5);
  }
}

TEST(Decoder, RefusesBadCallsBeforeChangingAnything) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto source = dummy_weights(config, 31);
  const auto decoder = make_decoder(*source, test::decoder_options(Policy::dense_gpu, DType::f16, 2, 4));
  EXPECT_THROW(decoder->logits(), Error);
  EXPECT_THROW(decoder->decode(std::vector<std::int32_t>{1}), Error);       // one token for two sequences
  EXPECT_THROW(decoder->decode(std::vector<std::int32_t>{1, 50}), Error);   // outside the vocabulary
  EXPECT_THROW(decoder->prefill(0, std::vector<std::int32_t>(5, 1)), Error);  // past capacity
  EXPECT_THROW(decoder->prefill(2, std::vector<std::int32_t>{1}), Error);     // no such sequence
  EXPECT_EQ(decoder->position(0), 0);
  EXPECT_EQ(decoder->position(1), 0);
  decoder->prefill(0, std::vector<std::int32_t>{1, 2});
  EXPECT_THROW(decoder->prefill(0, std::vector<std::int32_t>{1}), Error);  // not empty
  decoder->decode(std::vector<std::int32_t>{1, 2});
  decoder->decode(std::vector<std::int32_t>{1, 2});
  EXPECT_THROW(decoder->decode(std::vector<std::int32_t>{1, 2}), Error);  // sequence 0 is full
  EXPECT_EQ(decoder->position(0), 4);
  EXPECT_EQ(decoder->position(1), 2);
  EXPECT_THROW(decoder->reset(3), Error);
  decoder->reset(1);
  EXPECT_EQ(decoder->batch(), 1);
  EXPECT_EQ(decoder->position(0), 0);
  EXPECT_THROW(decoder->logits(), Error);

  DecoderOptions wrong_shape = test::decoder_options(Policy::dense_gpu, DType::f16, 1, 4);
  wrong_shape.engine.shape = {2, 4, 4, 16};
  EXPECT_THROW(make_decoder(*source, wrong_shape), Error);
  DecoderOptions negative_threads = test::decoder_options(Policy::dense_gpu, DType::f16, 1, 4);
  negative_threads.threads = -1;
  EXPECT_THROW(make_decoder(*source, negative_threads), Error);
  // A sparse policy needs label channels.
  DecoderOptions no_channels = test::decoder_options(Policy::ds_offload, DType::f16, 1, 4);
  no_channels.engine.budget.k = 2;
  EXPECT_THROW(make_decoder(*source, no_channels), Error);
}

TEST(DummyWeights, AreSeededAndScaled) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto a = dummy_weights(config, 5), b = dummy_weights(config, 5), c = dummy_weights(config, 6);
  const auto read = [&](const WeightSource& s, WeightKind kind, int layer) {
    std::vector<float> w(std::size_t(weight_shape(config, kind).size()));
    s.read(kind, layer, w);
    return w;
  };
  EXPECT_TRUE(a->is_dummy());
  EXPECT_EQ(read(*a, WeightKind::wq, 1), read(*b, WeightKind::wq, 1));
  EXPECT_NE(read(*a, WeightKind::wq, 1), read(*c, WeightKind::wq, 1));
  EXPECT_NE(read(*a, WeightKind::wq, 0), read(*a, WeightKind::wq, 1));
  EXPECT_NE(read(*a, WeightKind::wq, 0), read(*a, WeightKind::wk, 0));

  const auto stats = [](const std::vector<float>& w) {
    double sum = 0, sum_sq = 0;
    for (float x : w) sum += x, sum_sq += double(x) * x;
    const double mean = sum / double(w.size());
    return std::pair{mean, std::sqrt(sum_sq / double(w.size()) - mean * mean)};
  };
  for (WeightKind kind : {WeightKind::w_gate, WeightKind::w_down, WeightKind::token_embedding, WeightKind::lm_head}) {
    const auto [mean, sd] = stats(read(*a, kind, 0));
    const double want = kind == WeightKind::token_embedding ? 1.0 : 1.0 / std::sqrt(double(weight_shape(config, kind).cols));
    EXPECT_NEAR(sd, want, 0.05 * want) << weight_name(kind);
    EXPECT_NEAR(mean, 0.0, 0.1 * want) << weight_name(kind);
  }
  for (float x : read(*a, WeightKind::ffn_norm, 1)) {
    EXPECT_GE(x, 0.75f);
    EXPECT_LT(x, 1.25f);
  }
  // The big shapes are made by the same recipe without being built here.
  const LlamaConfig big = builtin_llama_config("llama-3-8b");
  const DummyRecipe r = dummy_recipe(big, 5, WeightKind::wq, 31);
  double sum_sq = 0;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) sum_sq += std::pow(dummy_value(r, std::int64_t(i) * 833 + 7), 2);
  EXPECT_NEAR(std::sqrt(sum_sq / n), 1.0 / 64.0, 0.05 / 64.0);
}

TEST(GgufWeights, UnpermuteQKRowsIntoTheHuggingFaceLayout) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto hf = dummy_weights(config, 41);
  const GgufFile file = GgufFile::parse(test::tiny_gguf(*hf, true), "tiny.gguf");
  const auto source = gguf_weights(file);
  EXPECT_FALSE(source->is_dummy());
  EXPECT_FALSE(source->tied_lm_head());
  EXPECT_EQ(source->config().layers, config.layers);
  const auto read = [&](const WeightSource& s, WeightKind kind, int layer) {
    std::vector<float> w(std::size_t(weight_shape(config, kind).size()));
    s.read(kind, layer, w);
    return w;
  };
  for (WeightKind kind : {WeightKind::token_embedding, WeightKind::final_norm, WeightKind::lm_head})
    EXPECT_EQ(read(*source, kind, 0), read(*hf, kind, 0)) << weight_name(kind);
  for (int l = 0; l < config.layers; ++l)
    for (WeightKind kind : layer_weight_kinds)
      EXPECT_EQ(read(*source, kind, l), read(*hf, kind, l)) << weight_name(kind) << " of layer " << l;

  // So a decoder over the file computes what one over the HF weights does.
  const auto tokens = test::random_tokens(6, config.vocab_size, 42);
  const auto logits = [&](const WeightSource& s) {
    const auto decoder = make_decoder(s, test::decoder_options(Policy::dense_gpu, DType::f16, 1, 8));
    decoder->prefill(0, std::span(tokens).first(3));
    for (std::size_t p = 3; p < tokens.size(); ++p) decoder->decode(std::span(tokens).subspan(p, 1));
    return decoder->logits();
  };
  EXPECT_EQ(logits(*source), logits(*hf));
}

TEST(GgufWeights, TieTheHeadToTheEmbeddingWithoutOutputWeight) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto hf = dummy_weights(config, 43);
  const GgufFile file = GgufFile::parse(test::tiny_gguf(*hf, false), "tiny.gguf");
  const auto source = gguf_weights(file);
  EXPECT_TRUE(source->tied_lm_head());
  std::vector<float> head(std::size_t(weight_shape(config, WeightKind::lm_head).size())), embedding(head.size());
  source->read(WeightKind::lm_head, 0, head);
  hf->read(WeightKind::token_embedding, 0, embedding);
  EXPECT_EQ(head, embedding);
}

TEST(GgufWeights, RefuseATensorOfTheWrongShape) {
  const LlamaConfig config = test::tiny_llama_config();
  LlamaConfig wider = config;
  wider.ffn_hidden = config.ffn_hidden + 1;
  // The file's metadata says ffn 100; its ffn tensors are 101 wide.
  const auto hf = dummy_weights(wider, 44);
  const GgufFile wrong = GgufFile::parse(test::tiny_gguf(*hf, true, &config), "wide.gguf");
  try {
    const auto source = gguf_weights(wrong);
    ADD_FAILURE() << "a file whose tensors disagree with its metadata was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("wide.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("ffn_"), std::string::npos) << message;
  }
}

TEST(GgufWeights, RefuseNonFiniteWeightsNamingTheTensor) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto hf = dummy_weights(config, 45);
  for (const float bad : {std::nanf(""), -INFINITY}) {
    test::TinyGguf how;
    how.edit = [bad](const std::string& name, std::vector<float>& values) {
      if (name == "blk.1.ffn_up.weight") values[5] = bad;
    };
    const GgufFile file = GgufFile::parse(test::tiny_gguf_writer(*hf, how).build(), "bad.gguf");
    const auto source = gguf_weights(file);
    std::vector<float> w(std::size_t(weight_shape(config, WeightKind::w_up).size()));
    source->read(WeightKind::w_up, 0, w);  // the same tensor of a healthy layer reads
    const std::string message = test::error_of([&] { source->read(WeightKind::w_up, 1, w); });
    for (const char* part : {"bad.gguf", "'blk.1.ffn_up.weight'", "NaN or infinity at element 5"})
      EXPECT_NE(message.find(part), std::string::npos) << message;
    // Loading a decoder reads every tensor, so the damaged file is refused before any decoding.
    EXPECT_NE(test::error_of([&] { make_decoder(*source, test::decoder_options(Policy::dense_gpu, DType::f16, 1, 8)); })
                  .find("'blk.1.ffn_up.weight'"),
              std::string::npos);
  }
}

TEST(GgufWeights, RefuseABlockCountThatDisagreesWithTheLayersStored) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto hf = dummy_weights(config, 46);
  LlamaConfig fewer = config, more = config;
  fewer.layers = 1;
  more.layers = 3;
  // block_count 1 over two layers' tensors: layer 1 would be dropped silently.
  const GgufFile shallow = GgufFile::parse(test::tiny_gguf(*hf, true, &fewer), "shallow.gguf");
  const std::string dropped = test::error_of([&] { gguf_weights(shallow); });
  for (const char* part : {"shallow.gguf", "'blk.1.", "belongs to layer 1", "block_count says the model has 1 layers"})
    EXPECT_NE(dropped.find(part), std::string::npos) << dropped;
  const GgufFile deep = GgufFile::parse(test::tiny_gguf(*hf, true, &more), "deep.gguf");
  const std::string missing = test::error_of([&] { gguf_weights(deep); });
  for (const char* part : {"deep.gguf", "has no tensor 'blk.2.", "block_count says the model has 3 layers"})
    EXPECT_NE(missing.find(part), std::string::npos) << missing;
}

// The real model: SmolLM2-135M-Instruct (Q4_1), on the CPU.
class SmolLM2Decoder : public test::SmolLM2File {
 protected:
  std::unique_ptr<Decoder> decoder(std::int64_t capacity) {
    source_ = gguf_weights(file());
    return make_decoder(*source_, test::decoder_options(Policy::dense_gpu, DType::f16, 1, capacity));
  }
  std::unique_ptr<WeightSource> source_;
};

TEST_F(SmolLM2Decoder, GreedyAnswerIsEnglishWords) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const std::vector<std::int32_t> prompt = tokenizer.encode(
      "<|im_start|>user\nWrite two sentences about the sea.<|im_end|>\n<|im_start|>assistant\n", {false, true});
  const auto d = decoder(128);
  d->prefill(0, std::span(prompt).first(prompt.size() - 1));
  std::vector<std::int32_t> next{prompt.back()}, answer;
  constexpr std::size_t length = 16;
  while (answer.size() < length) {
    d->decode(next);
    next = d->greedy_tokens();
    answer.push_back(next[0]);
  }
  const std::string text = tokenizer.decode(answer);
  std::cout << "[ greedy  ] " << text << "\n";
  ASSERT_EQ(answer.size(), length);
  std::size_t ascii = 0;
  for (unsigned char ch : text) ascii += ch < 128 && (std::isprint(ch) || std::isspace(ch));
  EXPECT_GE(double(ascii), 0.9 * double(text.size())) << text;
  std::istringstream words(text);
  int english_words = 0;
  for (std::string word; words >> word;)
    english_words += std::count_if(word.begin(), word.end(), [](unsigned char ch) { return std::isalpha(ch); }) >= 2;
  EXPECT_GE(english_words, 8) << text;
}

constexpr const char* kEnglish =
    "The village sat at the edge of a wide river, and every morning the fishermen pushed their boats into the "
    "water before the sun was up. Children walked along the bank to school, and their parents worked in the "
    "fields or in the small shops near the bridge. In the evening, families gathered for dinner and talked about "
    "the weather, the harvest and the news from the city.";

TEST_F(SmolLM2Decoder, PerplexityOfEnglishIsLowAndPrefillScoresEqualDecode) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const std::vector<std::int32_t> tokens = tokenizer.encode(kEnglish);
  ASSERT_GE(tokens.size(), 48u);
  const std::span<const std::int32_t> window = std::span(tokens).first(48);
  const auto d = decoder(48);
  const PerplexityResult r = perplexity(*d, window, {48, 0, 1});
  std::cout << "[ ppl     ] " << r.perplexity() << " over " << r.tokens_scored << " tokens\n";
  EXPECT_EQ(r.tokens_scored, 47);
  EXPECT_TRUE(std::isfinite(r.perplexity()));
  EXPECT_LT(r.perplexity(), 100.0);
  EXPECT_GT(r.perplexity(), 1.0);

  // The second half scored after a prefill of the first: the same numbers up
  // to rounding (the prefill sums its products in the BLAS's order), which
  // moves the total log-likelihood of 23 tokens by far less than 0.1%.
  const PerplexityResult whole_tail = [&] {
    PerplexityResult t;
    d->reset(1);
    for (std::size_t i = 0; i + 1 < window.size(); ++i) {
      d->decode(window.subspan(i, 1));
      if (i >= 24) t.nll -= d->log_probs(window.subspan(i + 1, 1))[0], ++t.tokens_scored;
    }
    return t;
  }();
  const PerplexityResult prefilled = perplexity(*d, window, {48, 24, 1});
  EXPECT_EQ(prefilled.tokens_scored, whole_tail.tokens_scored);
  EXPECT_NEAR(prefilled.nll, whole_tail.nll, 1e-3 * whole_tail.nll);
  std::cout << "[ nll     ] prefilled " << prefilled.nll << ", decoded " << whole_tail.nll << "\n";
}

TEST(Perplexity, RefusesWindowsThatScoreNothingOrDoNotFit) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto source = dummy_weights(config, 51);
  const auto d = make_decoder(*source, test::decoder_options(Policy::dense_gpu, DType::f16, 2, 8));
  const auto tokens = test::random_tokens(20, config.vocab_size, 52);
  EXPECT_THROW(perplexity(*d, tokens, {16, 0, 0}), Error);  // beyond capacity
  EXPECT_THROW(perplexity(*d, tokens, {8, 7, 0}), Error);   // nothing left to score
  EXPECT_THROW(perplexity(*d, std::span(tokens).first(1), {8, 0, 0}), Error);
  // 20 tokens are two whole windows of 8, run as one batch of two.
  const PerplexityResult r = perplexity(*d, tokens, {8, 2, 0});
  EXPECT_EQ(r.windows, 2);
  EXPECT_EQ(r.tokens_scored, 2 * 5);
  EXPECT_TRUE(std::isfinite(r.nll));
}

}  // namespace
}  // namespace dso
