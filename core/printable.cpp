#include "core/printable.h"

#include <cstdint>

namespace dso {

namespace {

// Bytes in the UTF-8 sequence starting `text` that may be shown as it is, or
// 0 where it is a control character or not well-formed (overlong forms and
// surrogates included).
std::size_t shown_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return lead < 0x20 || lead == 0x7F ? 0 : 1;
  const std::size_t n = (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || n > text.size()) return 0;
  std::uint32_t code = lead & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3F);
  }
  static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < smallest[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return code <= 0x9F ? 0 : n;
}

}  // namespace

PrintablePrefix printable_prefix(std::string_view text, std::size_t max_bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  PrintablePrefix out{{}, 0};
  std::size_t& i = out.consumed;
  while (i < text.size() && out.text.size() < max_bytes) {
    const std::size_t n = shown_length(text.substr(i));
    if (n > 0) {
      out.text.append(text.substr(i, n));
      i += n;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i++]);
    out.text += "\\x";
    out.text += hex[c >> 4];
    out.text += hex[c & 0xF];
  }
  return out;
}

}  // namespace dso
