#pragma once
// What `dsoffload bench` prints: one JSON object per line and policy on
// stdout, with the field names of docs/architecture.md (a contract users' scripts
// read), and a table for people on stderr, so that stdout stays parseable.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "offload/engine.h"

namespace dso::cli {

struct BenchResult {
  std::string device;
  std::string backend;
  Policy policy;
  std::string shape_name;
  AttentionShape shape;
  DType dtype;
  std::int64_t context;
  int batch;
  std::int64_t k;
  int r;
  TokenBudget budget;
  std::uint64_t seed;
  int steps;
  int warmup;
  MemoryPlan plan;
  // Medians over the timed steps.
  double ms_per_step;
  bool phases_timed;  // the cuda backend times phases only when asked
  double ms_select;
  double ms_fetch;
  double ms_attend;
  std::int64_t h2d_bytes_per_step;
  std::int64_t tokens_selected_per_step;
  std::optional<double> pcie_h2d_GBps;  // measured in the same run; none on the cpu backend
};

void print_json_line(const BenchResult& r);
void print_table(const std::vector<BenchResult>& results);

}  // namespace dso::cli
