#pragma once
// The dsoffload command line, built apart from main() so that it can be
// parsed without running anything: a subcommand's work is its callback, run
// by parse(); an App whose subcommand callbacks are cleared only parses.
//
// Exit statuses of the tool: 0 done; 2 a user error (arguments, files, a run
// that does not fit), one line on stderr; 3 an internal error; 130
// interrupted by Ctrl-C, one line saying where.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace dso::cli {

// Every subcommand added; parse errors are reported by App::exit as one line.
std::unique_ptr<CLI::App> make_app();

// "dsoffload: <what>", with any line breaks of `what` turned into spaces so
// that every report is exactly one line.
std::string report_line(const std::string& what);

}  // namespace dso::cli
