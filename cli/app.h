#pragma once
// The dsoffload command line, built apart from main() so that it can be
// parsed without running anything: a subcommand's work is its callback, run
// by parse(); an App whose subcommand callbacks are cleared only parses.
//
// Exit statuses of the tool: 0 done; 1 a check the run made failed (soak's
// verdict), one line on stderr; 2 a user error (arguments, files, a run that
// does not fit), one line on stderr; 3 an internal error; 130 interrupted by
// Ctrl-C, one line saying where.
#include <CLI/CLI.hpp>
#include <memory>
#include <stdexcept>
#include <string>

namespace dso::cli {

// A run that went through and found what it checks wrong: not the user's
// error, nor the tool's.
struct CheckFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every subcommand added; parse errors are reported by App::exit as one line.
std::unique_ptr<CLI::App> make_app();

}  // namespace dso::cli
