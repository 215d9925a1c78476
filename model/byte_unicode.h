#pragma once
// GPT-2's reversible map from bytes to printable code points, through which
// byte-level BPE vocabularies spell every byte: bytes that are printable
// Latin-1 map to themselves, the other 68 to U+0100 onwards in byte order
// (so a space is 'Ġ' U+0120 and a newline 'Ċ' U+010A).
#include <cstdint>
#include <optional>
#include <string_view>

namespace dso {

// The UTF-8 spelling of the code point that stands for byte b.
std::string_view byte_to_unicode(std::uint8_t b);

// The byte that code point cp stands for, or nothing when it stands for none.
std::optional<std::uint8_t> unicode_to_byte(char32_t cp);

}  // namespace dso
