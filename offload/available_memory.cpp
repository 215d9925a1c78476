#include "offload/available_memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "gpu/check.h"
#include "offload/format_bytes.h"

namespace dso {

namespace {

// The first number of the line of `file` that starts with `key`, times `unit`.
std::optional<std::int64_t> keyed_number(const std::string& file, std::string_view key, std::int64_t unit) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key)) continue;
    std::istringstream rest(line.substr(key.size()));
    std::int64_t value = 0;
    if (rest >> value) return value * unit;
  }
  return std::nullopt;
}

// A cgroup file holding one number; nothing where it is absent or says "max" (v2's "no limit").
std::optional<std::int64_t> file_number(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text)) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// v1 writes "no limit" as the largest page-aligned long; anything past an
// exbibyte is no limit a machine could reach.
constexpr std::int64_t kNoLimit = std::int64_t(1) << 60;

struct Bound {
  std::int64_t bytes;
  std::string name;
  bool limit;
};

// The cgroup directories the process belongs to for memory, innermost first,
// with the names of their limit and usage files: v2 ("0::/path") and v1
// ("N:...memory...:/path", under the memory hierarchy's own root). Each level
// up to the root counts, since a parent's limit holds its children as well;
// a level absent from this mount namespace is skipped.
void cgroup_bounds(const HostRoomSources& s, std::vector<Bound>& bounds) {
  std::ifstream in(s.self_cgroup);
  for (std::string line; std::getline(in, line);) {
    const std::size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::filesystem::path path = line.substr(second + 1);
    const bool v2 = controllers.empty();
    std::string_view list = controllers;
    bool memory = false;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      memory |= list.substr(0, comma) == "memory";
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    if (!v2 && !memory) continue;
    const std::filesystem::path root =
        v2 ? std::filesystem::path(s.cgroup_root) : std::filesystem::path(s.cgroup_root) / "memory";
    const char* limit_file = v2 ? "memory.max" : "memory.limit_in_bytes";
    const char* usage_file = v2 ? "memory.current" : "memory.usage_in_bytes";
    for (std::filesystem::path level = path.relative_path();; level = level.parent_path()) {
      const std::filesystem::path dir = root / level;
      const std::optional<std::int64_t> limit = file_number(dir / limit_file);
      const std::optional<std::int64_t> usage = file_number(dir / usage_file);
      if (limit && usage && *limit < kNoLimit)
        bounds.push_back(
            {*limit - *usage, concat("the cgroup memory limit (", (dir / limit_file).string(), ")"), true});
      if (level.empty()) break;
    }
  }
}

}  // namespace

HostRoom available_host_memory(const HostRoomSources& s) {
  std::vector<Bound> bounds;
  if (const auto available = keyed_number(s.meminfo, "MemAvailable:", 1024))  // in kB
    bounds.push_back({*available, "MemAvailable", false});
  else
    bounds.push_back({std::int64_t(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE), "free physical memory", false});
  rlimit limit{};
  if (s.address_space_limit && getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < rlim_t(kNoLimit)) {
    const std::int64_t mapped = keyed_number(s.self_status, "VmSize:", 1024).value_or(0);
    bounds.push_back({std::int64_t(limit.rlim_cur) - mapped, "the address-space limit (RLIMIT_AS, ulimit -v)", true});
  }
  cgroup_bounds(s, bounds);
  const Bound& least =
      *std::min_element(bounds.begin(), bounds.end(), [](const Bound& a, const Bound& b) { return a.bytes < b.bytes; });
  return {std::max<std::int64_t>(least.bytes, 0), least.name, least.limit};
}

std::string describe(const HostRoom& memory) {
  return memory.limit ? concat(format_bytes(memory.bytes), " left under ", memory.bound)
                      : concat(format_bytes(memory.bytes), " available (", memory.bound, ")");
}

std::int64_t available_gpu_bytes() {
  std::size_t free = 0;
  std::size_t total = 0;
  DSO_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return std::int64_t(free);
}

}  // namespace dso
