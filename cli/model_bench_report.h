#pragma once
// What the model mode prints: one JSON object per line and policy on stdout
// with the fields of DESIGN.md §5 (a contract) and more, a table on stderr.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "offload/engine.h"

namespace dso::cli {

struct ModelBenchResult {
  std::string device;
  std::string backend;
  Policy policy;
  std::string shape;  // the built-in name, or the GGUF file's
  bool dummy = true;
  bool synthetic_fill = true;
  DType dtype = DType::f16;
  std::int64_t context = 0;
  int batch = 1;
  std::int64_t k = 0;  // at the filled context; 0 for dense policies
  int r = 0;           // 0 for dense policies
  TokenBudget budget;
  std::uint64_t seed = 0;
  int steps = 0;
  int warmup = 0;
  std::int64_t weight_bytes = 0;
  std::int64_t gpu_mem_bytes = 0;   // weights, working buffers and the engine's GPU part
  std::int64_t host_mem_bytes = 0;  // the engine's host part
  double ms_per_step = 0;           // median
  std::int64_t h2d_bytes_per_step = 0;
  std::optional<double> pcie_h2d_GBps;
  double alloc_s = 0;  // creating the engine
  double fill_s = 0;   // filling the context
  int threads = 1;          // of the cpu backend's operations
  double first_step_ms = 0;  // the first decode step after the fill, warm-up or not

  // Where the fill is a prefill through the model (real weights): its rate
  // over every sequence, and the time to the first generated token, which
  // the first decode step gives after every sequence's prefill.
  double prefill_tokens_per_s() const { return double(context) * batch / fill_s; }
  double ttft_ms() const { return fill_s * 1e3 + first_step_ms; }
};

void print_model_json_line(const ModelBenchResult& r);
void print_model_table(const std::vector<ModelBenchResult>& results);

}  // namespace dso::cli
