// core/input_file.h: what is not a regular file is refused before a byte is
// read (a FIFO without waiting for its writer), and a size cap holds.
#include "core/input_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "support/tool_run.h"

namespace dso {
namespace {

namespace fs = std::filesystem;

std::string refusal_of(const std::string& path, std::int64_t max_bytes = 1 << 20) {
  try {
    read_regular_file(path, "cannot read the test input", max_bytes, "a test input");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class InputFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_file(testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(InputFileTest, ReadsARegularFileWhole) {
  const fs::path path = dir_ / "text.txt";
  std::string text(100000, 'a');
  text[5] = '\0';
  std::ofstream(path, std::ios::binary) << text;
  EXPECT_EQ(read_regular_file(path.string(), "cannot read", 1 << 20, "a test input"), text);
}

TEST_F(InputFileTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Before the check, this open blocked forever: nobody writes to the FIFO.
  EXPECT_EQ(refusal_of(fifo.string()), "cannot read the test input: it is a FIFO, not a regular file");
}

TEST_F(InputFileTest, DevicesAndDirectoriesAreRefused) {
  EXPECT_EQ(refusal_of("/dev/zero"), "cannot read the test input: it is a character device, not a regular file");
  EXPECT_EQ(refusal_of(dir_.string()), "cannot read the test input: it is a directory, not a regular file");
  EXPECT_EQ(refusal_of((dir_ / "absent").string()), "cannot read the test input: No such file or directory");
}

TEST_F(InputFileTest, AFileLargerThanTheCapIsRefusedBeforeItIsRead) {
  const fs::path big = dir_ / "big.txt";
  std::ofstream(big) << "x";
  fs::resize_file(big, std::uintmax_t(1) << 40);  // sparse: a terabyte that takes no disk
  EXPECT_EQ(refusal_of(big.string(), 1000),
            "cannot read the test input: it holds 1099511627776 bytes, more than the 1000 bytes a test input may have");
}

}  // namespace
}  // namespace dso
