#pragma once
// The JSON line of a decode benchmark, written for both modes of `dsoffload
// bench` (whole model steps, attention engine alone) by one function, so that
// the two have the same keys in the same order, a field that one mode does
// not measure being null there, and agree on what tokens/s, the H2D rate and
// the PCIe floor of a step mean. Users' scripts read these names.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/engine.h"

namespace dso::cli {

// The timed steps' median and range, in ms.
struct StepTimes {
  double median = 0;
  double min = 0;
  double max = 0;
};
StepTimes step_times(std::vector<double> ms);

// One policy's run.
struct StepFields {
  std::string mode;  // "model" or "attention"
  std::string device;
  std::string backend;
  Policy policy;
  std::string shape;
  std::string weights;  // "dummy" or "real"
  std::string fill;     // "synthetic", "prefill" or "replayed prefill"
  AttentionShape dims;
  DType dtype;
  std::int64_t context;
  int batch;
  std::int64_t k;  // model mode: 0 for dense policies
  int r;
  TokenBudget budget;
  std::uint64_t seed;
  int steps;  // the timed ones: the repetitions behind the median
  int warmup;
  StepTimes ms;
  std::int64_t h2d_bytes_per_step;
  std::optional<double> pcie_h2d_GBps;  // the contiguous rate measured in the same run; none without a GPU
  std::int64_t gpu_mem_bytes;
  std::int64_t host_mem_bytes;
  // Medians of the engine's phases, where timed.
  std::optional<double> ms_select, ms_fetch, ms_attend;
  std::optional<std::int64_t> tokens_selected_per_step;
  std::optional<std::int64_t> weight_bytes;  // model mode
  std::optional<double> alloc_s, fill_s;     // model mode
  std::optional<int> threads;                // model mode: of the cpu backend's operations
  // Model mode, where the context was prefilled through the model: its rate
  // over every sequence, and the time to the first generated token (that
  // prefill and the first decode step after it).
  std::optional<double> prefill_tokens_per_s, ttft_ms;
  std::optional<std::string> labels;  // how label channels were chosen; none for dense policies
  std::optional<std::string> weights_note, gpu_mem_note, step_note;
};

// The time the step's fetched bytes need at the contiguous rate, which no
// offload step can beat; none without a measured rate.
std::optional<double> pcie_floor_ms(std::int64_t h2d_bytes, std::optional<double> pcie_GBps);

// Every field, then the run's record (put_run_info).
nlohmann::ordered_json step_json(const StepFields& f);
// step_json as one line on stdout, flushed, so that a run cut short keeps
// the policies it finished.
void print_step_json(const StepFields& f);

}  // namespace dso::cli
