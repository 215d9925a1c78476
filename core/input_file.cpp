#include "core/input_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dso {

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

InputFile open_regular_file(const std::string& path, const std::string& refusal) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer,
  // before fstat could tell what the file is.
  InputFile in;
  in.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  require(bool(in.fd), refusal, ": ", std::strerror(errno));
  require(::fstat(in.fd.get(), &in.st) == 0, refusal, ": ", std::strerror(errno));
  require(S_ISREG(in.st.st_mode), refusal, ": it is ", file_type_name(in.st.st_mode), ", not a regular file");
  const int flags = ::fcntl(in.fd.get(), F_GETFL);
  require(flags >= 0 && ::fcntl(in.fd.get(), F_SETFL, flags & ~O_NONBLOCK) == 0, refusal, ": ",
          std::strerror(errno));
  return in;
}

std::string read_regular_file(const std::string& path, const std::string& refusal, std::int64_t max_bytes,
                              const std::string& what) {
  const InputFile in = open_regular_file(path, refusal);
  require(in.st.st_size <= max_bytes, refusal, ": it holds ", in.st.st_size, " bytes, more than the ", max_bytes,
          " bytes ", what, " may have");
  // Read to the end rather than trusting the size: the file may change under us.
  std::string text;
  text.resize(std::size_t(in.st.st_size));
  std::size_t done = 0;
  for (;;) {
    if (done == text.size()) {
      if (std::int64_t(text.size()) >= max_bytes + 1) break;
      text.resize(std::size_t(std::min<std::int64_t>(max_bytes + 1, std::int64_t(text.size()) * 2 + 4096)));
    }
    const ssize_t n = ::read(in.fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    require(n >= 0, refusal, ": ", std::strerror(errno));
    if (n == 0) break;
    done += std::size_t(n);
  }
  require(std::int64_t(done) <= max_bytes, refusal, ": it grew past the ", max_bytes, " bytes ", what, " may have");
  text.resize(done);
  return text;
}

}  // namespace dso
