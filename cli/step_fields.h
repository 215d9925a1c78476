#pragma once
// The fields of docs/architecture.md (the benchmark protocol) that every decode-benchmark JSON line starts
// with, in that order, so that both benchmark modes agree on what tokens/s
// and the H2D rate of a step mean.
#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "offload/engine.h"

namespace dso::cli {

struct StepFields {
  std::string_view device;
  Policy policy;
  std::string_view shape;
  std::string_view weights;  // "dummy" or "real"
  std::int64_t context;
  int batch;
  std::int64_t k;
  int r;
  double ms_per_step;  // median of the timed steps
  std::int64_t h2d_bytes_per_step;
  std::optional<double> pcie_h2d_GBps;  // the contiguous rate measured in the same run; none without a GPU
};

void put_step_fields(nlohmann::ordered_json& j, const StepFields& f);

}  // namespace dso::cli
