#include "cli/app.h"

#include "cli/commands.h"
#include "cli/report_line.h"
#include "cli/run_info.h"
#include "core/error.h"

namespace dso::cli {

std::unique_ptr<CLI::App> make_app() {
  auto owned =
      std::make_unique<CLI::App>("dsoffload: long-context decoding with Double Sparsity and a host-memory KV cache");
  CLI::App& app = *owned;
  app.require_subcommand(1);
  app.set_version_flag("--version", version_line(), "print the version, git commit and build type, then exit");
  dso::cli::add_inspect_config(app);
  dso::cli::add_bench(app);
  dso::cli::add_inspect_model(app);
  dso::cli::add_generate(app);
  dso::cli::add_perplexity(app);
  dso::cli::add_spec_accuracy(app);
  dso::cli::add_calibrate(app);
  dso::cli::add_eval(app);
  dso::cli::add_passkey(app);
  dso::cli::add_soak(app);

  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  // CLI11's own report takes two lines, and for a misspelt subcommand only
  // says that one is required; scripts and people read one line that names
  // the problem.
  app.failure_message([names](const CLI::App* parsed, const CLI::Error& e) {
    std::string what = concat(e.what(), " (see --help)");
    if (e.get_name() == "RequiredError" && parsed->get_subcommands().empty()) {
      const std::vector<std::string> rest = parsed->remaining();
      const bool misspelt = !rest.empty() && !rest.front().starts_with("-");
      what = misspelt ? concat("unknown subcommand '", rest.front(), "' (choose from ", names, ")")
                      : concat("a subcommand is required (choose from ", names, ")");
    }
    return report_line("error: " + what);
  });
  return owned;
}

}  // namespace dso::cli
