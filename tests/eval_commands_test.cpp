// calibrate, eval and passkey run as a user runs them, on the real SmolLM2
// model (skipped when the file is absent) with the cpu backend, at sizes that
// take seconds: the config calibrate writes loads back; eval prints every
// field its readers rely on, one line per setting, and its dense number is
// the perplexity command's on the same windows; passkey answers every setting.
// And the committed SmolLM2 channel config, decoded twice under ds_gpu, gives
// the same logits bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calibration/channel_config.h"
#include "calibration/label_selection.h"
#include "model/decoder.h"
#include "model/gguf_weights.h"
#include "model/tokenizer.h"
#include "support/run_record.h"
#include "support/smollm2.h"
#include "support/tiny_llama.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::json_lines;
using test::run_tool;
using test::temp_file;

// Plain English of our own, long enough for two windows of 64 tokens.
constexpr const char* kText =
    "The river ran slowly past the mill, and the miller's daughter watched the water turn the great wheel. "
    "In the spring the meadows flooded, and the village children sailed paper boats between the willows. "
    "Her father kept a ledger of every sack of grain he ground, and at the end of each month he walked to the "
    "market town to settle his accounts with the merchants. One autumn a stranger arrived with a cart of tools "
    "and asked for work; he stayed for the winter, mended the roof of the barn, and taught the daughter to read "
    "the stars. When he left in the spring he gave her a small brass compass, and she kept it all her life.";

class EvalCommands : public test::SmolLM2File {
 protected:
  void SetUp() override {
    test::SmolLM2File::SetUp();
    if (IsSkipped()) return;
    text_ = temp_file("text.txt");
    std::ofstream(text_) << kText << "\n" << kText << "\n";
    config_ = temp_file("channels.json");
  }
  void TearDown() override {
    std::filesystem::remove(text_);
    std::filesystem::remove(config_);
  }

  std::string model() const { return "'" + test::smollm2_path() + "'"; }

  // A channel config from the tool itself.
  void calibrate() {
    const test::ToolRun run = run_tool("calibrate --model " + model() + " --text '" + text_.string() + "' --out '" +
                                       config_.string() + "' --tokens 96 --block 48 --backend cpu");
    ASSERT_EQ(run.status, 0) << run.err;
    const std::vector<nlohmann::json> lines = json_lines(run.out);
    ASSERT_EQ(lines.size(), 1u) << run.out;
    EXPECT_EQ(lines[0]["tokens"], 96);
    EXPECT_EQ(lines[0]["block"], 48);
    EXPECT_NE(run.err.find("calibrate"), std::string::npos) << "no progress on stderr: " << run.err;
  }

  std::filesystem::path text_, config_;
};

TEST_F(EvalCommands, CalibrateWritesAConfigThatLoadsBack) {
  calibrate();
  const calibration::ChannelConfig config = calibration::load_channel_config(config_);
  const AttentionShape shape = llama_config_from_gguf(file()).attention();
  calibration::validate_channel_config(config, shape);
  for (const char* projection : {"q_proj", "k_proj", "qk_proj"}) {
    ASSERT_TRUE(config.projections.count(projection)) << projection;
    EXPECT_EQ(config.projections.at(projection).channels, shape.head_dim) << projection;
  }
  const test::ToolRun inspect = run_tool("inspect-config '" + config_.string() + "'");
  EXPECT_EQ(inspect.status, 0) << inspect.err;
}

