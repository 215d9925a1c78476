#include "model/unicode.h"

#include <algorithm>
#include <cstdint>

namespace dso::unicode {
namespace {

bool in_ranges(std::span<const CodepointRange> ranges, char32_t cp) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                                   [](char32_t c, const CodepointRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

bool is_continuation(unsigned char b) { return (b & 0xc0u) == 0x80u; }

}  // namespace

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20u) >= 'a' && (cp | 0x20u) <= 'z';
  return in_ranges(letter_ranges(), cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(number_ranges(), cp);
}

bool is_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

Decoded decode_utf8(std::string_view text, std::size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  const Decoded lone{b0, 1, false};
  if (b0 < 0x80) return {b0, 1, true};
  int length;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xe0u) == 0xc0u) {
    length = 2, cp = b0 & 0x1fu, min = 0x80;
  } else if ((b0 & 0xf0u) == 0xe0u) {
    length = 3, cp = b0 & 0x0fu, min = 0x800;
  } else if ((b0 & 0xf8u) == 0xf0u) {
    length = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return lone;
  }
  if (text.size() - pos < std::size_t(length)) return lone;
  for (int i = 1; i < length; ++i) {
    const auto b = static_cast<unsigned char>(text[pos + i]);
    if (!is_continuation(b)) return lone;
    cp = (cp << 6) | (b & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return lone;
  return {cp, length, true};
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

}  // namespace dso::unicode
