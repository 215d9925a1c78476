#pragma once
// Memory a new allocation can get, for refusing a run that does not fit
// before allocating anything.
#include <cstdint>
#include <string>

namespace dso {

// Host memory the process can still allocate: the least of MemAvailable (what
// the machine can give without swapping), what the address-space limit
// (RLIMIT_AS, `ulimit -v`) leaves beside what the process maps already, and
// what each memory cgroup the process is in (v2 memory.max, v1
// memory.limit_in_bytes) leaves beside its usage. Past any of them an
// allocation fails or the kernel ends the process, whatever the others say.
struct HostRoom {
  std::int64_t bytes = 0;
  std::string bound;  // which of them it is, for messages: "MemAvailable", "the address-space limit ..."
  bool limit = false;  // a limit set on the process (RLIMIT_AS, a cgroup), not the machine's memory
};

// Where available_host_memory() looks; tests point it at files of their own.
struct HostRoomSources {
  std::string meminfo = "/proc/meminfo";
  std::string self_status = "/proc/self/status";  // VmSize: what the process maps
  std::string self_cgroup = "/proc/self/cgroup";
  std::string cgroup_root = "/sys/fs/cgroup";
  bool address_space_limit = true;  // read RLIMIT_AS of this process
};

HostRoom available_host_memory(const HostRoomSources& sources = {});

// "21.3 GiB available (MemAvailable)" or "1.3 GiB left under the
// address-space limit (RLIMIT_AS, ulimit -v)", for the end of a refusal.
std::string describe(const HostRoom& memory);

// Free memory of the current CUDA device.
std::int64_t available_gpu_bytes();

}  // namespace dso
