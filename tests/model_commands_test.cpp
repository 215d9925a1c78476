// The generate and perplexity subcommands, run as a user runs them, on the
// real SmolLM2 model (skipped when the file is absent) with the cpu backend.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/gguf_weights.h"
#include "model/perplexity.h"
#include "model/tokenizer.h"
#include "support/smollm2.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

struct ToolRun {
  int status = -1;
  std::string out;
  std::string err;
};

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("dso_" + std::to_string(::getpid()) + "_" + name);
}

std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ToolRun run_tool(const std::string& arguments) {
  const std::filesystem::path err = temp_file("stderr.txt");
  const std::string command = std::string("'") + DSO_TOOL_PATH + "' " + arguments + " 2>'" + err.string() + "'";
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

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

constexpr const char* kText =
    "The old lighthouse stood on a rock at the mouth of the harbour. Every night its keeper climbed the stairs, "
    "lit the lamp and watched the ships come home through the fog.";

using ModelCommands = test::SmolLM2File;

TEST_F(ModelCommands, PerplexityPrintsOneLinePerPolicyWithTheLibrarysNumber) {
  const std::filesystem::path text = temp_file("text.txt");
  std::ofstream(text) << kText;
  const ToolRun run = run_tool("perplexity --model '" + test::smollm2_path() + "' --text '" + text.string() +
                               "' --context 16 --max-windows 1 --backend cpu --policy dense_gpu,ds_offload --k 4 "
                               "--sink 2 --recent 2");
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
