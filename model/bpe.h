#pragma once
// The merge loop shared by both BPE flavours: a word starts as its UTF-8
// characters (a byte that is not valid UTF-8 is a character of its own) and
// adjacent symbols are merged, best pair first, until no pair merges.
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace dso {

// The priority of merging two adjacent symbols (higher merges first), or
// nothing when they do not merge. `left` and `right` are adjacent views into
// the word, so their concatenation is the view from left.data().
using PairPriority = std::function<std::optional<double>(std::string_view left, std::string_view right)>;

// Among pairs of equal priority the leftmost merges first, as in both
// SentencePiece and the Hugging Face BPE. O(n log n) in the word's length.
std::vector<std::string_view> bpe_merge(std::string_view word, const PairPriority& priority);

}  // namespace dso
