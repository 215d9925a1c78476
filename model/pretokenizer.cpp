#include "model/pretokenizer.h"

#include <cstdint>

#include "model/unicode.h"

namespace dso {
namespace {

enum class CharClass : std::uint8_t { letter, number, space, other };

struct Char {
  char32_t cp;
  std::size_t offset;
  CharClass cls;
};

std::vector<Char> classify(std::string_view text) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const unicode::Decoded d = unicode::decode_utf8(text, pos);
    CharClass cls = CharClass::other;
    if (d.valid) {
      if (unicode::is_letter(d.cp)) cls = CharClass::letter;
      else if (unicode::is_number(d.cp)) cls = CharClass::number;
      else if (unicode::is_whitespace(d.cp)) cls = CharClass::space;
    }
    chars.push_back({d.valid ? d.cp : 0xfffd, pos, cls});
    pos += std::size_t(d.length);
  }
  return chars;
}

// Length in characters of a contraction ('s 't 'm 'd 're 've 'll) at i, or 0.
std::size_t contraction(const std::vector<Char>& c, std::size_t i, std::size_t end) {
  if (c[i].cp != U'\'' || i + 1 >= end) return 0;
  const char32_t a = c[i + 1].cp;
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= end) return 0;
  const char32_t b = c[i + 2].cp;
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// The length in characters of the pattern's match at i, within [i, end).
std::size_t match_at(const std::vector<Char>& c, std::size_t i, std::size_t end) {
  if (const std::size_t n = contraction(c, i, end)) return n;
  // " ?X+" for X one of letters, numbers, others: the optional space is only
  // taken when such a run follows it.
  std::size_t j = i;
  if (c[i].cp == U' ' && i + 1 < end && c[i + 1].cls != CharClass::space) j = i + 1;
  if (c[j].cls != CharClass::space) {
    const CharClass run = c[j].cls;
    std::size_t k = j + 1;
    while (k < end && c[k].cls == run) ++k;
    return k - i;
  }
  // Whitespace: "\s+(?!\S)" leaves the last space of a run to the word after
  // it; a single space before a word falls through to "\s+".
  std::size_t k = i;
  while (k < end && c[k].cls == CharClass::space) ++k;
  if (k == end || k - i == 1) return k - i;
  return k - i - 1;
}

void split_gpt2(std::string_view text, const std::vector<Char>& c, std::size_t begin, std::size_t end,
                std::vector<std::string_view>& out) {
  const auto offset = [&](std::size_t i) { return i < c.size() ? c[i].offset : text.size(); };
  for (std::size_t i = begin; i < end;) {
    const std::size_t n = match_at(c, i, end);
    out.push_back(text.substr(offset(i), offset(i + n) - offset(i)));
    i += n;
  }
}

}  // namespace

std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind) {
  const std::vector<Char> chars = classify(text);
  std::vector<std::string_view> pieces;
  if (kind == PreTokenizer::gpt2) {
    split_gpt2(text, chars, 0, chars.size(), pieces);
    return pieces;
  }
  std::size_t begin = 0;
  for (std::size_t i = 0; i < chars.size(); ++i) {
    if (chars[i].cls != CharClass::number) continue;
    split_gpt2(text, chars, begin, i, pieces);
    split_gpt2(text, chars, i, i + 1, pieces);
    begin = i + 1;
  }
  split_gpt2(text, chars, begin, chars.size(), pieces);
  return pieces;
}

}  // namespace dso
