// The generate and perplexity subcommands, run as a user runs them, on the
// real SmolLM2 model (skipped when the file is absent) with the cpu backend.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cpu/parallel.h"
#include "model/decoder.h"
#include "model/gguf_weights.h"
#include "model/perplexity.h"
#include "model/tokenizer.h"
#include "support/smollm2.h"
#include "support/tiny_llama.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::json_lines;
using test::run_tool;
using test::temp_file;
using test::ToolRun;

constexpr const char* kText =
    "The old lighthouse stood on a rock at the mouth of the harbour. Every night its keeper climbed the stairs, "
    "lit the lamp and watched the ships come home through the fog.";

using ModelCommands = test::SmolLM2File;

TEST_F(ModelCommands, PerplexityPrintsOneLinePerPolicyWithTheLibrarysNumber) {
  const std::filesystem::path text = temp_file("text.txt");
  std::ofstream(text) << kText;
  const ToolRun run = run_tool("perplexity --model '" + test::smollm2_path() + "' --text '" + text.string() +
                               "' --context 16 --max-windows 1 --backend cpu --policy dense_gpu,ds_offload --k 4 "
                               "--sink 2 --recent 2 --threads 2");
  std::filesystem::remove(text);
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["weights"], "real");
    EXPECT_EQ(j["backend"], "cpu");
    EXPECT_EQ(j["context"], 16);
    EXPECT_EQ(j["tokens_scored"], 15);
    EXPECT_EQ(j["method"], "decode");
    EXPECT_EQ(j["threads"], 2);
    EXPECT_TRUE(std::isfinite(j["perplexity"].get<double>()));
  }
  EXPECT_EQ(lines[0]["policy"], "dense_gpu");
  EXPECT_TRUE(lines[0]["k"].is_null());
  EXPECT_EQ(lines[1]["policy"], "ds_offload");
  EXPECT_EQ(lines[1]["k"], 4);
  EXPECT_EQ(lines[1]["r"], 64 / 16);

  // The dense number is the library's on the same tokens.
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const std::vector<std::int32_t> tokens = tokenizer.encode(kText);
  const auto source = gguf_weights(file());
  const auto decoder = make_decoder(*source, test::decoder_options(Policy::dense_gpu, DType::f16, 1, 16));
  const PerplexityResult r = perplexity(*decoder, tokens, {16, 0, 1});
  EXPECT_NEAR(lines[0]["perplexity"].get<double>(), r.perplexity(), 1e-9 * r.perplexity());
}

TEST_F(ModelCommands, GenerateStreamsTextAndSummarisesOnStderr) {
  const ToolRun run = run_tool("generate --model '" + test::smollm2_path() +
                               "' --prompt 'Name three colours.' --max-new 8 --backend cpu --policy ds_gpu --k 8");
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_FALSE(run.out.empty());
  const std::vector<nlohmann::json> lines = json_lines(run.err);
  ASSERT_EQ(lines.size(), 1u) << run.err;
  const nlohmann::json& j = lines[0];
  EXPECT_EQ(j["weights"], "real");
  EXPECT_EQ(j["policy"], "ds_gpu");
  EXPECT_EQ(j["threads"], cpu::available_cores());  // the default
  EXPECT_GE(j["new_tokens"].get<int>(), 1);
  EXPECT_LE(j["new_tokens"].get<int>(), 8);
  EXPECT_GT(j["prompt_tokens"].get<int>(), 5);
}

TEST(ModelCommandsWithoutAModel, RefuseAnUnknownModelWithStatusTwo) {
  const ToolRun run = run_tool("generate --model no-such-model --prompt hi --backend cpu");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.err.find("no-such-model"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("llama-3-8b"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace dso
