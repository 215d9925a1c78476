#include "cli/report_line.h"

#include <cstdio>

#include "core/printable.h"

namespace dso::cli {

std::string report_line(std::string_view what) {
  // Line breaks (nlohmann's messages have some) and tabs read as spaces; every other control is escaped.
  std::string flat(what);
  for (char& c : flat)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  const PrintablePrefix shown = printable_prefix(flat, kReportLimit);
  std::string line = "dsoffload: " + shown.text;
  if (shown.consumed < flat.size()) line += "... (" + std::to_string(flat.size() - shown.consumed) + " more bytes cut)";
  return line + '\n';
}

void report(std::string_view what) {
  const std::string line = report_line(what);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace dso::cli
