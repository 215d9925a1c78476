// The inspect-config subcommand, run as a user runs it: the built tool on a
// config written by the project's own calibration, and on broken files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calibration/channel_config.h"
#include "calibration/channel_order.h"
#include "support/planted_qk.h"

namespace dso {
namespace {

struct ToolRun {
  int status = -1;
  std::string out;  // stdout, or stdout and stderr together
};

// Runs the tool on one file; `merge_stderr` folds stderr into the capture.
ToolRun inspect(const std::filesystem::path& file, bool merge_stderr) {
  const std::string command = std::string("'") + DSO_TOOL_PATH + "' inspect-config '" + file.string() + "'" +
                              (merge_stderr ? " 2>&1" : " 2>/dev/null");
  ToolRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) run.out.append(buffer, n);
  const int raw = ::pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return run;
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("dso_" + std::to_string(::getpid()) + "_" + name);
}

TEST(InspectConfig, DescribesAConfigWrittenByCalibration) {
  for (const AttentionShape s : {AttentionShape{3, 9, 3, 64}, AttentionShape{1, 4, 4, 16}}) {
    SCOPED_TRACE(testing::Message() << s.layers << " layers, " << s.q_heads << "/" << s.kv_heads << " heads");
    const test::PlantedQK model(s, 1, 4.0f, 51);
    const calibration::ChannelConfig config = calibration::config_from_statistics(test::calibrate(model, 20, 6, 52));
    const std::filesystem::path file = temp_file("inspect.json");
    calibration::save_channel_config(config, file);
    const ToolRun run = inspect(file, false);
    std::filesystem::remove(file);
    ASSERT_EQ(run.status, 0) << run.out;
    const nlohmann::json got = nlohmann::json::parse(run.out);  // one JSON object and nothing else
    const nlohmann::json want = {{"layers", s.layers},
                                 {"projections",
                                  {{"q_proj", {s.q_heads, s.head_dim}},
                                   {"k_proj", {s.kv_heads, s.head_dim}},
                                   {"qk_proj", {s.q_heads, s.head_dim}}}}};
    EXPECT_EQ(got, want) << run.out;
  }
}

TEST(InspectConfig, ExitsWithStatusTwoAndOneLineOnABadFile) {
  const std::filesystem::path not_json = temp_file("not_json.json");
  const std::filesystem::path gap = temp_file("gap.json");
  std::ofstream(not_json) << "{\"model.layers.0.self_attn.q_proj\": [[0, 1]";
  std::ofstream(gap) << R"({"model.layers.0.self_attn.q_proj": [[0, 1]], "model.layers.2.self_attn.q_proj": [[1, 0]]})";
  const struct {
    std::filesystem::path file;
    const char* message;
  } cases[] = {{not_json, "not JSON"}, {gap, "q_proj lacks layers 1"}, {temp_file("absent.json"), "cannot read"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file.string());
    const ToolRun run = inspect(c.file, true);
    EXPECT_EQ(run.status, 2) << run.out;
    EXPECT_NE(run.out.find(c.message), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find('\n'), run.out.size() - 1) << "not one line: " << run.out;
  }
  std::filesystem::remove(not_json);
  std::filesystem::remove(gap);
}

}  // namespace
}  // namespace dso
