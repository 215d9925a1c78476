// The pieces of the hand-written GPT-2 pre-tokenizer, against std::regex
// running the pattern itself on ASCII text (where \p{L}, \p{N} and \s have
// ASCII equivalents), and on hand-checked Unicode cases; and the UTF-8 and
// byte-spelling helpers under it.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "model/byte_unicode.h"
#include "model/pretokenizer.h"
#include "model/unicode.h"

namespace dso {
namespace {

std::vector<std::string> regex_pieces(const std::string& text) {
  static const std::regex pattern(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+)");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it)
    out.push_back(it->str());
  return out;
}

std::vector<std::string> regex_pieces_isolating_digits(const std::string& text) {
  std::vector<std::string> out;
  std::string run;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      for (auto& p : regex_pieces(run)) out.push_back(p);
      run.clear();
      out.push_back(std::string(1, c));
    } else {
      run += c;
    }
  }
  for (auto& p : regex_pieces(run)) out.push_back(p);
  return out;
}

std::vector<std::string> pieces(std::string_view text, PreTokenizer kind) {
  std::vector<std::string> out;
  for (std::string_view p : pretokenize(text, kind)) out.emplace_back(p);
  return out;
}

TEST(PreTokenizer, MatchesTheRegexOnRandomAsciiText) {
  // Characters that exercise every alternative: contractions, runs, and
  // whitespace before words, before whitespace, and at the end.
  const std::string alphabet = "aZq09 '\t\n\r\v\f.,!-_'sltrevmdS";
  for (unsigned seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    for (int trial = 0; trial < 2000; ++trial) {
      std::string text;
      const std::size_t n = rng() % 30;
      for (std::size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      ASSERT_EQ(pieces(text, PreTokenizer::gpt2), regex_pieces(text)) << "text: '" << text << "'";
      ASSERT_EQ(pieces(text, PreTokenizer::gpt2_isolated_digits), regex_pieces_isolating_digits(text))
          << "text: '" << text << "'";
    }
  }
}

TEST(PreTokenizer, ClassifiesUnicodeLettersNumbersAndSpaces) {
  using V = std::vector<std::string>;
  const auto gpt2 = [](std::string_view t) { return pieces(t, PreTokenizer::gpt2); };
  EXPECT_EQ(gpt2("héllo wörld"), (V{"héllo", " wörld"}));
  EXPECT_EQ(gpt2("日本語 テキスト"), (V{"日本語", " テキスト"}));
  EXPECT_EQ(gpt2("Здравствуй, мир"), (V{"Здравствуй", ",", " мир"}));
  EXPECT_EQ(gpt2("x²³ ½"), (V{"x", "²³", " ½"}));                    // superscripts and fractions are \p{N}
  EXPECT_EQ(gpt2("a\u3000\u3000b"), (V{"a", "\u3000", "\u3000", "b"})); // ideographic spaces are \s, not ' '
  EXPECT_EQ(gpt2("a\u00a0b"), (V{"a", "\u00a0", "b"}));
  EXPECT_EQ(gpt2("ok 👍🏽!"), (V{"ok", " 👍🏽!"}));                   // emoji are neither letters nor numbers
  EXPECT_EQ(gpt2("٣٤ ۵"), (V{"٣٤", " ۵"}));
  EXPECT_EQ(pieces("٣٤ ۵", PreTokenizer::gpt2_isolated_digits), (V{"٣", "٤", " ", "۵"}));
  // Invalid UTF-8 bytes are "other" characters, and nothing is lost.
  EXPECT_EQ(gpt2("a\xff\xfe b\xe6\x97"), (V{"a", "\xff\xfe", " b", "\xe6\x97"}));
}

TEST(PreTokenizer, PiecesCoverArbitraryBytesExactly) {
  for (unsigned seed : {4u, 5u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    for (int trial = 0; trial < 2000; ++trial) {
      std::string text(rng() % 40, '\0');
      for (char& c : text) c = char(rng());
      for (PreTokenizer kind : {PreTokenizer::gpt2, PreTokenizer::gpt2_isolated_digits}) {
        std::string joined;
        for (std::string_view p : pretokenize(text, kind)) {
          ASSERT_FALSE(p.empty());
          ASSERT_EQ(p.data(), text.data() + joined.size());
          joined += p;
        }
        ASSERT_EQ(joined, text);
      }
    }
  }
}

TEST(Unicode, DecodesValidUtf8AndRefusesMalformedSequencesByteByByte) {
  std::mt19937 rng(6);
  for (int trial = 0; trial < 20000; ++trial) {
    char32_t cp = rng() % 0x110000;
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    std::string s;
    unicode::append_utf8(s, cp);
    const unicode::Decoded d = unicode::decode_utf8(s, 0);
    ASSERT_TRUE(d.valid) << std::hex << std::uint32_t(cp);
    ASSERT_EQ(d.cp, cp);
    ASSERT_EQ(std::size_t(d.length), s.size());
  }
  for (std::string bad : {"\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6\x97", "\x80",
                          "\xff", "\xf8\x88\x80\x80\x80", "\xe6\x41\x41"}) {
    const unicode::Decoded d = unicode::decode_utf8(bad, 0);
    EXPECT_FALSE(d.valid) << bad;
    EXPECT_EQ(d.length, 1) << bad;
  }
}

TEST(Unicode, ClassesAgreeWithTheDatabaseOnSamples) {
  for (char32_t c : {U'a', U'Z', U'é', U'ß', U'Ж', U'日', U'ﾃ', U'ª', U'ǅ', U'\U00020000'}) EXPECT_TRUE(unicode::is_letter(c)) << std::hex << std::uint32_t(c);
  for (char32_t c : {U'0', U'9', U'²', U'½', U'٣', U'Ⅻ', U'①', U'\U0001D7CE'}) EXPECT_TRUE(unicode::is_number(c)) << std::hex << std::uint32_t(c);
  for (char32_t c : {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', U'\u0085', U'\u00a0', U'\u2009', U'\u2028', U'\u3000'})
    EXPECT_TRUE(unicode::is_whitespace(c)) << std::hex << std::uint32_t(c);
  for (char32_t c : {U'_', U'-', U'\'', U'😀', U'\u200b', U'\u0301', U'\u001c', U'€'}) {
    EXPECT_FALSE(unicode::is_letter(c)) << std::hex << std::uint32_t(c);
    EXPECT_FALSE(unicode::is_number(c)) << std::hex << std::uint32_t(c);
    EXPECT_FALSE(unicode::is_whitespace(c)) << std::hex << std::uint32_t(c);
  }
  for (auto ranges : {unicode::letter_ranges(), unicode::number_ranges()})
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      ASSERT_LE(ranges[i].first, ranges[i].last);
      if (i) ASSERT_LT(ranges[i - 1].last + 1, ranges[i].first) << "ranges must be sorted and apart";
    }
}

TEST(ByteUnicode, SpellsEveryByteAsADistinctCodePointAndBack) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string_view s = byte_to_unicode(std::uint8_t(b));
    const unicode::Decoded d = unicode::decode_utf8(s, 0);
    ASSERT_TRUE(d.valid);
    ASSERT_EQ(std::size_t(d.length), s.size());
    ASSERT_EQ(unicode_to_byte(d.cp), std::uint8_t(b));
    ASSERT_TRUE(seen.emplace(s).second) << "byte " << b << " shares its spelling";
    const bool printable = (b > 0x20 && b < 0x7f) || (b >= 0xa1 && b != 0xad);
    if (printable) EXPECT_EQ(d.cp, char32_t(b));
    else EXPECT_GE(d.cp, 0x100u);
  }
  EXPECT_EQ(byte_to_unicode(' '), "\xc4\xa0");   // 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), "\xc4\x8a");  // 'Ċ'
  EXPECT_FALSE(unicode_to_byte(U'€').has_value());
}

}  // namespace
}  // namespace dso
