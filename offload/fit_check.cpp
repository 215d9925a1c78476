#include <string>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/device.h"
#include "core/error.h"
#include "offload/available_memory.h"
#include "offload/engine.h"
#include "offload/format_bytes.h"

namespace dso {

namespace {

using Part = std::pair<const char*, std::int64_t>;

// "the K/V cache, label cache and fetch buffers", naming only parts that need memory.
std::string name_parts(const std::vector<Part>& parts) {
  std::vector<const char*> names;
  for (const auto& [name, bytes] : parts)
    if (bytes > 0) names.push_back(name);
  std::string text = "the ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " and " : ", ";
    text += names[i];
  }
  return text;
}

std::int64_t total(const std::vector<Part>& parts) {
  std::int64_t sum = 0;
  for (const auto& part : parts) sum = checked_sum("the memory plan", sum, part.second);
  return sum;
}

}  // namespace

MemoryPlan Engine::check_fits(const EngineConfig& config) {
  const MemoryPlan plan = Engine::plan(config);
  const bool host_kv = plan.host_bytes > 0;
  const std::vector<Part> gpu_parts{{"K/V cache", host_kv ? 0 : plan.kv_bytes},
                                    {"label cache", plan.label_bytes},
                                    {"GPU window of newest tokens", plan.window_bytes},
                                    {"fetch buffers", plan.fetch_bytes},
                                    {"selection workspace", plan.workspace_bytes}};
  if (config.backend == Backend::cpu) {
    // The cpu backend keeps what would live on the GPU in host memory as well.
    std::vector<Part> parts = gpu_parts;
    parts.front().second = plan.kv_bytes;
    const std::int64_t needed = total(parts);
    const HostRoom available = available_host_memory();
    require(needed <= available.bytes, "needs ", format_bytes(needed), " of host memory for ", name_parts(parts),
            " (the cpu backend keeps GPU-side data in host memory), ", describe(available));
    return plan;
  }
  const HostRoom available = available_host_memory();
  require(plan.host_bytes <= available.bytes, "needs ", format_bytes(plan.host_bytes),
          " of host memory for the K/V cache, ", describe(available));
  require(gpu_available(), "the cuda backend needs a GPU and none is visible (use the cpu backend)");
  const std::int64_t gpu_free = available_gpu_bytes();
  require(plan.gpu_bytes <= gpu_free, "needs ", format_bytes(plan.gpu_bytes), " of GPU memory for ",
          name_parts(gpu_parts), ", ", format_bytes(gpu_free), " free on ", device_name());
  return plan;
}

}  // namespace dso
