// generate's prompt and sampling, on the real SmolLM2 model (skipped when the
// file is absent) with the cpu backend: the prompt wrapped as the model's own
// chat template wraps it (its default system turn included), sampling that a
// seed reproduces and that top-k 1 or a tiny top-p turns back into greedy
// decoding, options out of range refused, and the short flags; and
// perplexity's context taking the size suffixes bench's does.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "support/smollm2.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::json_lines;
using test::run_tool;
using test::ToolRun;

class GenerateOptions : public test::SmolLM2File {
 protected:
  // -m, -p and -n: the short flags.
  static ToolRun generate(const std::string& options) {
    return run_tool("generate -m '" + test::smollm2_path() + "' -p 'Name three colours.' --backend cpu " + options);
  }
  static nlohmann::json summary(const ToolRun& run) {
    const std::vector<nlohmann::json> lines = json_lines(run.err);
    return lines.size() == 1 ? lines[0] : nlohmann::json();
  }
  std::size_t tokens(const std::string& text) const {
    const Tokenizer tokenizer = Tokenizer::from_gguf(file());
    return tokenizer.encode(text, {false, true}).size() + (tokenizer.adds_bos() && tokenizer.bos() ? 1 : 0);
  }
};

// SmolLM2's tokenizer.chat_template inserts this system turn when a
// conversation has none, as llama.cpp and transformers apply it.
constexpr const char* kTemplateSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

TEST_F(GenerateOptions, PromptIsWrappedAsTheModelsChatTemplateWrapsIt) {
  const ToolRun run = generate("-n 1");
  ASSERT_EQ(run.status, 0) << run.err;
  const nlohmann::json j = summary(run);
  EXPECT_EQ(j["chat_template"], "ChatML with the template's system turn") << run.err;
  EXPECT_EQ(j["prompt_tokens"].get<std::size_t>(),
            tokens(std::string("<|im_start|>system\n") + kTemplateSystem +
                   "<|im_end|>\n<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"));

  const ToolRun own = generate("-n 1 --system 'Answer briefly.'");
  ASSERT_EQ(own.status, 0) << own.err;
  EXPECT_EQ(summary(own)["chat_template"], "ChatML");
  EXPECT_EQ(summary(own)["prompt_tokens"].get<std::size_t>(),
            tokens("<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nName three colours.<|im_end|>\n"
                   "<|im_start|>assistant\n"));
}

TEST_F(GenerateOptions, SamplingIsSeededAndNarrowsToGreedy) {
  const ToolRun greedy = generate("-n 12 --ignore-eos");
  ASSERT_EQ(greedy.status, 0) << greedy.err;
  EXPECT_EQ(summary(greedy)["sampling"], "greedy");
  const ToolRun a = generate("-n 12 --ignore-eos --temperature 1.5 --seed 11");
  const ToolRun b = generate("-n 12 --ignore-eos --temperature 1.5 --seed 11");
  const ToolRun c = generate("-n 12 --ignore-eos --temperature 1.5 --seed 12");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(summary(a)["sampling"], "sampled");
  EXPECT_EQ(summary(a)["seed"], 11);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out) << "two seeds drew the same 12 tokens at temperature 1.5";
  EXPECT_NE(a.out, greedy.out);
  // Only the most likely token left to draw: greedy decoding again.
  EXPECT_EQ(generate("-n 12 --ignore-eos --temperature 1.5 --seed 11 --top-k 1").out, greedy.out);
  EXPECT_EQ(generate("-n 12 --ignore-eos --temperature 1.5 --seed 11 --top-p 1e-9").out, greedy.out);
}

TEST_F(GenerateOptions, SamplingOptionsOutOfRangeAreRefused) {
  for (const auto& [options, named] : std::vector<std::pair<std::string, std::string>>{
           {"--temperature -1", "--temperature"}, {"--top-k -2", "--top-k"}, {"--top-p 0", "--top-p"},
           {"--top-p 1.5", "--top-p"}}) {
    const ToolRun run = generate(options);
    EXPECT_EQ(run.status, 2) << options;
    EXPECT_EQ(run.err.rfind("dsoffload: error: " + named, 0), 0u) << run.err;
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << run.err;
  }
}

TEST_F(GenerateOptions, PerplexityContextTakesSizeSuffixes) {
  const std::filesystem::path text = test::temp_file("suffix_text.txt");
  std::ofstream(text) << "The tide came in over the sand and the gulls rose from the rocks, crying.\n";
  const std::string base = "perplexity -m '" + test::smollm2_path() + "' --backend cpu --text '" + text.string() + "' ";
  const ToolRun run = run_tool(base + "-c 1K");
  const ToolRun bad = run_tool(base + "--context 1X");
  std::filesystem::remove(text);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(json_lines(run.out).size(), 1u);
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.err, "dsoffload: error: --context: '1X' is not a token count (e.g. 4096, 16K, 1M) (see --help)\n");
}

}  // namespace
}  // namespace dso
