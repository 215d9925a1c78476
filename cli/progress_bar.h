#pragma once
// A progress bar on stderr for the long-running subcommands: redrawn in place
// at most ten times a second on a terminal ("calibrate [#####     ] 52%  ..."),
// one plain line per tenth of the work otherwise, so that a log file stays short.
#include <chrono>
#include <string>

namespace dso::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // done of planned units; detail follows the bar ("window 2/8  ppl 12.84").
  void update(double done, double planned, const std::string& detail = {});

 private:
  std::string label_;
  bool terminal_;
  bool drawn_ = false;
  int tenths_shown_ = -1;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace dso::cli
