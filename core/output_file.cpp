#include "core/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/error.h"

namespace dso {

namespace {

std::string reason() { return std::strerror(errno); }

mode_t new_file_mode() {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

OutputFile::OutputFile(std::string path, std::string what, Kind kind, std::span<const std::string> inputs)
    : path_(std::move(path)), what_(std::move(what)), kind_(kind) {
  require(!path_.empty(), "cannot write ", what_, ": the path is empty");
  // Made before any call whose errno a message reports.
  const std::string refused = refusal();
  struct stat target {};
  const bool exists = ::stat(path_.c_str(), &target) == 0;
  require(exists || errno == ENOENT, refused, ": ", reason());
  require(!exists || !S_ISDIR(target.st_mode), refused, ": it is a directory");
  require(!exists || ::access(path_.c_str(), W_OK) == 0, refused, ": ", reason());
  if (exists && !S_ISREG(target.st_mode)) {
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CLOEXEC));
    require(bool(fd_), refused, ": ", reason());
    return;
  }
  if (exists)
    for (const std::string& input : inputs) {
      struct stat in {};
      if (::stat(input.c_str(), &in) == 0)
        require(in.st_dev != target.st_dev || in.st_ino != target.st_ino, refused, ": it is the input '", input,
                "' of this run");
    }

  // Through a symbolic link, the file it names is replaced, not the link.
  std::error_code ignored;
  const std::filesystem::path real = exists ? std::filesystem::canonical(path_, ignored) : std::filesystem::path();
  const std::filesystem::path target_path = real.empty() ? std::filesystem::path(path_) : real;
  rename_to_ = target_path.string();
  const std::filesystem::path dir = target_path.has_parent_path() ? target_path.parent_path() : ".";
  struct stat folder {};
  require(::stat(dir.c_str(), &folder) == 0, refused, ": its folder '", dir.string(), "': ", reason());
  require(S_ISDIR(folder.st_mode), refused, ": '", dir.string(), "' is not a folder");
  dir_dev_ = folder.st_dev;
  dir_ino_ = folder.st_ino;
  name_ = target_path.filename().string();

  // Made now, so that a folder that cannot be written is refused before any work.
  std::string pattern = (dir / ("." + name_ + ".XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  fd_.reset(::mkstemp(buffer.data()));
  require(bool(fd_), refused, ": cannot create a file in '", dir.string(), "': ", reason());
  temp_ = buffer.data();
  regular_ = true;
  // mkstemp makes the file private (0600); the result should carry the mode an ordinary write would give it.
  if (::fchmod(fd_.get(), exists ? (target.st_mode & 07777) : new_file_mode()) != 0) {
    const std::string why = reason();
    fd_.reset();
    ::unlink(temp_.c_str());
    temp_.clear();
    fail(refused, ": ", why);
  }
}

OutputFile::~OutputFile() {
  if (!fd_) return;
  // Half a document, or a JSON-lines file refused before its first record,
  // never replaces the target; records already placed stay where they are.
  fd_.reset();
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

std::string OutputFile::refusal() const { return concat("cannot write ", what_, " '", path_, "'"); }

void OutputFile::write_all(std::string_view bytes) {
  require(bool(fd_), refusal(), ": it is already complete");
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = reason();
      fail(refusal(), ": ", why);
    }
    written_ += n;
    bytes.remove_prefix(std::size_t(n));
  }
}

void OutputFile::write(std::string_view text) {
  if (kind_ != Kind::document) throw std::logic_error("OutputFile::write on JSON lines: use append_line");
  write_all(text);
}

void OutputFile::append_line(std::string_view record) {
  if (kind_ != Kind::json_lines) throw std::logic_error("OutputFile::append_line on a document: use write");
  const off_t before = written_;
  try {
    std::string line(record);
    line += '\n';
    write_all(line);
  } catch (const Error&) {
    // A cut line would make the whole file unreadable as JSON lines.
    if (regular_ && ::ftruncate(fd_.get(), before) == 0) {
      written_ = before;
      ::lseek(fd_.get(), before, SEEK_SET);
    }
    throw;
  }
  // The first record replaces the old file; later ones are appended in
  // place, so that a run that is killed leaves its records where they belong.
  if (!temp_.empty()) place();
}

void OutputFile::place() {
  if (::rename(temp_.c_str(), rename_to_.c_str()) != 0) {
    const std::string why = reason();
    fd_.reset();
    ::unlink(temp_.c_str());
    temp_.clear();
    fail(refusal(), ": ", why);
  }
  temp_.clear();
}

void OutputFile::commit() {
  // Synced before the rename, so that a crash leaves the old file or the whole new one.
  if ((regular_ && ::fsync(fd_.get()) != 0) || ::close(fd_.release()) != 0) {
    const std::string why = reason();
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
    fail(refusal(), ": ", why);
  }
  if (!temp_.empty()) place();
}

void OutputFile::check_apart(const OutputFile& a, const OutputFile& b) {
  if (!a.regular_ || !b.regular_) return;
  require(a.dir_dev_ != b.dir_dev_ || a.dir_ino_ != b.dir_ino_ || a.name_ != b.name_, a.what_, " and ", b.what_,
          " name the same file '", b.path_, "'");
}

void flush_stdout() {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return;
  const std::string why = errno != 0 ? reason() : std::string("write error");
  std::clearerr(stdout);
  fail("cannot write to standard output: ", why);
}

}  // namespace dso
