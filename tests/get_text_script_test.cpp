// scripts/get_text.sh as a fresh machine runs it, with a stand-in apt-get on
// PATH: a download that succeeds silently, package lists fetched first where
// they were never fetched, and a download that fails with one clear line. The
// script runs from a copy in a temporary tree, so that it writes there and
// never into the checkout's data/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/tool_run.h"

namespace dso {
namespace {

namespace fs = std::filesystem;
using test::run_shell;
using test::ToolRun;

constexpr const char* kDebName = "r-cran-janeaustenr_1.0.0-1_all.deb";

class GetTextScript : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_file(std::string("get_text_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "scripts");
    fs::create_directories(root_ / "bin");
    fs::copy_file(fs::path(DSO_SOURCE_DIR) / "scripts/get_text.sh", root_ / "scripts/get_text.sh");
    // A package that unpacks but holds no novels: the script gets past the
    // download and stops at the package's contents, which tells the two apart.
    const fs::path tree = root_ / "pkg";
    fs::create_directories(tree / "DEBIAN");
    fs::create_directories(tree / "usr/share/doc/r-cran-janeaustenr");
    std::ofstream(tree / "DEBIAN/control") << "Package: r-cran-janeaustenr\nVersion: 1.0.0-1\nArchitecture: all\n"
                                              "Maintainer: test <test@example.org>\nDescription: stand-in\n";
    const ToolRun built = run_shell("dpkg-deb --build '" + tree.string() + "' '" + (root_ / kDebName).string() +
                                    "' >/dev/null");
    ASSERT_EQ(built.status, 0) << built.err;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A stand-in apt-get: `body` is the shell script that handles "$@".
  void fake_apt_get(const std::string& body) {
    const fs::path apt = root_ / "bin/apt-get";
    std::ofstream(apt) << "#!/usr/bin/env bash\nset -u\nfake_deb='" << (root_ / kDebName).string() << "'\nstate='"
                       << root_.string() << "'\n"
                       << body;
    fs::permissions(apt, fs::perms::owner_all);
  }

  ToolRun run_script() {
    return run_shell("PATH='" + (root_ / "bin").string() + "':\"$PATH\" bash '" + (root_ / "scripts/get_text.sh").string() +
                     "'");
  }

  fs::path root_;
};

TEST_F(GetTextScript, SilentSuccessfulDownloadIsTakenAsSuccess) {
  // apt-get download with -q prints nothing at all when it succeeds.
  fake_apt_get("[[ $1 == download ]] && cp \"$fake_deb\" .\n");
  const ToolRun run = run_script();
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err.find("apt-get download"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("holds no janeaustenr/data/Rdata.rdx"), std::string::npos) << run.err;
  EXPECT_TRUE(fs::exists(root_ / "data/.deb" / kDebName));
}

TEST_F(GetTextScript, FetchesPackageListsOnceWhenRootAndTheyAreMissing) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lists are fetched only as root";
  fake_apt_get(
      "case $1 in\n"
      "  update) touch \"$state/updated\" ;;\n"
      "  download) [[ -e $state/updated ]] || { echo 'E: Unable to locate package r-cran-janeaustenr'; exit 100; }\n"
      "            cp \"$fake_deb\" . ;;\n"
      "esac\n");
  const ToolRun run = run_script();
  EXPECT_TRUE(fs::exists(root_ / "updated"));
  EXPECT_NE(run.out.find("apt-get update"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("holds no janeaustenr/data/Rdata.rdx"), std::string::npos) << run.err;
}

TEST_F(GetTextScript, FailedDownloadEndsInOneLineWithAptsReason) {
  fake_apt_get("echo 'W: an unrelated warning' >&2\n"
               "[[ $1 == download ]] && { echo 'E: Unable to locate package r-cran-janeaustenr' >&2; exit 100; }\n"
               "exit 100\n");
  const ToolRun run = run_script();
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << run.err;  // one line
  EXPECT_NE(run.err.find("get_text.sh: apt-get download r-cran-janeaustenr=1.0.0-1 left no " + std::string(kDebName)),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("E: Unable to locate package r-cran-janeaustenr"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("DSO_DEB_DIR"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(root_ / "data/calibration.txt"));
}

}  // namespace
}  // namespace dso