TEST_F(EvalCommands, EvalPrintsEveryFieldAndTheDenseNumberOfPerplexity) {
  calibrate();
  const std::filesystem::path markdown = temp_file("eval.md"), jsonl = temp_file("eval.jsonl");
  const test::ToolRun run =
      run_tool("eval --model " + model() + " --channels '" + config_.string() + "' --text '" + text_.string() +
               "' --context 64 --windows 2 --score-tokens 5 --budgets 4 --channel-divisors 16,8 --stats qk "
               "--backend cpu --markdown '" + markdown.string() + "' --json '" + jsonl.string() +
               "'");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  // dense; per channel count: calibrated qk, random, SparQ; then ds_offload.
  ASSERT_EQ(lines.size(), 1u + 2 * 3 + 1) << run.out;
  EXPECT_EQ(test::read_all(jsonl), run.out);
  for (const nlohmann::json& j : lines) {
    for (const char* field : {"date", "device", "backend", "version", "git_commit", "git_dirty", "build_type",
                              "command", "model", "weights", "dtype",
                              "context", "windows", "score_tokens", "prefix_tokens", "sink", "recent", "setting",
                              "policy", "selector", "labels", "stat", "k", "budget", "r", "channels", "perplexity",
                              "nll_per_token", "perplexity_ratio_to_dense", "tokens_scored", "seconds"})
      EXPECT_TRUE(j.contains(field)) << field << " missing from " << j.dump();
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_TRUE(test::source_commit().empty() ? j["git_commit"] == "unknown" : test::built_from_this_tree(j["git_commit"]))
        << j["git_commit"];
    EXPECT_EQ(j["tokens_scored"], 2 * 5);
    EXPECT_EQ(j["sink"], 0);
    EXPECT_TRUE(std::isfinite(j["perplexity"].get<double>()));
  }
  EXPECT_EQ(lines[0]["setting"], "dense");
  EXPECT_TRUE(lines[0]["k"].is_null());
  EXPECT_EQ(lines[1]["setting"], "ds_gpu");
  EXPECT_EQ(lines[1]["k"], 16);
  EXPECT_EQ(lines[1]["r"], 4);
  EXPECT_EQ(lines[1]["stat"], "qk");
  EXPECT_EQ(lines[2]["labels"], "random");
  EXPECT_EQ(lines[3]["selector"], "sparq");
  EXPECT_EQ(lines.back()["policy"], "ds_offload");
  const std::string md = test::read_all(markdown);
  EXPECT_NE(md.find("| calibrated qk |"), std::string::npos) << md;
  EXPECT_NE(md.find("- git_commit: " + lines[0]["git_commit"].get<std::string>() + "\n"), std::string::npos) << md;
  std::filesystem::remove(markdown);
  std::filesystem::remove(jsonl);

  const test::ToolRun plain = run_tool("perplexity --model " + model() + " --text '" + text_.string() +
                                       "' --context 64 --prefill 58 --max-windows 2 --batch 2 --backend cpu");
  ASSERT_EQ(plain.status, 0) << plain.err;
  const std::vector<nlohmann::json> plain_lines = json_lines(plain.out);
  ASSERT_EQ(plain_lines.size(), 1u);
  EXPECT_EQ(plain_lines[0]["perplexity"].get<double>(), lines[0]["perplexity"].get<double>());
}

TEST_F(EvalCommands, PasskeyAnswersUnderEverySetting) {
  calibrate();
  const test::ToolRun run = run_tool("passkey --model " + model() + " --channels '" + config_.string() +
                                     "' --contexts 160 --depths 0.5 --trials 1 --budgets 8 --channel-divisors 16,4 "
                                     "--max-new 8 --backend cpu");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  for (const nlohmann::json& j : lines) {
    for (const char* field : {"date", "device", "command", "version", "git_commit", "git_dirty", "setting", "context", "prompt_tokens", "depth", "key",
                              "answer", "correct"})
      EXPECT_TRUE(j.contains(field)) << field << " missing from " << j.dump();
    EXPECT_LE(j["prompt_tokens"].get<int>(), 160 - 8);
    EXPECT_EQ(j["key"], lines[0]["key"]);
  }
  EXPECT_EQ(lines[0]["setting"], "dense");
  EXPECT_EQ(lines[1]["k"], 20);
  EXPECT_NE(run.err.find("| dense |"), std::string::npos) << run.err;
}

using CommittedConfig = test::SmolLM2File;

// The shipped calibration, run twice with fresh decoders, decodes alike to the bit.
TEST_F(CommittedConfig, DsGpuGreedyDecodingIsReproducibleBitForBit) {
  const std::string path = std::string(DSO_SOURCE_DIR) + "/calibration/configs/SmolLM2-135M-Instruct.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent: run scripts/eval_smollm2.sh";
  const auto source = gguf_weights(file());
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const std::vector<std::int32_t> prompt = tokenizer.encode(kText);
  DecoderOptions o = test::decoder_options(Policy::ds_gpu, DType::f16, 1, std::int64_t(prompt.size()) + 8);
  o.engine.budget.k = 16;
  o.engine.channels = calibration::label_channels_from_config(calibration::load_channel_config(path),
                                                              source->config().attention(), calibration::Statistic::qk,
                                                              16);
  std::vector<std::vector<float>> logits[2];
  for (auto& run : logits) {
    const auto decoder = make_decoder(*source, o);
    decoder->prefill(0, std::span(prompt).first(prompt.size() - 1));
    std::vector<std::int32_t> next{prompt.back()};
    for (int step = 0; step < 8; ++step) {
      decoder->decode(next);
      run.push_back(decoder->logits());
      next = decoder->greedy_tokens();
    }
  }
  for (std::size_t step = 0; step < logits[0].size(); ++step)
    EXPECT_EQ(std::memcmp(logits[0][step].data(), logits[1][step].data(), logits[0][step].size() * sizeof(float)), 0)
        << "step " << step;
}

}  // namespace
}  // namespace dso
