#pragma once
// Each subcommand of the dsoffload tool lives in its own file and adds itself
// to the application here. A subcommand reports a user error by throwing
// dso::Error; main prints it as one line and exits with status 2.
#include <CLI/CLI.hpp>

namespace dso::cli {

void add_inspect_config(CLI::App& app);
void add_bench(CLI::App& app);
void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_eval(CLI::App& app);
void add_passkey(CLI::App& app);

}  // namespace dso::cli
