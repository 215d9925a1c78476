// The inspect-config subcommand, run as a user runs it: the built tool on a
// config written by the project's own calibration, and on broken files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calibration/channel_config.h"
#include "calibration/channel_order.h"
#include "support/planted_qk.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::run_tool;
using test::temp_file;
using test::ToolRun;

ToolRun inspect(const std::filesystem::path& file) { return run_tool("inspect-config '" + file.string() + "'"); }

TEST(InspectConfig, DescribesAConfigWrittenByCalibration) {
  for (const AttentionShape s : {AttentionShape{3, 9, 3, 64}, AttentionShape{1, 4, 4, 16}}) {
    SCOPED_TRACE(testing::Message() << s.layers << " layers, " << s.q_heads << "/" << s.kv_heads << " heads");
    const test::PlantedQK model(s, 1, 4.0f, 51);
    const calibration::ChannelConfig config = calibration::config_from_statistics(test::calibrate(model, 20, 6, 52));
    const std::filesystem::path file = temp_file("inspect.json");
    calibration::save_channel_config(config, file);
    const ToolRun run = inspect(file);
    std::filesystem::remove(file);
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(run.err, "");
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
    const ToolRun run = inspect(c.file);
    EXPECT_EQ(run.status, 2) << run.err;
    EXPECT_EQ(run.out, "") << "an error prints nothing on stdout";
    EXPECT_NE(run.err.find(c.message), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "not one line: " << run.err;
  }
  std::filesystem::remove(not_json);
  std::filesystem::remove(gap);
}

}  // namespace
}  // namespace dso
