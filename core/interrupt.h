#pragma once
// Ctrl-C for long runs. While an InterruptScope lives, SIGINT only sets a
// flag; the run's loops poll it at their step boundaries and stop there by
// throwing Interrupted, so that everything allocated is released by ordinary
// unwinding and the user learns where the run stopped. The edge of the
// program prints the message as one line and exits with status 130 (128 +
// SIGINT, what a shell reports for a process SIGINT ended).
//
// The handler is one-shot: a second Ctrl-C, for a step that takes too long,
// has the default effect and ends the process at once.
#include <stdexcept>

#include "core/error.h"

namespace dso {

// Not a dso::Error: a stop the user asked for is not a failure to report as one.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Installs the flag-setting SIGINT handler for its lifetime and restores the
// previous disposition after. Clears the flag on entry. Not nestable.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

// Whether SIGINT arrived while an InterruptScope was installed.
bool interrupt_requested();

// For loops at a step boundary: throws Interrupted("interrupted at <where...>"),
// e.g. stop_if_interrupted("step ", step + 1, " of ", steps).
template <class... Args>
void stop_if_interrupted(const Args&... where) {
  if (interrupt_requested()) throw Interrupted(concat("interrupted at ", where...));
}

}  // namespace dso
