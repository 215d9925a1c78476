#include "core/interrupt.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace dso {

namespace {

// Lock-free, so that the handler may touch it (a plain flag could tear).
std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

struct sigaction previous_action;

extern "C" void on_sigint(int) { interrupted.store(true, std::memory_order_relaxed); }

}  // namespace

InterruptScope::InterruptScope() {
  interrupted.store(false);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: the second Ctrl-C ends the process. SA_RESTART: reads and
  // writes under way go on instead of failing with EINTR.
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  require(sigaction(SIGINT, &action, &previous_action) == 0, "cannot install the SIGINT handler: ",
          std::strerror(errno));
}

InterruptScope::~InterruptScope() { sigaction(SIGINT, &previous_action, nullptr); }

bool interrupt_requested() { return interrupted.load(std::memory_order_relaxed); }

}  // namespace dso
