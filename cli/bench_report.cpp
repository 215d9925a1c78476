#include "cli/bench_report.h"

#include <cstdio>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli/step_fields.h"
#include "offload/format_bytes.h"

namespace dso::cli {

void print_json_line(const BenchResult& r) {
  nlohmann::ordered_json j;
  put_step_fields(j, {r.device, r.policy, r.shape_name, "dummy", r.context, r.batch, r.k, r.r, r.ms_per_step,
                      r.h2d_bytes_per_step, r.pcie_h2d_GBps});
  j["gpu_mem_bytes"] = r.plan.gpu_bytes;
  j["host_mem_bytes"] = r.plan.host_bytes;
  j["backend"] = r.backend;
  j["weights_note"] = "random K/V and queries with planted outlier key channels; no model";
  j["labels"] = "calibrated on the synthetic keys (largest mean |k| per head)";
  j["seed"] = r.seed;
  j["dtype"] = dtype_name(r.dtype);
  j["layers"] = r.shape.layers;
  j["q_heads"] = r.shape.q_heads;
  j["kv_heads"] = r.shape.kv_heads;
  j["head_dim"] = r.shape.head_dim;
  j["sink"] = r.budget.sink;
  j["recent"] = r.budget.recent;
  j["steps"] = r.steps;
  j["warmup"] = r.warmup;
  for (const auto& [name, ms] : {std::pair{"ms_select", r.ms_select}, std::pair{"ms_fetch", r.ms_fetch},
                                 std::pair{"ms_attend", r.ms_attend}})
    if (r.phases_timed)
      j[name] = ms;
    else
      j[name] = nullptr;
  j["tokens_selected_per_step"] = r.tokens_selected_per_step;
  j["gpu_mem_note"] = r.backend == "cpu"
                         ? "what the policy would hold on a GPU; the cpu backend holds it in host memory"
                         : "device memory";
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

void print_table(const std::vector<BenchResult>& results) {
  if (results.empty()) return;
  const BenchResult& first = results.front();
  std::fprintf(stderr, "\n%s, %s backend, shape %s, %s, context %lld, batch %d, k %lld, r %d, median of %d steps\n",
               first.device.c_str(), first.backend.c_str(), first.shape_name.c_str(),
               std::string(dtype_name(first.dtype)).c_str(), static_cast<long long>(first.context), first.batch,
               static_cast<long long>(first.k), first.r, first.steps);
  std::fprintf(stderr, "%-16s %10s %10s %12s %9s %9s %9s %9s %11s %11s\n", "policy", "ms/step", "tokens/s",
               "h2d/step", "h2d GB/s", "select", "fetch", "attend", "host mem", "gpu mem");
  const auto phase = [](const BenchResult& r, double ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", ms);
    return r.phases_timed ? std::string(text) : std::string("-");
  };
  for (const BenchResult& r : results) {
    const double seconds = r.ms_per_step / 1e3;
    std::fprintf(stderr, "%-16s %10.3f %10.1f %12s %9.2f %9s %9s %9s %11s %11s\n",
                 std::string(policy_name(r.policy)).c_str(), r.ms_per_step, r.batch / seconds,
                 format_bytes(r.h2d_bytes_per_step).c_str(), double(r.h2d_bytes_per_step) / seconds / 1e9,
                 phase(r, r.ms_select).c_str(), phase(r, r.ms_fetch).c_str(), phase(r, r.ms_attend).c_str(),
                 format_bytes(r.plan.host_bytes).c_str(), format_bytes(r.plan.gpu_bytes).c_str());
  }
  if (first.pcie_h2d_GBps)
    std::fprintf(stderr, "contiguous pinned host-to-device copy, measured in this run: %.1f GB/s\n",
                 *first.pcie_h2d_GBps);
  std::fprintf(stderr, "(select, fetch, attend: ms per step, - where not timed (--phases); weights are random tensors)\n");
}

}  // namespace dso::cli
