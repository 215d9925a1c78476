#include <cstdio>
#include <exception>

#include "cli/app.h"
#include "cli/run_info.h"
#include "core/error.h"
#include "core/interrupt.h"

int main(int argc, char** argv) {
  using dso::cli::report_line;
  dso::cli::record_command_line(argc, argv);
  const std::unique_ptr<CLI::App> app = dso::cli::make_app();
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help ends here too, with status 0; every other parse error is a user error.
    return app->exit(e) == 0 ? 0 : 2;
  } catch (const dso::Interrupted& e) {
    std::fputs(report_line(e.what()).c_str(), stderr);
    return 130;
  } catch (const dso::cli::CheckFailed& e) {
    std::fputs(report_line(e.what()).c_str(), stderr);
    return 1;
  } catch (const dso::Error& e) {
    std::fputs(report_line(std::string("error: ") + e.what()).c_str(), stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fputs(report_line(std::string("internal error: ") + e.what()).c_str(), stderr);
    return 3;
  }
  return 0;
}
