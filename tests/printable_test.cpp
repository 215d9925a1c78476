// core/printable.h: what reaches a terminal from a file is UTF-8 without
// control characters, and a cap cuts it between characters.
#include "core/printable.h"

#include <gtest/gtest.h>

#include <string>

namespace dso {
namespace {

using namespace std::string_literals;

TEST(Printable, KeepsTextAndWellFormedUtf8) {
  EXPECT_EQ(printable("model.gguf"), "model.gguf");
  EXPECT_EQ(printable("Caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"), "Caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
  EXPECT_EQ(in_quotes("llama"), "'llama'");
}

TEST(Printable, EscapesControlsNulAndBytesThatAreNotUtf8) {
  EXPECT_EQ(printable("a\x1b[2Jb\x07\n"s), "a\\x1b[2Jb\\x07\\x0a");
  EXPECT_EQ(printable("cut\0here"s), "cut\\x00here");
  EXPECT_EQ(printable("\x7f"), "\\x7f");
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\xc2\\x9b31m") << "C1 CSI";
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf") << "overlong '/'";
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "surrogate";
  EXPECT_EQ(printable("\xe4\xb8"), "\\xe4\\xb8") << "cut sequence";
  EXPECT_EQ(printable("\xff"), "\\xff");
}

TEST(Printable, APrefixStopsBetweenCharactersAndSaysHowFarItRead) {
  const PrintablePrefix p = printable_prefix("ab\xc3\xa9\x01xyz", 3);
  EXPECT_EQ(p.text, "ab\xc3\xa9");
  EXPECT_EQ(p.consumed, 4u);
  const PrintablePrefix q = printable_prefix("a\x01xyz", 2);
  EXPECT_EQ(q.text, "a\\x01");
  EXPECT_EQ(q.consumed, 2u);
  EXPECT_EQ(printable_prefix("abc", 10).consumed, 3u);
}

}  // namespace
}  // namespace dso
