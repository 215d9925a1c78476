// core/output_file.h: a user's file is replaced only by a whole new one, a
// refused output is refused when made, and every failure to write is seen.
#include "core/output_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/tool_run.h"

namespace dso {
namespace {

namespace fs = std::filesystem;
using Kind = OutputFile::Kind;

class OutputFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_file(testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path file(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  // Names in the folder, so that a temporary file left behind is seen.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(OutputFileTest, ADocumentReplacesTheTargetOnlyWhenCommitted) {
  const fs::path target = file("out.json", "old");
  {
    OutputFile out(target.string(), "the test file", Kind::document);
    out.write("new ");
    out.write("text");
    EXPECT_EQ(test::read_all(target), "old") << "the target changed before the commit";
    EXPECT_EQ(listing().size(), 2u) << "no temporary file beside the target";
    out.commit();
  }
  EXPECT_EQ(test::read_all(target), "new text");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.json"});
}

TEST_F(OutputFileTest, ADocumentNotCommittedLeavesTheTargetAndNoTemporaryFile) {
  const fs::path target = file("out.json", "old");
  {
    OutputFile out(target.string(), "the test file", Kind::document);
    out.write("half");
  }
  EXPECT_EQ(test::read_all(target), "old");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.json"});
}

TEST_F(OutputFileTest, JsonLinesAreInPlaceFromTheirFirstRecord) {
  const fs::path target = file("out.jsonl", "old\n");
  {
    OutputFile out(target.string(), "the test file", Kind::json_lines);
    out.append_line("{\"a\":1}");
    // In place from the first record on: a run killed now leaves it there.
    EXPECT_EQ(test::read_all(target), "{\"a\":1}\n");
    out.append_line("{\"b\":2}");
  }  // as when an error or Ctrl-C unwinds the run
  EXPECT_EQ(test::read_all(target), "{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.jsonl"});
}

TEST_F(OutputFileTest, JsonLinesRefusedBeforeTheirFirstRecordLeaveTheOldFile) {
  const fs::path target = file("out.jsonl", "old\n");
  { OutputFile out(target.string(), "the test file", Kind::json_lines); }
  EXPECT_EQ(test::read_all(target), "old\n");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.jsonl"});
}

TEST_F(OutputFileTest, ARecordThatDoesNotFitIsTakenBackOut) {
  // RLIMIT_FSIZE stands in for a full disk: a write past it fails (EFBIG).
  const fs::path target = dir_ / "out.jsonl";
  const std::string record(40, 'x');
  std::string error;
  {
    OutputFile out(target.string(), "the test file", Kind::json_lines);
    struct rlimit old {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    const sighandler_t previous = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 100;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    error = error_of([&] {
      for (int i = 0; i < 10; ++i) out.append_line(record);
    });
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, previous);
  }
  EXPECT_NE(error.find("cannot write the test file"), std::string::npos) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  // Two records of 41 bytes fit in 100; the third, cut at 100, is gone.
  EXPECT_EQ(test::read_all(target), record + "\n" + record + "\n");
}

TEST_F(OutputFileTest, NewFilesGetTheUsualModeAndReplacedOnesKeepTheirs) {
  const fs::path fresh = dir_ / "fresh.txt";
  const fs::path kept = file("kept.txt", "old");
  fs::permissions(kept, fs::perms(0640));
  const mode_t mask = ::umask(022);
  for (const fs::path& p : {fresh, kept}) {
    OutputFile out(p.string(), "the test file", Kind::document);
    out.write("x");
    out.commit();
  }
  ::umask(mask);
  EXPECT_EQ(int(fs::status(fresh).permissions()), 0644);
  EXPECT_EQ(int(fs::status(kept).permissions()), 0640);
}

TEST_F(OutputFileTest, ASymbolicLinkKeepsPointingAtTheReplacedFile) {
  const fs::path real = file("real.txt", "old");
  const fs::path link = dir_ / "link.txt";
  fs::create_symlink(real, link);
  OutputFile out(link.string(), "the test file", Kind::document);
  out.write("new");
  out.commit();
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(test::read_all(real), "new");
}

TEST_F(OutputFileTest, RefusedWhenMadeWhereItCannotBeWritten) {
  const auto refusal = [](const std::string& path) {
    return error_of([&] { OutputFile out(path, "the test file", Kind::document); });
  };
  std::string e = refusal((dir_ / "missing" / "out.json").string());
  EXPECT_NE(e.find("its folder"), std::string::npos) << e;
  EXPECT_NE(e.find("No such file or directory"), std::string::npos) << e;
  e = refusal(dir_.string());
  EXPECT_NE(e.find("it is a directory"), std::string::npos) << e;
  // Nobody, root included, may create files in /proc.
  e = refusal("/proc/out.json");
  EXPECT_NE(e.find("cannot create a file in '/proc'"), std::string::npos) << e;
  e = refusal((file("plain", "x") / "out.json").string());
  EXPECT_NE(e.find("Not a directory"), std::string::npos) << e;
  e = refusal("");
  EXPECT_NE(e.find("the path is empty"), std::string::npos) << e;
}

TEST_F(OutputFileTest, RefusedWhenItIsAnInputUnderAnyName) {
  const fs::path input = file("model.gguf", "weights");
  const fs::path hard_link = dir_ / "other_name.gguf";
  fs::create_hard_link(input, hard_link);
  const std::vector<std::string> inputs{"llama-2-7b", input.string()};
  for (const fs::path& same : {input, dir_ / "." / "model.gguf", hard_link}) {
    const std::string e = error_of([&] { OutputFile out(same.string(), "the --json file", Kind::json_lines, inputs); });
    EXPECT_NE(e.find("it is the input '" + input.string() + "' of this run"), std::string::npos) << same << ": " << e;
  }
  EXPECT_EQ(test::read_all(input), "weights");
  EXPECT_EQ(error_of([&] { OutputFile out((dir_ / "new.json").string(), "the --json file", Kind::json_lines, inputs); }),
            "");
}

TEST_F(OutputFileTest, TwoOutputsOfOneRunMustBeTwoFiles) {
  OutputFile a((dir_ / "x.md").string(), "the --json file", Kind::json_lines);
  OutputFile b((dir_ / "." / "x.md").string(), "the --markdown file", Kind::document);
  OutputFile c((dir_ / "y.md").string(), "the --markdown file", Kind::document);
  EXPECT_NE(error_of([&] { OutputFile::check_apart(a, b); }).find("the --json file and the --markdown file name the same file"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { OutputFile::check_apart(a, c); }), "");
}

TEST_F(OutputFileTest, AFullDeviceIsAnErrorAtTheWriteThatFails) {
  OutputFile lines("/dev/full", "the --json file", Kind::json_lines);
  EXPECT_NE(error_of([&] { lines.append_line("{}"); }).find("No space left on device"), std::string::npos);
  OutputFile discard("/dev/null", "the --markdown file", Kind::document);
  discard.write("x");
  EXPECT_EQ(error_of([&] { discard.commit(); }), "");
}

}  // namespace
}  // namespace dso
