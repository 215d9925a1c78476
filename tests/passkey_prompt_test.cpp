// Passkey prompts: the key appears once, in its own sentence, after the
// requested share of the filler; the prompt is the longest that fits the
// budget; the answer's number is read as a person would. Token counts come
// from a whitespace counter and, when the file is present, SmolLM2's tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "core/error.h"
#include "model/passkey_prompt.h"
#include "model/tokenizer.h"
#include "support/smollm2.h"

namespace dso {
namespace {

std::int64_t words(const std::string& text) {
  std::istringstream in(text);
  std::int64_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void check_prompt(const PasskeyRequest& r, const TokenCounter& count) {
  SCOPED_TRACE("depth " + std::to_string(r.depth) + " max_tokens " + std::to_string(r.max_tokens));
  const PasskeyPrompt p = passkey_prompt(r, count);
  EXPECT_EQ(occurrences(p.text, r.key), 1u);
  EXPECT_EQ(p.text.find("The pass key is " + r.key + "."), p.key_sentence_at);
  EXPECT_TRUE(p.text.starts_with(r.before));
  EXPECT_TRUE(p.text.ends_with(r.after));
  EXPECT_EQ(p.tokens, count(p.text));
  EXPECT_LE(p.tokens, r.max_tokens);
  // The longest that fits: one more filler sentence would not.
  PasskeyRequest more = r;
  more.max_tokens = p.tokens - 1;
  EXPECT_LT(passkey_prompt(more, count).filler_sentences, p.filler_sentences);
  // The key's sentence sits after round(depth * sentences) filler sentences,
  // so its byte position in the haystack is the depth to within one sentence.
  EXPECT_EQ(p.sentences_before, std::llround(r.depth * double(p.filler_sentences)));
  ASSERT_GT(p.filler_sentences, 0);
  const double haystack = double(p.haystack_end - p.haystack_begin);
  const double at = double(p.key_sentence_at - p.haystack_begin) / haystack;
  EXPECT_NEAR(at, r.depth, 1.0 / double(p.filler_sentences) + 0.02);
}

TEST(PasskeyPrompt, KeyOnceAtItsDepthWithinTheBudget) {
  for (double depth : {0.0, 0.1, 0.5, 0.9, 1.0})
    for (std::int64_t max_tokens : {120, 997, 4093})
      check_prompt({"48213", depth, max_tokens, "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"}, words);
}

class PasskeyPromptSmolLM2 : public test::SmolLM2File {};

TEST_F(PasskeyPromptSmolLM2, FitsTheModelsTokens) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const auto count = [&](const std::string& text) {
    return std::int64_t(tokenizer.encode(text, {false, true}).size());
  };
  for (double depth : {0.1, 0.5, 0.9})
    for (std::int64_t max_tokens : {300, 2037})
      check_prompt({"90417", depth, max_tokens, "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"}, count);
}

TEST(PasskeyPrompt, RefusesBadRequests) {
  EXPECT_THROW(passkey_prompt({"12a45", 0.5, 500, "", ""}, words), Error);
  EXPECT_THROW(passkey_prompt({"", 0.5, 500, "", ""}, words), Error);
  EXPECT_THROW(passkey_prompt({"12345", 1.5, 500, "", ""}, words), Error);
  EXPECT_THROW(passkey_prompt({"12345", 0.5, 10, "", ""}, words), Error);
}

TEST(PasskeyAnswer, FirstNumber) {
  EXPECT_EQ(first_number("The pass key is 48213."), "48213");
  EXPECT_EQ(first_number("48213"), "48213");
  EXPECT_EQ(first_number("It is 4821 3."), "4821");
  EXPECT_EQ(first_number("I do not know."), "");
  EXPECT_EQ(first_number(""), "");
}

}  // namespace
}  // namespace dso
