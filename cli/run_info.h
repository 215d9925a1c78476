#pragma once
// What a results file records about the run that made it: the tool's build,
// the command line as typed and the time, so that a table can be traced back
// and run again.
#include <string>

#include <nlohmann/json.hpp>

namespace dso::cli {

// main records argv once, before parsing.
void record_command_line(int argc, char** argv);
// The arguments joined by spaces, each quoted where the shell would need it.
const std::string& command_line();
// Now, as UTC ISO 8601 ("2026-11-22T15:04:05Z").
std::string utc_now();
// What --version prints: "dsoffload 0.1.0 (commit <hash>, <state>; <type> build)".
std::string version_line();
// The fields every JSON output records, in one place: version, git_commit,
// git_dirty (null outside a git checkout), build_type, date and command.
void put_run_info(nlohmann::ordered_json& j);

}  // namespace dso::cli
