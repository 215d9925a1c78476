// Error reports from arbitrary bytes (a message quoting a hostile GGUF
// string or path): report_line must give exactly one line, starting
// "dsoffload: ", no longer than its cap and the note of what was cut, with
// no control character and nothing that is not UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/report_line.h"

namespace {

// Whether `text` is well-formed UTF-8 without C0 or C1 controls.
bool printable_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) {
      if (lead < 0x20 || lead == 0x7F) return false;
      ++i;
      continue;
    }
    const std::size_t n = (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    std::uint32_t code = lead & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      code = (code << 6) | (byte(i + k) & 0x3F);
    }
    if (code <= 0x9F) return false;  // overlong, or a C1 control
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line = dso::cli::report_line(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string_view prefix = "dsoffload: ";
  // The cap, plus the last character kept (an escape of 4 bytes at most) and the note of the cut.
  const std::size_t longest = prefix.size() + dso::cli::kReportLimit + 4 + 40 + 1;
  if (line.rfind(prefix, 0) != 0 || line.back() != '\n' || line.size() > longest) __builtin_trap();
  if (!printable_utf8(std::string_view(line).substr(0, line.size() - 1))) __builtin_trap();
  return 0;
}
