// model/mapped_file.h: a mapped file cut short under the process ends it
// with one line and status 2, not a SIGBUS core dump; non-regular files are
// refused without blocking.
#include "model/mapped_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "support/tool_run.h"

namespace dso {
namespace {

namespace fs = std::filesystem;

TEST(MappedFile, TruncatedWhileMappedEndsWithOneLineAndStatusTwo) {
  const fs::path model = test::temp_file("mapped_model.bin");
  const fs::path err = test::temp_file("mapped_model.err");
  std::ofstream(model, std::ios::binary) << std::string(1 << 20, 'w');
  const MappedFile mapped(model.string());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Another writer shortens the file; the next read of a lost page faults.
    const int out = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, STDERR_FILENO);
    if (::truncate(model.c_str(), 0) != 0) ::_exit(90);
    volatile std::byte last = mapped.bytes()[mapped.bytes().size() - 1];
    (void)last;
    ::_exit(91);  // the read did not fault
  }
  int raw = 0;
  ASSERT_EQ(::waitpid(child, &raw, 0), child);
  const std::string message = test::read_all(err);
  fs::remove(model);
  fs::remove(err);
  ASSERT_TRUE(WIFEXITED(raw)) << "ended by signal " << WTERMSIG(raw);
  EXPECT_EQ(WEXITSTATUS(raw), 2);
  EXPECT_EQ(message, std::string(program_invocation_short_name) + ": error: the file '" + model.string() +
                         "' changed while it was mapped (truncated or rewritten): run again once it is whole\n");
}

TEST(MappedFile, AFifoIsRefusedWithoutBlocking) {
  const fs::path fifo = test::temp_file("mapped_fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string message;
  try {
    MappedFile mapped(fifo.string());
  } catch (const Error& e) {
    message = e.what();
  }
  fs::remove(fifo);
  EXPECT_EQ(message, "cannot open '" + fifo.string() + "': it is a FIFO, not a regular file");
}

}  // namespace
}  // namespace dso
