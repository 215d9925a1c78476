#include "cli/model_bench_report.h"

#include <cstdio>
#include <iomanip>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/run_info.h"
#include "cli/step_fields.h"
#include "core/error.h"
#include "offload/format_bytes.h"

namespace dso::cli {

void print_model_json_line(const ModelBenchResult& r) {
  nlohmann::ordered_json j;
  put_step_fields(j, {r.device, r.policy, r.shape, r.dummy ? "dummy" : "real", r.context, r.batch, r.k, r.r,
                      r.ms_per_step, r.h2d_bytes_per_step, r.pcie_h2d_GBps});
  if (r.pcie_h2d_GBps) {
    // The time the step's fetched bytes need at the contiguous rate: what no
    // offload step can beat, and how far above it this one is.
    const double floor_ms = double(r.h2d_bytes_per_step) / (*r.pcie_h2d_GBps * 1e9) * 1e3;
    j["pcie_floor_ms"] = floor_ms;
    if (floor_ms > 0)
      j["floor_ratio"] = r.ms_per_step / floor_ms;
    else
      j["floor_ratio"] = nullptr;
  } else {
    j["pcie_floor_ms"] = nullptr;
    j["floor_ratio"] = nullptr;
  }
  j["gpu_mem_bytes"] = r.gpu_mem_bytes;
  j["host_mem_bytes"] = r.host_mem_bytes;
  j["steps"] = r.steps;
  j["warmup"] = r.warmup;
  j["date"] = utc_now();
  j["mode"] = "model";
  j["fill"] = r.synthetic_fill ? "synthetic" : "prefill";
  j["backend"] = r.backend;
  j["dtype"] = dtype_name(r.dtype);
  j["sink"] = r.budget.sink;
  j["recent"] = r.budget.recent;
  j["seed"] = r.seed;
  j["weight_bytes"] = r.weight_bytes;
  j["alloc_s"] = r.alloc_s;  // the first policy's includes making the weights
  j["fill_s"] = r.fill_s;
  j["threads"] = r.threads;
  if (r.synthetic_fill) {
    j["prefill_tokens_per_s"] = nullptr;
    j["ttft_ms"] = nullptr;
  } else {
    j["prefill_tokens_per_s"] = r.prefill_tokens_per_s();
    j["ttft_ms"] = r.ttft_ms();
  }
  j["step_note"] = "embedding, every layer (projections, attention through the engine, MLP), LM head and argmax";
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

void print_model_table(const std::vector<ModelBenchResult>& results) {
  if (results.empty()) return;
  const ModelBenchResult& first = results.front();
  std::fprintf(stderr, "\n%s, %s backend, model %s (%s weights, %s fill), %s, context %lld, batch %d, median of %d steps\n",
               first.device.c_str(), first.backend.c_str(), first.shape.c_str(), first.dummy ? "dummy" : "real",
               first.synthetic_fill ? "synthetic" : "prefill", std::string(dtype_name(first.dtype)).c_str(),
               static_cast<long long>(first.context), first.batch, first.steps);
  std::fprintf(stderr, "%-16s %8s %4s %10s %10s %12s %9s %10s %11s %11s %13s %10s\n", "policy", "k", "r", "ms/step",
               "tokens/s", "h2d/step", "h2d GB/s", "floor ms", "host mem", "gpu mem", "prefill tok/s", "TTFT s");
  for (const ModelBenchResult& r : results) {
    const double seconds = r.ms_per_step / 1e3;
    const double floor_ms =
        r.pcie_h2d_GBps ? double(r.h2d_bytes_per_step) / (*r.pcie_h2d_GBps * 1e9) * 1e3 : 0.0;
    const std::string prefill = r.synthetic_fill ? "-" : concat(std::fixed, std::setprecision(1), r.prefill_tokens_per_s());
    const std::string ttft = r.synthetic_fill ? "-" : concat(std::fixed, std::setprecision(2), r.ttft_ms() / 1e3);
    std::fprintf(stderr, "%-16s %8lld %4d %10.3f %10.2f %12s %9.2f %10.3f %11s %11s %13s %10s\n",
                 std::string(policy_name(r.policy)).c_str(), static_cast<long long>(r.k), r.r, r.ms_per_step,
                 r.batch / seconds, format_bytes(r.h2d_bytes_per_step).c_str(),
                 double(r.h2d_bytes_per_step) / seconds / 1e9, floor_ms, format_bytes(r.host_mem_bytes).c_str(),
                 format_bytes(r.gpu_mem_bytes).c_str(), prefill.c_str(), ttft.c_str());
  }
  if (first.pcie_h2d_GBps)
    std::fprintf(stderr, "contiguous pinned host-to-device copy, measured in this run: %.1f GB/s\n",
                 *first.pcie_h2d_GBps);
  std::fprintf(stderr, "(floor ms: h2d/step at that rate; a step is the whole model, LM head and argmax included)\n");
  if (!first.synthetic_fill)
    std::fprintf(stderr, "(prefill tok/s: the context of every sequence prefilled through the model; TTFT: that "
                         "prefill and the first decode step; %d threads)\n", first.threads);
}

}  // namespace dso::cli
