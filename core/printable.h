#pragma once
// Text from files (GGUF strings, paths, JSON) as it may be shown on a
// terminal: well-formed UTF-8 with no control character. Each C0 control,
// DEL, C1 control (U+0080-U+009F, which terminals obey as the C0 ones) and
// each byte outside a well-formed UTF-8 sequence becomes \xNN; a NUL too,
// so that it cannot end a C string early.
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace dso {

struct PrintablePrefix {
  std::string text;       // escaped, at most max_bytes plus one escape or character
  std::size_t consumed;   // bytes of the input it covers
};

// The escaped start of `text`, stopping once max_bytes are produced.
PrintablePrefix printable_prefix(std::string_view text, std::size_t max_bytes);

inline std::string printable(std::string_view text) {
  return printable_prefix(text, std::numeric_limits<std::size_t>::max()).text;
}

// "'<printable text>'": how a string read from a file is quoted in a message.
inline std::string in_quotes(std::string_view text) {
  std::string out(1, '\'');
  out += printable(text);
  out += '\'';
  return out;
}

}  // namespace dso
