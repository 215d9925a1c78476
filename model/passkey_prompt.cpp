#include "model/passkey_prompt.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"

namespace dso {

namespace {

constexpr const char* intro =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n\n";
constexpr const char* filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
constexpr const char* question = "\n\nWhat is the pass key? Answer with the number only.";

PasskeyPrompt build(const PasskeyRequest& r, std::int64_t sentences) {
  PasskeyPrompt p;
  p.filler_sentences = sentences;
  p.sentences_before = std::int64_t(std::llround(r.depth * double(sentences)));
  p.text = r.before + intro;
  p.haystack_begin = p.text.size();
  for (std::int64_t i = 0; i < p.sentences_before; ++i) p.text += filler;
  p.key_sentence_at = p.text.size();
  p.text += "The pass key is " + r.key + ". Remember it. ";
  for (std::int64_t i = p.sentences_before; i < sentences; ++i) p.text += filler;
  p.haystack_end = p.text.size();
  p.text += question + r.after;
  return p;
}

}  // namespace

PasskeyPrompt passkey_prompt(const PasskeyRequest& r, const TokenCounter& count_tokens) {
  require(!r.key.empty() && std::all_of(r.key.begin(), r.key.end(), [](unsigned char c) { return std::isdigit(c); }),
          "the pass key must be digits, got '", r.key, "'");
  require(r.depth >= 0.0 && r.depth <= 1.0, "the pass key's depth must be in [0, 1], got ", r.depth);
  const auto counted = [&](std::int64_t sentences) {
    PasskeyPrompt p = build(r, sentences);
    p.tokens = count_tokens(p.text);
    return p;
  };
  PasskeyPrompt p = counted(0);
  require(p.tokens <= r.max_tokens, "a pass key prompt without filler takes ", p.tokens, " tokens, more than the ",
          r.max_tokens, " allowed");
  // The filler repeats, so one sentence's share gives a close estimate; walk
  // down from it until the prompt fits, then up while one more still fits.
  const std::int64_t per_sentence = std::max<std::int64_t>(1, counted(1).tokens - p.tokens);
  std::int64_t sentences = (r.max_tokens - p.tokens) / per_sentence;
  PasskeyPrompt fit = counted(sentences);
  while (fit.tokens > r.max_tokens) {
    sentences = std::max<std::int64_t>(0, sentences - std::max<std::int64_t>(1, (fit.tokens - r.max_tokens) / per_sentence));
    fit = counted(sentences);
  }
  for (PasskeyPrompt more = counted(sentences + 1); more.tokens <= r.max_tokens; more = counted(++sentences + 1))
    fit = std::move(more);
  return fit;
}

std::string first_number(const std::string& answer) {
  const auto digit = [](unsigned char c) { return std::isdigit(c) != 0; };
  const auto begin = std::find_if(answer.begin(), answer.end(), digit);
  return std::string(begin, std::find_if_not(begin, answer.end(), digit));
}

}  // namespace dso
