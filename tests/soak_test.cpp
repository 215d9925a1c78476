// `dsoffload soak` run as a user runs it on the cpu backend over a small
// model: the samples it records (where, how many, what they hold), a verdict
// that follows from those samples by the rule the tool states, and the
// refusal of counts that leave nothing to judge, before any work.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/tool_run.h"

namespace dso {
namespace {

using test::json_lines;
using test::read_all;
using test::run_tool;
using test::temp_file;
using test::ToolRun;

void expect_one_error_line(const ToolRun& r, const std::string& names) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("dsoffload: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
}

TEST(Soak, SamplesEveryIntervalAndJudgesByTheStatedRule) {
  // An odd context and batch; 11 steps sampled every 4: at 4, 8 and the last, 11.
  const std::int64_t context = 301;
  const int batch = 3, steps = 11, every = 4;
  const std::vector<std::int64_t> sampled_at{4, 8, 11};
  const std::filesystem::path json = temp_file("soak.jsonl");
  const ToolRun run = run_tool("soak --backend cpu --shape smollm2-135m --context 301 --batch 3 --steps 11 "
                               "--sample-every 4 --seed 5 --json '" + json.string() + "'");
  const std::vector<nlohmann::json> lines = json_lines(read_all(json));
  std::filesystem::remove(json);
  ASSERT_EQ(run.status, 0) << run.err;
  ASSERT_EQ(lines.size(), 2 + sampled_at.size()) << run.out;

  const nlohmann::json& head = lines.front();
  EXPECT_EQ(head["record"], "run");
  EXPECT_EQ(head["shape"], "smollm2-135m");
  EXPECT_EQ(head["policy"], "ds_offload");
  EXPECT_EQ(head["backend"], "cpu");
  EXPECT_EQ(head["context"], context);
  EXPECT_EQ(head["batch"], batch);
  EXPECT_EQ(head["steps"], steps);
  EXPECT_EQ(head["sample_every"], every);
  EXPECT_EQ(head["capacity"], context + steps);  // each step appends a token
  EXPECT_EQ(head["k"], context / 16);

  std::vector<nlohmann::json> samples(lines.begin() + 1, lines.end() - 1);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const nlohmann::json& s = samples[i];
    SCOPED_TRACE(s.dump());
    EXPECT_EQ(s["record"], "sample");
    EXPECT_EQ(s["step"], sampled_at[i]);
    EXPECT_EQ(s["cache_tokens"], context + sampled_at[i]);
    EXPECT_GT(double(s["ms_median"]), 0.0);
    EXPECT_LE(double(s["ms_median"]), double(s["ms_max"]));
    EXPECT_TRUE(s["gpu_mem_bytes"].is_null());  // no GPU on the cpu backend
    // More than the fp32 weights of 135M parameters are resident.
    EXPECT_GT(std::int64_t(s["rss_bytes"]), std::int64_t(500) << 20);
    EXPECT_GE(std::int64_t(s["peak_rss_bytes"]), std::int64_t(s["rss_bytes"]));
    EXPECT_EQ(s["finite"], true);
    EXPECT_EQ(s["nonfinite_logits"], 0);
    EXPECT_EQ(s["tokens_in_vocab"], true);
    EXPECT_EQ(s["tokens_outside_vocab"], 0);
  }

  // The verdict, recomputed from the samples by the rule --help states.
  const std::int64_t first_rss = samples.front()["rss_bytes"];
  std::int64_t growth = 0;
  for (std::size_t i = 1; i < samples.size(); ++i)
    growth = std::max(growth, std::int64_t(samples[i]["rss_bytes"]) - first_rss);
  const std::int64_t allowed = std::max<std::int64_t>(std::int64_t(16) << 20, first_rss / 100);
  const nlohmann::json& verdict = lines.back();
  EXPECT_EQ(verdict["record"], "verdict");
  EXPECT_EQ(verdict["samples"], sampled_at.size());
  EXPECT_EQ(verdict["rss_growth_bytes"], growth);
  EXPECT_NEAR(double(verdict["rss_allowed_bytes"]), double(allowed), 1.0);
  EXPECT_EQ(verdict["memory_flat"], growth <= allowed);
  EXPECT_EQ(verdict["outputs_finite"], true);
  EXPECT_EQ(verdict["pass"], growth <= allowed);
  EXPECT_TRUE(verdict["gpu_growth_bytes"].is_null());

  // stdout: a header, a row per sample, the verdict.
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 2 + std::int64_t(sampled_at.size())) << run.out;
  EXPECT_NE(run.out.find(growth <= allowed ? "verdict: PASS" : "verdict: FAIL"), std::string::npos) << run.out;
}

TEST(Soak, RefusesCountsThatLeaveNothingToJudge) {
  const std::string base = "soak --backend cpu --shape smollm2-135m --context 64 ";
  expect_one_error_line(run_tool(base + "--steps 12 --sample-every 0"), "--sample-every");
  expect_one_error_line(run_tool(base + "--steps 12 --sample-every 13"), "--sample-every 13");
  // One sample only: nothing to compare it with.
  expect_one_error_line(run_tool(base + "--steps 12 --sample-every 7"), "fewer than two samples");
  expect_one_error_line(run_tool(base + "--steps 0 --sample-every 1"), "--steps");
  expect_one_error_line(run_tool(base + "--steps 4 --sample-every 2 --batch 0"), "--batch");
  expect_one_error_line(run_tool(base + "--steps 4 --sample-every 2 --policy sparse"), "sparse");
  expect_one_error_line(run_tool("soak --backend cpu --shape small --steps 4 --sample-every 2"), "small");
  expect_one_error_line(run_tool(base + "--steps 4 --sample-every 2 --json /nonexistent-dir/soak.jsonl"),
                        "/nonexistent-dir/soak.jsonl");
}

TEST(Soak, RefusesAnEngineThatDoesNotFitBeforeAllocating) {
  // llama-3-8b at 1M tokens for 64 sequences: 8 TiB of K/V.
  expect_one_error_line(run_tool("soak --backend cpu --shape llama-3-8b --context 1M --batch 64 --steps 10 "
                                 "--sample-every 5"),
                        "host memory");
}

}  // namespace
}  // namespace dso
