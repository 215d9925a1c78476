// `dsoffload --version`, and the record of the run (version, git commit and
// tree state, build type, UTC date, command line) in the JSON output of every
// subcommand that writes some. eval and passkey are checked where their other
// fields are (eval_commands_test.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/run_record.h"
#include "support/smollm2.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::expect_run_record;
using test::json_lines;
using test::run_tool;
using test::ToolRun;

TEST(Version, NamesTheVersionCommitAndBuildType) {
  const ToolRun run = run_tool("--version");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::string prefix = "dsoffload 0.1.0 (commit ";
  ASSERT_EQ(run.out.rfind(prefix, 0), 0u) << run.out;
  const std::string commit = run.out.substr(prefix.size(), run.out.find(',') - prefix.size());
  if (test::source_commit().empty()) {
    EXPECT_EQ(run.out, prefix + "unknown, tree state unknown; " DSO_BUILD_TYPE " build)\n");
  } else {
    EXPECT_TRUE(test::built_from_this_tree(commit)) << run.out;
    const std::string rest = run.out.substr(run.out.find(','));
    const std::string build = std::string("; ") + DSO_BUILD_TYPE + " build)\n";
    EXPECT_TRUE(rest == ", clean" + build || rest == ", with uncommitted changes" + build) << run.out;
  }
}

TEST(RunRecord, BenchBothModes) {
  for (const std::string args : {"bench --backend cpu --attention-only --context 256 --steps 2 --warmup 0 "
                                 "--policy dense_gpu,ds_gpu",
                                 "bench --backend cpu --shape smollm2-135m --context 64 --steps 2 --warmup 0 "
                                 "--policy dense_gpu,ds_offload"}) {
    const ToolRun run = run_tool(args);
    ASSERT_EQ(run.status, 0) << run.err;
    const std::vector<nlohmann::json> lines = json_lines(run.out);
    ASSERT_EQ(lines.size(), 2u) << run.out;
    for (const nlohmann::json& j : lines) expect_run_record(j, args);
  }
}

TEST(RunRecord, SoakRunLine) {
  const std::filesystem::path json = test::temp_file("run_record_soak.jsonl");
  const std::string args = "soak --backend cpu --shape smollm2-135m --context 64 --steps 4 --sample-every 2 --json " +
                           json.string();
  const ToolRun run = run_tool(args);
  const std::vector<nlohmann::json> lines = json_lines(test::read_all(json));
  std::filesystem::remove(json);
  ASSERT_EQ(run.status, 0) << run.err;
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front()["record"], "run");
  expect_run_record(lines.front(), args);
}

// Plain English of our own, long enough for a few windows of 32 tokens.
constexpr const char* kText =
    "The lighthouse keeper climbed the stairs every evening at dusk, trimmed the wick, and polished the great "
    "lens until it shone. Ships passing in the night saw the beam sweep across the water and knew the rocks were "
    "near. In the winter storms he stayed awake until dawn, listening to the waves break against the cliffs below.";

class RunRecordModel : public test::SmolLM2File {
 protected:
  void SetUp() override {
    test::SmolLM2File::SetUp();
    if (IsSkipped()) return;
    std::ofstream(text_) << kText << "\n" << kText << "\n";
  }
  void TearDown() override {
    std::filesystem::remove(text_);
    std::filesystem::remove(config_);
  }
  const std::filesystem::path text_ = test::temp_file("run_record_text.txt");
  const std::filesystem::path config_ = test::temp_file("run_record_channels.json");
};

TEST_F(RunRecordModel, GeneratePerplexitySpecAccuracyCalibrate) {
  const std::string model = "--model " + test::smollm2_path() + " --backend cpu ";
  const std::string text = "--text " + text_.string();
  struct Case {
    std::string args;
    bool on_stderr;  // generate streams text on stdout, its summary on stderr
  };
  for (const Case& c : std::vector<Case>{
           {"generate " + model + "--prompt Hello --max-new 2", true},
           {"perplexity " + model + text + " --context 32 --max-windows 1", false},
           {"spec-accuracy " + model + text + " --context 48 --steps 4", false},
           {"calibrate " + model + text + " --out " + config_.string() + " --tokens 32 --block 32", false},
       }) {
    const ToolRun run = run_tool(c.args);
    ASSERT_EQ(run.status, 0) << c.args << ": " << run.err;
    std::vector<nlohmann::json> lines = json_lines(c.on_stderr ? run.err.substr(run.err.rfind("\n{") + 1) : run.out);
    ASSERT_FALSE(lines.empty()) << c.args;
    for (const nlohmann::json& j : lines) expect_run_record(j, c.args);
  }
}

}  // namespace
}  // namespace dso
