#pragma once
// What the tokenizer needs of Unicode: UTF-8 decoding that never fails (a
// byte that starts no valid sequence stands for itself) and the letter /
// number / whitespace classes of the GPT-2 pre-tokenizer's \p{L}, \p{N}, \s.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace dso::unicode {

struct CodepointRange {
  char32_t first;
  char32_t last;
};

// Sorted, disjoint; generated from the Unicode database (unicode_ranges.cpp).
std::span<const CodepointRange> letter_ranges();
std::span<const CodepointRange> number_ranges();

bool is_letter(char32_t cp);
bool is_number(char32_t cp);
bool is_whitespace(char32_t cp);  // the White_Space property, as \s matches it

struct Decoded {
  char32_t cp;      // the code point, or the lone byte's value when !valid
  int length;       // bytes consumed, 1 to 4
  bool valid;
};

// Decodes the code point at text[pos] (pos < text.size()). Overlong forms,
// surrogates, values past U+10FFFF and truncated sequences are invalid and
// consume one byte.
Decoded decode_utf8(std::string_view text, std::size_t pos);

void append_utf8(std::string& out, char32_t cp);

}  // namespace dso::unicode
