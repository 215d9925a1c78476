#pragma once
// Each subcommand of the dsoffload tool lives in its own file and adds itself
// to the application in cli/app.cpp. A subcommand reports a user error by
// throwing dso::Error; main prints it as one line and exits with status 2. A
// long one polls core/interrupt.h at its step boundaries, so that Ctrl-C stops
// it there with status 130. A run that checks something and finds it wrong
// throws CheckFailed (cli/app.h): one line and status 1.
#include <CLI/CLI.hpp>

namespace dso::cli {

void add_inspect_config(CLI::App& app);
void add_bench(CLI::App& app);
void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_spec_accuracy(CLI::App& app);
void add_inspect_model(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_eval(CLI::App& app);
void add_passkey(CLI::App& app);
void add_soak(CLI::App& app);

}  // namespace dso::cli
