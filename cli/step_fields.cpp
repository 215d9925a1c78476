#include "cli/step_fields.h"

#include <algorithm>
#include <cstdio>

#include "cli/run_info.h"

namespace dso::cli {

namespace {

template <class T>
nlohmann::ordered_json or_null(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

StepTimes step_times(std::vector<double> ms) {
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

std::optional<double> pcie_floor_ms(std::int64_t h2d_bytes, std::optional<double> pcie_GBps) {
  if (!pcie_GBps) return std::nullopt;
  return double(h2d_bytes) / (*pcie_GBps * 1e9) * 1e3;
}

nlohmann::ordered_json step_json(const StepFields& f) {
  const double seconds = f.ms.median / 1e3;
  const std::optional<double> floor = pcie_floor_ms(f.h2d_bytes_per_step, f.pcie_h2d_GBps);
  nlohmann::ordered_json j;
  j["device"] = f.device;
  j["policy"] = policy_name(f.policy);
  j["shape"] = f.shape;
  j["weights"] = f.weights;
  j["context"] = f.context;
  j["batch"] = f.batch;
  j["k"] = f.k;
  j["r"] = f.r;
  j["ms_per_step"] = f.ms.median;
  j["ms_per_step_min"] = f.ms.min;
  j["ms_per_step_max"] = f.ms.max;
  j["tokens_per_s"] = f.batch / seconds;
  j["h2d_bytes_per_step"] = f.h2d_bytes_per_step;
  j["h2d_GBps"] = double(f.h2d_bytes_per_step) / seconds / 1e9;
  j["pcie_h2d_GBps"] = or_null(f.pcie_h2d_GBps);
  j["pcie_floor_ms"] = or_null(floor);
  j["floor_ratio"] = floor && *floor > 0 ? nlohmann::ordered_json(f.ms.median / *floor) : nullptr;
  j["gpu_mem_bytes"] = f.gpu_mem_bytes;
  j["host_mem_bytes"] = f.host_mem_bytes;
  j["steps"] = f.steps;
  j["warmup"] = f.warmup;
  j["mode"] = f.mode;
  j["fill"] = f.fill;
  j["backend"] = f.backend;
  j["dtype"] = dtype_name(f.dtype);
  j["layers"] = f.dims.layers;
  j["q_heads"] = f.dims.q_heads;
  j["kv_heads"] = f.dims.kv_heads;
  j["head_dim"] = f.dims.head_dim;
  j["sink"] = f.budget.sink;
  j["recent"] = f.budget.recent;
  j["seed"] = f.seed;
  j["ms_select"] = or_null(f.ms_select);
  j["ms_fetch"] = or_null(f.ms_fetch);
  j["ms_attend"] = or_null(f.ms_attend);
  j["tokens_selected_per_step"] = or_null(f.tokens_selected_per_step);
  j["weight_bytes"] = or_null(f.weight_bytes);
  j["alloc_s"] = or_null(f.alloc_s);
  j["fill_s"] = or_null(f.fill_s);
  j["threads"] = or_null(f.threads);
  j["prefill_tokens_per_s"] = or_null(f.prefill_tokens_per_s);
  j["ttft_ms"] = or_null(f.ttft_ms);
  j["labels"] = or_null(f.labels);
  j["weights_note"] = or_null(f.weights_note);
  j["gpu_mem_note"] = or_null(f.gpu_mem_note);
  j["step_note"] = or_null(f.step_note);
  put_run_info(j);
  return j;
}

void print_step_json(const StepFields& f) {
  std::printf("%s\n", step_json(f).dump().c_str());
  std::fflush(stdout);
}

}  // namespace dso::cli
