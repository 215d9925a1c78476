#pragma once
// What a results file records about the run that made it: the command line as
// typed and the time, so that a table can be traced back and run again.
#include <string>

namespace dso::cli {

// main records argv once, before parsing.
void record_command_line(int argc, char** argv);
// The arguments joined by spaces, each quoted where the shell would need it.
const std::string& command_line();
// Now, as UTC ISO 8601 ("2026-11-22T15:04:05Z").
std::string utc_now();

}  // namespace dso::cli
