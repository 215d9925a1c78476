#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/run_info.h"
#include "core/error.h"

int main(int argc, char** argv) {
  dso::cli::record_command_line(argc, argv);
  CLI::App app{"dsoffload: long-context decoding with Double Sparsity and a host-memory KV cache"};
  app.require_subcommand(1);
  dso::cli::add_inspect_config(app);
  dso::cli::add_bench(app);
  dso::cli::add_generate(app);
  dso::cli::add_perplexity(app);
  dso::cli::add_calibrate(app);
  dso::cli::add_eval(app);
  dso::cli::add_passkey(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const dso::Error& e) {
    std::fprintf(stderr, "dsoffload: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsoffload: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
