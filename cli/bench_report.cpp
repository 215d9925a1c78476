#include "cli/bench_report.h"

#include <cstdio>
#include <optional>
#include <string>

#include "offload/format_bytes.h"

namespace dso::cli {

void print_table(const std::vector<StepFields>& results) {
  if (results.empty()) return;
  const StepFields& first = results.front();
  std::fprintf(stderr,
               "\n%s, %s backend, shape %s, %s, context %lld, batch %d, k %lld, r %d, median (min, max) of %d steps\n",
               first.device.c_str(), first.backend.c_str(), first.shape.c_str(),
               std::string(dtype_name(first.dtype)).c_str(), static_cast<long long>(first.context), first.batch,
               static_cast<long long>(first.k), first.r, first.steps);
  std::fprintf(stderr, "%-16s %10s %10s %10s %10s %12s %9s %9s %9s %9s %11s %11s\n", "policy", "ms/step", "min",
               "max", "tokens/s", "h2d/step", "h2d GB/s", "select", "fetch", "attend", "host mem", "gpu mem");
  const auto phase = [](const std::optional<double>& ms) {
    char text[32];
    if (ms) std::snprintf(text, sizeof text, "%.3f", *ms);
    return ms ? std::string(text) : std::string("-");
  };
  for (const StepFields& r : results) {
    const double seconds = r.ms.median / 1e3;
    std::fprintf(stderr, "%-16s %10.3f %10.3f %10.3f %10.1f %12s %9.2f %9s %9s %9s %11s %11s\n",
                 std::string(policy_name(r.policy)).c_str(), r.ms.median, r.ms.min, r.ms.max, r.batch / seconds,
                 format_bytes(r.h2d_bytes_per_step).c_str(), double(r.h2d_bytes_per_step) / seconds / 1e9,
                 phase(r.ms_select).c_str(), phase(r.ms_fetch).c_str(), phase(r.ms_attend).c_str(),
                 format_bytes(r.host_mem_bytes).c_str(), format_bytes(r.gpu_mem_bytes).c_str());
  }
  if (first.pcie_h2d_GBps)
    std::fprintf(stderr, "contiguous pinned host-to-device copy, measured in this run: %.1f GB/s\n",
                 *first.pcie_h2d_GBps);
  std::fprintf(stderr, "(select, fetch, attend: ms per step, - where not timed (--phases); weights are random tensors)\n");
}

}  // namespace dso::cli
