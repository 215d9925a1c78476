// The host memory a run may count on: the least of MemAvailable, what the
// address-space limit leaves and what each memory cgroup leaves, read from
// files of the test's own (cgroup v1 and v2) and, for RLIMIT_AS, in a child
// process whose limit is lowered.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "offload/available_memory.h"
#include "support/sanitizer.h"

namespace dso {
namespace {

namespace fs = std::filesystem;

class AvailableMemory : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dso_available_memory_" + std::to_string(::getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "fs");
    sources_.meminfo = write("meminfo", "MemTotal: 99999999 kB\nMemAvailable: 8000000 kB\n");
    sources_.self_status = write("status", "VmSize: 1000 kB\n");
    sources_.self_cgroup = write("self_cgroup", "");
    sources_.cgroup_root = (dir_ / "fs").string();
    sources_.address_space_limit = false;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const fs::path& name, const std::string& text) const {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  fs::path dir_;
  HostRoomSources sources_;
};

TEST_F(AvailableMemory, MemAvailableWhereNothingElseLimits) {
  const HostRoom room = available_host_memory(sources_);
  EXPECT_EQ(room.bytes, 8000000LL * 1024);
  EXPECT_EQ(room.bound, "MemAvailable");
  EXPECT_EQ(describe(room), "7.6 GiB available (MemAvailable)");
}

TEST_F(AvailableMemory, CgroupV2LimitLessUsageAtTheTightestLevel) {
  write("self_cgroup", "0::/outer/inner\n");
  write("fs/outer/inner/memory.max", "5000000000\n");
  write("fs/outer/inner/memory.current", "1000000000\n");
  write("fs/outer/memory.max", "max\n");  // no limit at this level
  write("fs/outer/memory.current", "1500000000\n");
  HostRoom room = available_host_memory(sources_);
  EXPECT_EQ(room.bytes, 4000000000LL);
  EXPECT_NE(room.bound.find("the cgroup memory limit"), std::string::npos) << room.bound;
  EXPECT_NE(room.bound.find("outer/inner/memory.max"), std::string::npos) << room.bound;
  // A parent's limit holds its children too.
  write("fs/outer/memory.max", "2000000000\n");
  room = available_host_memory(sources_);
  EXPECT_EQ(room.bytes, 500000000LL);
  EXPECT_NE(room.bound.find("outer/memory.max"), std::string::npos) << room.bound;
  EXPECT_EQ(describe(room).rfind("476.8 MiB left under the cgroup memory limit (", 0), 0u) << describe(room);
}

TEST_F(AvailableMemory, CgroupV1MemoryHierarchyAndItsNoLimitValue) {
  write("self_cgroup", "9:name=systemd:/\n5:cpuacct,memory:/job\n1:cpu:/elsewhere\n");
  write("fs/memory/job/memory.limit_in_bytes", "3000000000\n");
  write("fs/memory/job/memory.usage_in_bytes", "500000000\n");
  write("fs/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1's "no limit"
  write("fs/memory/memory.usage_in_bytes", "7000000000\n");
  write("fs/cpu/elsewhere/memory.limit_in_bytes", "1\n");  // not the memory hierarchy: ignored
  write("fs/cpu/elsewhere/memory.usage_in_bytes", "0\n");
  const HostRoom room = available_host_memory(sources_);
  EXPECT_EQ(room.bytes, 2500000000LL);
  EXPECT_NE(room.bound.find("memory/job/memory.limit_in_bytes"), std::string::npos) << room.bound;
}

TEST_F(AvailableMemory, ACgroupPastItsLimitLeavesNothing) {
  write("self_cgroup", "0::/full\n");
  write("fs/full/memory.max", "1000\n");
  write("fs/full/memory.current", "5000\n");
  EXPECT_EQ(available_host_memory(sources_).bytes, 0);
}

// RLIMIT_AS counts every mapping, so the room left is the limit less what the
// process maps already (VmSize).
TEST_F(AvailableMemory, AddressSpaceLimitOfAChildProcess) {
  if (test::kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer's shadow memory leaves no room under an address-space limit";
  sources_.address_space_limit = true;
  sources_.self_status = "/proc/self/status";
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  constexpr std::int64_t headroom = std::int64_t(256) << 20;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::int64_t mapped_kb = 0;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmSize:", 0) == 0) mapped_kb = std::stoll(line.substr(7));
    const rlimit limit{rlim_t(mapped_kb * 1024 + headroom), rlim_t(mapped_kb * 1024 + headroom)};
    const bool lowered = ::setrlimit(RLIMIT_AS, &limit) == 0;
    const HostRoom room = available_host_memory(sources_);
    const std::int64_t report[2] = {lowered ? room.bytes : -1,
                                    room.bound.find("RLIMIT_AS") != std::string::npos ? 1 : 0};
    (void)!::write(pipe_ends[1], report, sizeof report);
    ::_exit(0);
  }
  ::close(pipe_ends[1]);
  std::int64_t report[2] = {-2, 0};
  ASSERT_EQ(::read(pipe_ends[0], report, sizeof report), ssize_t(sizeof report));
  ::close(pipe_ends[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_GE(report[0], 0) << "the child could not lower its limit";
  EXPECT_EQ(report[1], 1) << "the room is not bounded by the address-space limit";
  EXPECT_GT(report[0], 0);
  EXPECT_LE(report[0], headroom);  // the child's own reads may map a little more
}

}  // namespace
}  // namespace dso
