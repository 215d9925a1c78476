#pragma once
// What `dsoffload soak` records: a sample of memory, time and output health
// every so many decode steps, and the verdict over all of them. JSON lines
// ("record": "run", "sample" or "verdict") for files, a table and a verdict
// line for people.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dso::cli {

struct SoakSample {
  std::int64_t step = 0;  // decode steps done
  std::string date;
  double ms_median = 0;   // over the steps since the previous sample
  double ms_max = 0;
  std::optional<std::int64_t> gpu_mem_bytes;  // cuda only: the device's memory in use
  std::int64_t rss_bytes = 0;
  std::int64_t peak_rss_bytes = 0;
  std::int64_t cache_tokens = 0;  // the engine's tokens per sequence
  std::int64_t nonfinite_logits = 0;  // over the interval
  std::int64_t tokens_outside_vocab = 0;  // greedy tokens not in [0, vocab) over the interval

  bool finite() const { return nonfinite_logits == 0; }
  bool tokens_in_vocab() const { return tokens_outside_vocab == 0; }
};

// The first sample ends the warm-up: later ones are compared with it. GPU
// memory in use must not grow at all (the engine allocates everything up
// front); the resident set may grow by max(16 MiB, 1% of the first sample's),
// room for the allocator's and the C++ runtime's bookkeeping.
constexpr std::int64_t kRssGrowthFloorBytes = std::int64_t(16) << 20;
constexpr double kRssGrowthFraction = 0.01;

struct SoakVerdict {
  std::optional<std::int64_t> gpu_growth_bytes;  // largest growth over the first sample; cuda only
  std::int64_t rss_growth_bytes = 0;
  std::int64_t rss_allowed_bytes = 0;
  bool memory_flat = true;
  bool outputs_finite = true;
  bool tokens_in_vocab = true;

  bool pass() const { return memory_flat && outputs_finite && tokens_in_vocab; }
};

// Needs two samples at least.
SoakVerdict judge_soak(const std::vector<SoakSample>& samples);

nlohmann::ordered_json sample_json(const SoakSample& s);
nlohmann::ordered_json verdict_json(const SoakVerdict& v, std::int64_t samples);

// The table on stdout, a row per sample as it comes.
void print_sample_header();
void print_sample_row(const SoakSample& s);
// "verdict: PASS (...)" or "verdict: FAIL (...)", naming what failed.
std::string verdict_text(const SoakVerdict& v);

}  // namespace dso::cli
