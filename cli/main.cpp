#include <cstdio>
#include <exception>

#include "cli/app.h"
#include "cli/report_line.h"
#include "cli/run_info.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/output_file.h"

namespace {

// The subcommand's run; results still buffered for stdout are flushed and
// checked here, so that output lost to a full disk is an error for every
// subcommand.
int run(CLI::App& app, int argc, char** argv) {
  using dso::cli::report;
  try {
    app.parse(argc, argv);
    dso::flush_stdout();
  } catch (const CLI::ParseError& e) {
    // --help ends here too, with status 0; every other parse error is a user error.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const dso::Interrupted& e) {
    report(e.what());
    return 130;
  } catch (const dso::cli::CheckFailed& e) {
    report(e.what());
    return 1;
  } catch (const dso::Error& e) {
    report(std::string("error: ") + e.what());
    return 2;
  } catch (const std::exception& e) {
    report(std::string("internal error: ") + e.what());
    return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dso::cli::record_command_line(argc, argv);
  const std::unique_ptr<CLI::App> app = dso::cli::make_app();
  return run(*app, argc, argv);
}
