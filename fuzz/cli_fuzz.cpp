// The tool's command line from arbitrary bytes, one argument per line, parsed
// by the App of cli/app.h without running any subcommand: the main App's
// parse-complete callback, which CLI11 runs after every option is converted
// and checked and before any subcommand's callback, ends the parse. A parse
// ends there or in a CLI::ParseError, and the report the tool prints for
// that error is one line (or --help's text on stdout).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"

namespace {

struct ParsedOnly {};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> words{"dsoffload"};
  std::string word;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      words.push_back(word);
      word.clear();
    } else {
      word.push_back(char(data[i]));
    }
  }
  if (!word.empty()) words.push_back(word);
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());

  const std::unique_ptr<CLI::App> app = dso::cli::make_app();
  app->parse_complete_callback([] { throw ParsedOnly{}; });
  try {
    app->parse(int(argv.size()), argv.data());
    __builtin_trap();  // the parse went on past the callback, into a subcommand's work
  } catch (const ParsedOnly&) {
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int status = app->exit(e, out, err);
    const std::string report = err.str();
    if (status != 0 && (report.empty() || report.find('\n') != report.size() - 1)) __builtin_trap();
  }
  return 0;
}
