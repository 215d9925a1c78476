// `dsoffload bench` in its model mode, run as a user runs it on the cpu
// backend: whole decode steps of a small model under several policies, every
// field of the output contract, and the refusal of a run that does not fit,
// before anything is allocated.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/smollm2.h"
#include "support/tool_run.h"

namespace dso {
namespace {

using test::json_lines;
using test::run_tool;
using test::ToolRun;

// The fields users' scripts read, both modes alike.
const char* const kContractFields[] = {"device",        "policy",      "shape",       "weights",
                                       "context",       "batch",       "k",           "r",
                                       "ms_per_step",   "tokens_per_s", "h2d_bytes_per_step", "h2d_GBps",
                                       "pcie_h2d_GBps", "gpu_mem_bytes", "host_mem_bytes", "pcie_floor_ms",
                                       "floor_ratio",   "steps",       "warmup",      "date",
                                       "mode",          "fill",        "ms_per_step_min", "ms_per_step_max"};

// K and V of every layer for `tokens` tokens of one sequence, 16-bit.
std::int64_t kv_bytes(int layers, int kv_heads, int head_dim, std::int64_t tokens) {
  return 2 * std::int64_t(layers) * kv_heads * head_dim * 2 * tokens;
}

TEST(ModelBench, DummyModelPrintsEveryContractFieldPerPolicy) {
  // An odd context and batch; smollm2-135m: 30 layers, 3 KV heads of 64.
  const std::int64_t context = 301;
  const int batch = 2, steps = 3, warmup = 1;
  const ToolRun run = run_tool("bench --backend cpu --shape smollm2-135m --context 301 --batch 2 --steps 3 "
                               "--warmup 1 --seed 7 --policy flexgen,ds_offload,dense_gpu");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  // ds_offload not first: the decoder is made for it, then its engine replaced.
  const char* const policies[] = {"flexgen", "ds_offload", "dense_gpu"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json& j = lines[i];
    for (const char* field : kContractFields) EXPECT_TRUE(j.contains(field)) << "missing " << field << ": " << j;
    EXPECT_EQ(j["policy"], policies[i]);
    EXPECT_EQ(j["shape"], "smollm2-135m");
    EXPECT_EQ(j["weights"], "dummy");
    EXPECT_EQ(j["fill"], "synthetic");
    EXPECT_EQ(j["mode"], "model");
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_EQ(j["context"], context);
    EXPECT_EQ(j["batch"], batch);
    EXPECT_EQ(j["steps"], steps);
    EXPECT_EQ(j["warmup"], warmup);
    EXPECT_TRUE(j["pcie_h2d_GBps"].is_null());  // nothing to measure without a GPU
    // A synthetic fill is no prefill: neither rate nor time to first token.
    EXPECT_TRUE(j["prefill_tokens_per_s"].is_null()) << j;
    EXPECT_TRUE(j["ttft_ms"].is_null()) << j;
    const double ms = j["ms_per_step"];
    EXPECT_GT(ms, 0.0);
    EXPECT_NEAR(double(j["tokens_per_s"]), batch * 1e3 / ms, 1e-9 * batch * 1e3 / ms);
    EXPECT_GT(std::int64_t(j["host_mem_bytes"]) + std::int64_t(j["gpu_mem_bytes"]),
              batch * kv_bytes(30, 3, 64, context));
  }
  // ds_offload selects k = context / 16 tokens per head with r = 64 / 16 labels;
  // flexgen fetches every cached token of every layer, the one being decoded
  // aside; dense_gpu fetches nothing.
  EXPECT_EQ(lines[1]["k"], context / 16);
  EXPECT_EQ(lines[1]["r"], 4);
  const std::int64_t flexgen_h2d = lines[0]["h2d_bytes_per_step"];
  EXPECT_GE(flexgen_h2d, batch * kv_bytes(30, 3, 64, context));
  EXPECT_LE(flexgen_h2d, batch * kv_bytes(30, 3, 64, context + warmup + steps));
  EXPECT_GT(std::int64_t(lines[1]["h2d_bytes_per_step"]), 0);
  EXPECT_LT(std::int64_t(lines[1]["h2d_bytes_per_step"]), flexgen_h2d / 4);
  EXPECT_EQ(lines[2]["h2d_bytes_per_step"], 0);
  EXPECT_NE(run.err.find("filled"), std::string::npos) << run.err;
}

TEST(ModelBench, RefusesARunThatDoesNotFitBeforeAllocating) {
  // llama-3-8b at 1M tokens for 64 sequences: 8 TiB of K/V.
  const auto start = std::chrono::steady_clock::now();
  const ToolRun run = run_tool("bench --backend cpu --shape llama-3-8b --context 1M --batch 64 --policy ds_offload");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
  EXPECT_NE(run.err.find("host memory"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("filled"), std::string::npos) << run.err;
  EXPECT_LT(seconds, 5.0) << "the refusal came after work";  // 32 GB of fp32 weights were not made
}

TEST(ModelBench, ContextTakesSuffixes) {
  const ToolRun run = run_tool("bench --backend cpu --attention-only --context 2K --steps 2 --warmup 0 "
                               "--policy dense_gpu");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["context"], 2048);
  EXPECT_EQ(run_tool("bench --backend cpu --attention-only --context 2X").status, 2);
}

std::vector<std::string> keys(const nlohmann::json& j) {
  std::vector<std::string> names;
  for (const auto& item : j.items()) names.push_back(item.key());
  return names;
}

// The row of `policy` in a table printed on stderr.
std::string table_row(const std::string& err, const std::string& policy) {
  const std::size_t at = err.find("\n" + policy + " ");
  return at == std::string::npos ? std::string() : err.substr(at + 1, err.find('\n', at + 1) - at - 1);
}

TEST(ModelBench, BothModesWriteTheSameKeysAndTheSpreadOfTheSteps) {
  const ToolRun attention = run_tool("bench --backend cpu --attention-only --context 256 --steps 5 --warmup 0 "
                                     "--policy ds_gpu");
  const ToolRun model = run_tool("bench --backend cpu --shape smollm2-135m -c 64 --steps 5 --warmup 0 "
                                 "--policy ds_offload");
  ASSERT_EQ(attention.status, 0) << attention.err;
  ASSERT_EQ(model.status, 0) << model.err;
  const std::vector<nlohmann::json> a = json_lines(attention.out), m = json_lines(model.out);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(keys(a[0]), keys(m[0]));
  EXPECT_EQ(a[0]["mode"], "attention");
  EXPECT_EQ(m[0]["mode"], "model");
  EXPECT_TRUE(a[0]["weight_bytes"].is_null());  // what the attention mode does not have
  EXPECT_TRUE(m[0]["ms_select"].is_null());     // what the model mode does not time
  for (const nlohmann::json& j : {a[0], m[0]}) {
    EXPECT_EQ(j["steps"], 5);  // the repetitions behind the median
    EXPECT_LE(j["ms_per_step_min"].get<double>(), j["ms_per_step"].get<double>()) << j;
    EXPECT_LE(j["ms_per_step"].get<double>(), j["ms_per_step_max"].get<double>()) << j;
    EXPECT_TRUE(j["pcie_floor_ms"].is_null());  // no rate measured without a GPU
  }
  EXPECT_NE(attention.err.find("median (min, max) of 5 steps"), std::string::npos) << attention.err;
  EXPECT_NE(model.err.find("median (min, max) of 5 steps"), std::string::npos) << model.err;
  // The table says "-" where the JSON has null, not a floor of 0.
  const std::string row = table_row(model.err, "ds_offload");
  ASSERT_FALSE(row.empty()) << model.err;
  EXPECT_NE(row.find(" - "), std::string::npos) << row;
  EXPECT_EQ(row.find("0.000 "), std::string::npos) << row;
}

TEST(ModelBench, CpuDefaultContextIsSmallAndSaid) {
  const ToolRun run = run_tool("bench --backend cpu --shape smollm2-135m --steps 1 --warmup 0 --policy dense_gpu");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["context"], 2048);
  EXPECT_NE(run.err.find("context: 2048 tokens, the cpu backend's default (--context to choose another)"),
            std::string::npos)
      << run.err;
}

using ModelBenchReal = test::SmolLM2File;

TEST_F(ModelBenchReal, PrefillsOnceWithProgressAndReplaysIntoEveryPolicy) {
  const ToolRun run = run_tool("bench --backend cpu -m '" + test::smollm2_path() +
                               "' -c 48 --batch 2 --steps 2 --warmup 0 --policy ds_offload,flexgen,dense_gpu");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["fill"], "prefill");
  EXPECT_EQ(lines[1]["fill"], "replayed prefill");
  EXPECT_EQ(lines[2]["fill"], "replayed prefill");
  const std::string once = "prefill through the model: 2 x 48 tokens";
  const std::size_t at = run.err.find(once);
  EXPECT_NE(at, std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(once, at + 1), std::string::npos) << "prefilled more than once: " << run.err;
  EXPECT_NE(run.err.find("prefill 100%"), std::string::npos) << "no progress: " << run.err;
  // Replayed, the caches hold what the prefill left: flexgen fetches all of it.
  EXPECT_GE(lines[1]["h2d_bytes_per_step"].get<std::int64_t>(), 2 * kv_bytes(30, 3, 64, 48));
}

TEST_F(ModelBenchReal, RealWeightsFillByPrefill) {
  const ToolRun run = run_tool("bench --backend cpu --model '" + test::smollm2_path() +
                               "' --context 40 --steps 2 --warmup 1 --policy ds_offload --threads 3");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<nlohmann::json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json& j = lines[0];
  for (const char* field : kContractFields) EXPECT_TRUE(j.contains(field)) << field;
  EXPECT_EQ(j["weights"], "real");
  EXPECT_EQ(j["fill"], "prefill");
  EXPECT_EQ(j["context"], 40);
  EXPECT_EQ(j["threads"], 3);
  // The 40 tokens were prefilled in fill_s; the first token comes one decode
  // step later (of a 41-token context: well under a minute).
  const double fill_s = j["fill_s"], rate = j["prefill_tokens_per_s"], ttft_ms = j["ttft_ms"];
  EXPECT_NEAR(rate, 40 / fill_s, 1e-9 * rate);
  EXPECT_GT(ttft_ms, fill_s * 1e3);
  EXPECT_LT(ttft_ms, fill_s * 1e3 + 60e3);
  EXPECT_NE(run.err.find("prefill tok/s"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("TTFT"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace dso
