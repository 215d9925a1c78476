#pragma once
// Runs the dsoffload tool as a user would, from tests: its stdout, its stderr
// and its exit status, and the JSON lines it prints.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace dso::test {

struct ToolRun {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("dso_" + std::to_string(::getpid()) + "_" + name);
}

inline std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `command` through the shell, its stderr apart from its stdout.
inline ToolRun run_shell(const std::string& shell_command) {
  const std::filesystem::path err = temp_file("stderr.txt");
  const std::string command = "{ " + shell_command + "; } 2>'" + err.string() + "'";
  ToolRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) run.out.append(buffer, n);
  const int raw = ::pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  run.err = read_all(err);
  std::filesystem::remove(err);
  return run;
}

inline ToolRun run_tool(const std::string& arguments) {
  return run_shell(std::string("'") + DSO_TOOL_PATH + "' " + arguments);
}

inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace dso::test
