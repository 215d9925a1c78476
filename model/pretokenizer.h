#pragma once
// Splits text into the pieces that byte-level BPE merges within, as the
// GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does, written out by hand. Bytes that are not valid UTF-8 count as neither
// letters, numbers nor whitespace.
#include <string_view>
#include <vector>

namespace dso {

enum class PreTokenizer {
  gpt2,
  // Every \p{N} code point is a piece of its own first, then the GPT-2
  // pattern splits the text between them (SmolLM, StarCoder).
  gpt2_isolated_digits,
};

// The pieces are consecutive views into `text` that cover it exactly.
std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind);

}  // namespace dso
