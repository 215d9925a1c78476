#include "model/byte_unicode.h"

#include <array>
#include <string>

#include "model/unicode.h"

namespace dso {
namespace {

constexpr bool maps_to_itself(int b) { return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff); }

struct Tables {
  std::array<char32_t, 256> code_point{};
  std::array<std::string, 256> utf8;
  std::array<std::int16_t, 0x144> byte_of;  // every mapped code point is below U+0144

  Tables() {
    byte_of.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      code_point[b] = maps_to_itself(b) ? char32_t(b) : next++;
      unicode::append_utf8(utf8[b], code_point[b]);
      byte_of[code_point[b]] = std::int16_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view byte_to_unicode(std::uint8_t b) { return tables().utf8[b]; }

std::optional<std::uint8_t> unicode_to_byte(char32_t cp) {
  if (cp >= tables().byte_of.size() || tables().byte_of[cp] < 0) return std::nullopt;
  return std::uint8_t(tables().byte_of[cp]);
}

}  // namespace dso
