#pragma once
// --threads, as every subcommand that runs a model takes it: the threads of
// the cpu backend's operations (0, the default: the cores available, as
// cpu::resolve_threads counts them). A negative count is refused as the
// command line is parsed.
#include <CLI/CLI.hpp>

namespace dso::cli {

void add_threads_option(CLI::App& sub, int& threads);

}  // namespace dso::cli
