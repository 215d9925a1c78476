// scripts/plot_bench.py and scripts/bench_gpu.sh's sweep on a machine with
// and without matplotlib: the plot from committed results, the exact install
// line where matplotlib is missing, and the sweep's table written either way.
// The benchmark itself is a stand-in that prints a committed run's JSON lines.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/tool_run.h"

namespace dso {
namespace {

namespace fs = std::filesystem;
using test::run_shell;
using test::ToolRun;

const fs::path kSource = DSO_SOURCE_DIR;
const fs::path kSweep = kSource / "bench/results/decode_h100_2026-11-22_v2";

class BenchScripts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_file(std::string("bench_scripts_") +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "no_matplotlib");
    // Shadows any installed matplotlib, as on a machine without it.
    std::ofstream(dir_ / "no_matplotlib/matplotlib.py")
        << "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string without_matplotlib() const { return "PYTHONPATH='" + (dir_ / "no_matplotlib").string() + "' "; }
  std::string plot_command(const fs::path& png, const std::string& python = "python3") const {
    return python + " '" + (kSource / "scripts/plot_bench.py").string() + "' '" + kSweep.string() +
           "'/c_sweep_*.jsonl --shape llama-3-8b --batch 1 -o '" + png.string() + "'";
  }

  fs::path dir_;
};

TEST_F(BenchScripts, PlotsCommittedSweep) {
  // Debian's python3-matplotlib serves /usr/bin/python3, which may not be first on PATH.
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"})
    if (python.empty() && run_shell(std::string(candidate) + " -c 'import matplotlib' 2>/dev/null").status == 0)
      python = candidate;
  if (python.empty()) GTEST_SKIP() << "matplotlib is not installed (apt-get install python3-matplotlib)";
  const fs::path png = dir_ / "sweep.png";
  const ToolRun run = run_shell(plot_command(png, python));
  ASSERT_EQ(run.status, 0) << run.err;
  ASSERT_TRUE(fs::exists(png));
  EXPECT_EQ(test::read_all(png).substr(1, 3), "PNG");
}

TEST_F(BenchScripts, PlotWithoutMatplotlibSaysWhatToInstall) {
  const fs::path png = dir_ / "sweep.png";
  const ToolRun run = run_shell(without_matplotlib() + plot_command(png));
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err,
            "plot_bench: matplotlib is needed to plot: as root, apt-get install python3-matplotlib (Debian/Ubuntu, for "
            "/usr/bin/python3), or python3 -m pip install matplotlib\n");
  EXPECT_FALSE(fs::exists(png));
}

TEST_F(BenchScripts, SweepWritesItsTableWithoutAPlot) {
  const fs::path tool = dir_ / "fake_dsoffload";
  std::ofstream(tool) << "#!/bin/sh\ncat '" << (kSweep / "c_sweep_llama3_16K.jsonl").string() << "'\n";
  fs::permissions(tool, fs::perms::owner_all);
  const fs::path out = dir_ / "out";
  const ToolRun run = run_shell(without_matplotlib() + "DSO_TOOL='" + tool.string() + "' bash '" +
                                (kSource / "scripts/bench_gpu.sh").string() + "' '" + out.string() + "' sweep");
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  const std::string table = test::read_all(out / "results.md");
  for (const char* context : {"16K", "32K", "64K", "128K", "256K"})
    EXPECT_NE(table.find(std::string("## c_sweep_llama3_") + context), std::string::npos) << table;
  EXPECT_NE(table.find("| ds_offload | 1024 | 8 | 11.56 |"), std::string::npos) << table;
  EXPECT_FALSE(fs::exists(out / "sweep.png"));
  EXPECT_NE(run.err.find("apt-get install python3-matplotlib"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace dso
