// Decoder::reset_engine and Decoder::adopt_filled on the cpu path: a new
// engine over the same weights, and a context appended through the engine
// taken as every sequence's, with the checks that guard both.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/error.h"
#include "model/decoder.h"
#include "model/dummy_weights.h"
#include "model/weight_source.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

// Appends `count` random tokens of K/V to (sequence, layer).
void append_random(Engine& engine, int sequence, int layer, std::int64_t count, std::uint64_t seed) {
  const AttentionShape& s = engine.config().shape;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<Half> k(std::size_t(count) * s.kv_heads * s.head_dim), v(k.size());
  for (std::size_t i = 0; i < k.size(); ++i) {
    k[i] = from_float<Half>(u(rng));
    v[i] = from_float<Half>(u(rng));
  }
  engine.prefill(layer, sequence, k.data(), v.data(), count);
}

TEST(DecoderEngineSwap, AdoptedContextSetsEveryPositionAndDecodes) {
  for (const std::uint64_t seed : {3u, 11u}) {
    SCOPED_TRACE(seed);
    const LlamaConfig c = test::tiny_llama_config();
    const auto weights = dummy_weights(c, seed);
    const int batch = 3;
    const std::int64_t context = 37;
    const auto decoder = make_decoder(*weights, test::decoder_options(Policy::dense_gpu, DType::f16, batch, 64));
    for (int s = 0; s < batch; ++s)
      for (int l = 0; l < c.layers; ++l) append_random(decoder->engine(), s, l, context, seed * 100 + s * 10 + l);
    decoder->adopt_filled(context);
    for (int s = 0; s < batch; ++s) EXPECT_EQ(decoder->position(s), context);
    decoder->decode(test::random_tokens(batch, c.vocab_size, seed));
    for (int s = 0; s < batch; ++s) {
      EXPECT_EQ(decoder->position(s), context + 1);
      for (int l = 0; l < c.layers; ++l) EXPECT_EQ(decoder->engine().length(s, l), context + 1);
    }
  }
}

TEST(DecoderEngineSwap, AdoptRefusesAnUnevenFill) {
  const LlamaConfig c = test::tiny_llama_config();
  const auto weights = dummy_weights(c, 5);
  const auto decoder = make_decoder(*weights, test::decoder_options(Policy::dense_gpu, DType::f16, 2, 64));
  for (int s = 0; s < 2; ++s)
    for (int l = 0; l < c.layers; ++l) append_random(decoder->engine(), s, l, s == 1 && l == 1 ? 6 : 7, 9);
  EXPECT_THROW(decoder->adopt_filled(7), Error);
  EXPECT_EQ(decoder->position(0), 0);  // nothing adopted
}

TEST(DecoderEngineSwap, ResetEngineStartsEmptyUnderTheNewPolicy) {
  const LlamaConfig c = test::tiny_llama_config();
  const auto weights = dummy_weights(c, 7);
  DecoderOptions o = test::decoder_options(Policy::ds_offload, DType::f16, 2, 64);
  o.engine.channels = test::random_channels(c.attention(), 3, 7);
  o.engine.k_fraction = 0.25;
  const auto decoder = make_decoder(*weights, o);
  decoder->decode(test::random_tokens(2, c.vocab_size, 1));
  EngineConfig flexgen = decoder->engine_config();
  flexgen.policy = Policy::flexgen;
  flexgen.batch = 1;
  decoder->reset_engine(flexgen);
  EXPECT_EQ(decoder->engine().config().policy, Policy::flexgen);
  EXPECT_EQ(decoder->batch(), 1);
  EXPECT_EQ(decoder->position(0), 0);
  decoder->decode(test::random_tokens(1, c.vocab_size, 2));
  EXPECT_EQ(decoder->position(0), 1);
  // Back to ds_offload with the channels the speculative query was packed for.
  decoder->reset_engine(o.engine);
  decoder->decode(test::random_tokens(2, c.vocab_size, 3));
  EXPECT_EQ(decoder->position(1), 1);
}

TEST(DecoderEngineSwap, ResetEngineRefusesASpeculationTheDecoderWasNotMadeFor) {
  const LlamaConfig c = test::tiny_llama_config();
  const auto weights = dummy_weights(c, 8);
  const auto decoder = make_decoder(*weights, test::decoder_options(Policy::dense_gpu, DType::f16, 1, 64));
  EngineConfig ds = decoder->engine_config();
  ds.policy = Policy::ds_offload;
  ds.channels = test::random_channels(c.attention(), 3, 8);
  ds.k_fraction = 0.25;
  EXPECT_THROW(decoder->reset_engine(ds), Error);
  EngineConfig wider = decoder->engine_config();
  wider.batch = 2;  // more than the decoder's buffers hold
  EXPECT_THROW(decoder->reset_engine(wider), Error);
}

}  // namespace
}  // namespace dso
