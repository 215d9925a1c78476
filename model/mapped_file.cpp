#include "model/mapped_file.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "core/error.h"
#include "core/input_file.h"

namespace dso {

namespace {

// A mapped file that shrinks under the process (truncated, or rewritten in
// place) turns a read of a lost page into SIGBUS, which would end the run
// with a core dump and no word of why. Reading the whole model instead of
// mapping it would cost its size in memory for weights that are converted
// once, so the mapping stays and a SIGBUS inside a live one is reported as
// one line and exit status 2. The handler may only use async-signal-safe
// calls, so each mapping's message is made when it is mapped.
struct LiveMapping {
  std::atomic<const char*> begin{nullptr};
  std::size_t size = 0;
  char message[512] = {};
  std::size_t message_size = 0;
};

// More live mappings than this (the tool has one or two) go unwatched.
constexpr int kTrackedMappings = 16;
LiveMapping live[kTrackedMappings];
std::mutex live_lock;

void on_sigbus(int, siginfo_t* info, void*) {
  const char* at = static_cast<const char*>(info->si_addr);
  for (const LiveMapping& m : live) {
    const char* begin = m.begin.load();
    if (begin && at >= begin && at < begin + m.size) {
      [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, m.message, m.message_size);
      ::_exit(2);
    }
  }
  // Not a mapped file's: the default action, when the faulting access repeats.
  ::signal(SIGBUS, SIG_DFL);
}

void track(const void* data, std::size_t size, const std::string& path) {
  const std::lock_guard<std::mutex> lock(live_lock);
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, nullptr) == 0;
  }();
  if (!installed) return;
  for (LiveMapping& m : live) {
    if (m.begin.load()) continue;
    std::string text = concat(program_invocation_short_name, ": error: the file '", path,
                              "' changed while it was mapped (truncated or rewritten): run again once it is whole");
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    text.resize(std::min(text.size(), sizeof m.message - 1));
    text += '\n';
    std::memcpy(m.message, text.data(), text.size());
    m.message_size = text.size();
    m.size = size;
    m.begin.store(static_cast<const char*>(data));
    return;
  }
}

void untrack(const void* data) {
  const std::lock_guard<std::mutex> lock(live_lock);
  for (LiveMapping& m : live)
    if (m.begin.load() == data) m.begin.store(nullptr);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  InputFile in = open_regular_file(path, concat("cannot open '", path, "'"));
  require(in.st.st_size > 0, "'", path, "' is empty");
  size_ = std::size_t(in.st.st_size);
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, in.fd.get(), 0);
  require(p != MAP_FAILED, "cannot map '", path, "' (", in.st.st_size, " bytes): ", std::strerror(errno));
  data_ = p;
  fd_ = in.fd.release();
  track(data_, size_, path_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (data_) {
    untrack(data_);
    ::munmap(data_, size_);
  }
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

}  // namespace dso
