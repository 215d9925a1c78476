#include "cli/run_info.h"

#include <cctype>
#include <ctime>
#include <string_view>

#include "cli/build_info.h"
#include "core/error.h"

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

std::string version_line() {
  const BuildInfo& b = build_info();
  const std::string state = !b.dirty ? "tree state unknown" : *b.dirty ? "with uncommitted changes" : "clean";
  return concat("dsoffload ", b.version, " (commit ", b.git_commit, ", ", state, "; ", b.build_type, " build)");
}

void put_run_info(nlohmann::ordered_json& j) {
  const BuildInfo& b = build_info();
  j["version"] = b.version;
  j["git_commit"] = b.git_commit;
  if (b.dirty)
    j["git_dirty"] = *b.dirty;
  else
    j["git_dirty"] = nullptr;
  j["build_type"] = b.build_type;
  j["date"] = utc_now();
  j["command"] = command_line();
}

}  // namespace dso::cli
