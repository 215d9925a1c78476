#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"dsoffload: long-context decoding with Double Sparsity and a host-memory KV cache"};
  app.require_subcommand(1);
  dso::cli::add_inspect_config(app);
  dso::cli::add_bench(app);
  dso::cli::add_generate(app);
  dso::cli::add_perplexity(app);
  dso::cli::add_spec_accuracy(app);
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
