#include "cli/model_bench_report.h"

#include <cstdio>
#include <iomanip>
#include <optional>
#include <string>

#include "core/error.h"
#include "offload/format_bytes.h"

namespace dso::cli {

void print_model_table(const std::vector<StepFields>& results) {
  if (results.empty()) return;
  const StepFields& first = results.front();
  std::fprintf(stderr,
               "\n%s, %s backend, model %s (%s weights, %s fill), %s, context %lld, batch %d, median (min, max) of %d "
               "steps\n",
               first.device.c_str(), first.backend.c_str(), first.shape.c_str(), first.weights.c_str(),
               first.fill.c_str(), std::string(dtype_name(first.dtype)).c_str(),
               static_cast<long long>(first.context), first.batch, first.steps);
  std::fprintf(stderr, "%-16s %8s %4s %10s %10s %10s %10s %12s %9s %10s %11s %11s %13s %8s\n", "policy", "k", "r",
               "ms/step", "min", "max", "tokens/s", "h2d/step", "h2d GB/s", "floor ms", "host mem", "gpu mem",
               "prefill tok/s", "TTFT s");
  for (const StepFields& r : results) {
    const double seconds = r.ms.median / 1e3;
    // "-" where the JSON has null: no rate was measured to compare with, or no prefill ran.
    const std::optional<double> floor = pcie_floor_ms(r.h2d_bytes_per_step, r.pcie_h2d_GBps);
    char floor_text[32] = "-";
    if (floor) std::snprintf(floor_text, sizeof floor_text, "%.3f", *floor);
    const std::string prefill =
        r.prefill_tokens_per_s ? concat(std::fixed, std::setprecision(1), *r.prefill_tokens_per_s) : "-";
    const std::string ttft = r.ttft_ms ? concat(std::fixed, std::setprecision(2), *r.ttft_ms / 1e3) : "-";
    std::fprintf(stderr, "%-16s %8lld %4d %10.3f %10.3f %10.3f %10.2f %12s %9.2f %10s %11s %11s %13s %8s\n",
                 std::string(policy_name(r.policy)).c_str(), static_cast<long long>(r.k), r.r, r.ms.median, r.ms.min,
                 r.ms.max, r.batch / seconds, format_bytes(r.h2d_bytes_per_step).c_str(),
                 double(r.h2d_bytes_per_step) / seconds / 1e9, floor_text, format_bytes(r.host_mem_bytes).c_str(),
                 format_bytes(r.gpu_mem_bytes).c_str(), prefill.c_str(), ttft.c_str());
  }
  if (first.pcie_h2d_GBps)
    std::fprintf(stderr, "contiguous pinned host-to-device copy, measured in this run: %.1f GB/s\n",
                 *first.pcie_h2d_GBps);
  std::fprintf(stderr, "(floor ms: h2d/step at that rate, - without a GPU; a step is the whole model, LM head and "
                       "argmax included)\n");
  if (first.threads)
    std::fprintf(stderr, "(prefill tok/s: the context of every sequence prefilled through the model, - where it was "
                         "synthetic or replayed; TTFT: that prefill and the first decode step; %d threads)\n",
                 *first.threads);
}

}  // namespace dso::cli
