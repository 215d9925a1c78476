#pragma once
// One family of errors: every failure the user can cause is a dso::Error whose
// message names the problem; callers at the edge print it as one line.
#include <sstream>
#include <stdexcept>
#include <string>

namespace dso {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(concat(args...));
}

template <class... Args>
void require(bool ok, const Args&... args) {
  if (!ok) fail(args...);
}

}  // namespace dso
