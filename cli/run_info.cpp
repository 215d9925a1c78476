#include "cli/run_info.h"

#include <cctype>
#include <ctime>
#include <string_view>


namespace dso::cli {

namespace {

std::string recorded;

bool needs_quotes(const std::string& arg) {
  if (arg.empty()) return true;
  for (char c : arg)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=,:+@%").find(c) != std::string_view::npos))
      return true;
  return false;
}

}  // namespace

void record_command_line(int argc, char** argv) {
  recorded.clear();
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i > 0) recorded += ' ';
    if (!needs_quotes(arg)) {
      recorded += arg;
      continue;
    }
    recorded += '\'';
    for (char c : arg) recorded += c == '\'' ? std::string("'\\''") : std::string(1, c);
    recorded += '\'';
  }
}

const std::string& command_line() { return recorded; }

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace dso::cli
