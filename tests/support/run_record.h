#pragma once
// The record every JSON output of the tool carries about its run (cli/run_info.h):
// checked the same way wherever a test reads one.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "support/tool_run.h"

namespace dso::test {

// The commit the tree is at; empty outside a checkout.
inline std::string source_commit() {
  const ToolRun git = run_shell(std::string("git -C '") + DSO_SOURCE_DIR + "' rev-parse HEAD");
  return git.status == 0 ? git.out.substr(0, git.out.find('\n')) : std::string();
}

// Whether `commit` is the tree's commit or one it descends from: the tool
// reports the commit it was built at, which commits made since its build
// leave behind.
inline bool built_from_this_tree(const std::string& commit) {
  return commit.size() == 40 && commit.find_first_not_of("0123456789abcdef") == std::string::npos &&
         run_shell(std::string("git -C '") + DSO_SOURCE_DIR + "' merge-base --is-ancestor " + commit + " HEAD")
                 .status == 0;
}

// `arguments`: what the test passed after the tool's path, quoted as the tool
// requotes it (no quotes where none are needed).
inline void expect_run_record(const nlohmann::json& j, const std::string& arguments) {
  for (const char* field : {"version", "git_commit", "git_dirty", "build_type", "date", "command"})
    ASSERT_TRUE(j.contains(field)) << field << " missing from " << j.dump();
  EXPECT_EQ(j["version"], "0.1.0");
  const std::string commit = source_commit();
  if (commit.empty()) {
    EXPECT_EQ(j["git_commit"], "unknown");
  } else {
    EXPECT_TRUE(built_from_this_tree(j["git_commit"])) << j["git_commit"] << " is not a commit of " << commit;
    EXPECT_TRUE(j["git_dirty"].is_boolean()) << j.dump();
  }
  EXPECT_FALSE(j["build_type"].get<std::string>().empty());
  const std::string date = j["date"];
  EXPECT_EQ(date.size(), 20u) << date;  // 2026-11-22T15:04:05Z
  EXPECT_EQ(date.back(), 'Z') << date;
  EXPECT_EQ(j["command"], std::string(DSO_TOOL_PATH) + " " + arguments);
}

}  // namespace dso::test
