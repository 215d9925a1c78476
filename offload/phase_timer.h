#pragma once
// Adds the wall-clock time of a scope, in milliseconds, to a counter: the
// cpu backend's phase times in StepStats.
#include <chrono>

namespace dso {

class PhaseTimer {
 public:
  explicit PhaseTimer(double& ms) : ms_(ms), start_(std::chrono::steady_clock::now()) {}
  ~PhaseTimer() { ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count(); }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  double& ms_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dso
