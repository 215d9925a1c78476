#pragma once
// Passkey retrieval prompts (Mohtashami & Jaggi 2023): a number hidden in a
// long run of repetitive filler, asked for at the end. The key's sentence goes
// between two filler sentences, after `depth` of them; the number of filler
// sentences is the most that keeps the whole prompt (chat template included)
// within a token budget.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace dso {

struct PasskeyRequest {
  std::string key;            // the digits to hide
  double depth = 0.5;         // in [0, 1]: the share of filler sentences before the key's
  std::int64_t max_tokens = 0;
  std::string before, after;  // the chat template around the user's message, counted in max_tokens
};

struct PasskeyPrompt {
  std::string text;                // before + message + after
  std::int64_t tokens = 0;         // as counted
  std::int64_t filler_sentences = 0;
  std::int64_t sentences_before = 0;   // filler sentences in front of the key's
  std::size_t haystack_begin = 0;      // byte range of the filler and the key's sentence in text
  std::size_t haystack_end = 0;
  std::size_t key_sentence_at = 0;     // byte offset of the key's sentence in text
};

// Tokens a text takes in the model's tokenizer.
using TokenCounter = std::function<std::int64_t(const std::string&)>;

// Throws dso::Error where the key is not all digits, the depth lies outside
// [0, 1] or even a prompt without filler exceeds max_tokens.
PasskeyPrompt passkey_prompt(const PasskeyRequest& request, const TokenCounter& count_tokens);

// The number in an answer: its first run of digits, or empty.
std::string first_number(const std::string& answer);

}  // namespace dso
