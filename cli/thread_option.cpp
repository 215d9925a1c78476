#include "cli/thread_option.h"

#include <string>

namespace dso::cli {

void add_threads_option(CLI::App& sub, int& threads) {
  const CLI::Validator not_negative(
      [](const std::string& text) {
        return text.starts_with("-") ? "must be at least 1 (or 0: the cores available), got " + text : std::string();
      },
      "");
  sub.add_option("--threads", threads, "threads of the cpu backend's operations (default 0: the cores available)")
      ->check(not_negative);
}

}  // namespace dso::cli
