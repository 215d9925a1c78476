// Prefixes kept from a dense prefill and restored into engines of other
// policies (PrefixRecorder, Decoder::restore_prefix, SharedPrefixPerplexity)
// against the plain way: each setting prefilling the windows itself. The
// prefill is dense whatever the policy, so the two must agree bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "model/dummy_weights.h"
#include "model/perplexity.h"
#include "model/prefix_recorder.h"
#include "model/shared_prefix_perplexity.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

constexpr std::uint64_t kSeeds[] = {41, 42, 43};

// The settings an evaluation sweeps, on the tiny model.
std::vector<DecoderOptions> settings(const LlamaConfig& config, std::uint64_t seed) {
  std::vector<DecoderOptions> out;
  for (Policy p : {Policy::dense_gpu, Policy::ds_gpu, Policy::ds_offload, Policy::flexgen}) {
    DecoderOptions o = test::decoder_options(p, DType::f16, 1, 1);
    o.prefill_chunk = 5;
    o.engine.budget = {3, 1, 2};
    if (is_sparse(p)) o.engine.channels = test::random_channels(config.attention(), 3, seed);
    out.push_back(o);
  }
  DecoderOptions sparq = out[1];
  sparq.engine.selector = Selector::sparq;
  sparq.engine.sparq_r = 5;
  sparq.engine.channels = {};
  out.push_back(sparq);
  return out;
}

void expect_identical(const PerplexityResult& got, const PerplexityResult& want) {
  EXPECT_EQ(got.windows, want.windows);
  EXPECT_EQ(got.tokens_scored, want.tokens_scored);
  EXPECT_EQ(std::memcmp(&got.nll, &want.nll, sizeof got.nll), 0) << got.nll << " vs " << want.nll;
}

TEST(SharedPrefixPerplexity, EqualsPrefillingEverySettingAnew) {
  const LlamaConfig config = test::tiny_llama_config();
  for (std::uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto source = dummy_weights(config, seed);
    const std::vector<std::int32_t> tokens = test::random_tokens(3 * 29 + 4, config.vocab_size, seed);
    // Three windows of 29 tokens decoded two at a time: one group is not full.
    const WindowPlan plan{29, 3, 6, 2};
    const PerplexityOptions plain{plan.context, plan.prefix(), plan.windows};
    const std::vector<DecoderOptions> all = settings(config, seed);
    const SharedPrefixPerplexity shared(*source, all[0], tokens, plan);
    for (std::size_t i = 0; i < all.size(); ++i) {
      SCOPED_TRACE("setting " + std::to_string(i) + " " + std::string(policy_name(all[i].engine.policy)) + " " +
                   std::string(selector_name(all[i].engine.selector)));
      DecoderOptions o = all[i];
      o.engine.batch = plan.batch;
      o.engine.capacity = plan.context;
      const auto decoder = make_decoder(*source, o);
      const PerplexityResult want = perplexity(*decoder, tokens, plain);
      EXPECT_EQ(want.tokens_scored, plan.windows * plan.score_tokens);
      expect_identical(shared.score(all[i]), want);
      if (i == 0) expect_identical(shared.dense(), want);
    }
  }
}

TEST(RestorePrefix, KeepsWhatPrefillGaveTheEngine) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto source = dummy_weights(config, 5);
  const std::vector<std::int32_t> tokens = test::random_tokens(13, config.vocab_size, 5);
  PrefixRecorder recorder(config);
  DecoderOptions o = test::decoder_options(Policy::dense_gpu, DType::bf16, 2, 16);
  o.prefill_observer = recorder.observer();
  o.prefill_chunk = 4;
  const auto decoder = make_decoder(*source, o);
  CachedPrefix kept;
  recorder.keep(1, kept, 13);
  decoder->prefill(0, tokens);  // sequence 0 is not kept
  decoder->prefill(1, tokens);
  EXPECT_EQ(kept.tokens, 13);

  // Restored next to a prefilled sequence, both decode to the same logits.
  o.prefill_observer = {};
  const auto other = make_decoder(*source, o);
  other->prefill(0, tokens);
  other->restore_prefix(1, kept);
  EXPECT_EQ(other->position(1), 13);
  other->decode(std::vector<std::int32_t>{7, 7});
  const std::vector<float> logits = other->logits();
  const std::size_t vocab = std::size_t(config.vocab_size);
  EXPECT_EQ(std::memcmp(logits.data(), logits.data() + vocab, vocab * sizeof(float)), 0);

  EXPECT_THROW(other->restore_prefix(1, kept), Error);  // not empty
  CachedPrefix short_one = kept;
  short_one.k.pop_back();
  other->reset(2);
  EXPECT_THROW(other->restore_prefix(0, short_one), Error);
  CachedPrefix too_long = kept;
  too_long.tokens = 17;
  EXPECT_THROW(other->restore_prefix(0, too_long), Error);
}

}  // namespace
}  // namespace dso
