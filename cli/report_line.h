#pragma once
// The one place where the tool's reports reach the terminal: every error and
// stop message goes through report_line, which keeps it one line, short and
// printable whatever it quotes (a GGUF string, a path, a JSON excerpt).
#include <cstddef>
#include <string>
#include <string_view>

namespace dso::cli {

// Longest report body kept, in bytes; the rest is cut and the cut said.
inline constexpr std::size_t kReportLimit = 400;

// "dsoffload: <what>\n": line breaks and tabs become spaces; other control
// characters, and bytes that are not UTF-8, are escaped (core/printable.h);
// beyond kReportLimit bytes the text ends in "... (N more bytes cut)".
std::string report_line(std::string_view what);

// Writes report_line(what) to stderr.
void report(std::string_view what);

}  // namespace dso::cli
