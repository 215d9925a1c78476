#include "cli/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace dso::cli {

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), terminal_(isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
  if (terminal_ && drawn_) std::fputc('\n', stderr);
}

void ProgressBar::update(double done, double planned, const std::string& detail) {
  const double fraction = planned > 0 ? std::clamp(done / planned, 0.0, 1.0) : 1.0;
  const bool finished = fraction >= 1.0;
  if (!terminal_) {
    const int tenths = int(fraction * 10);
    if (tenths == tenths_shown_) return;
    tenths_shown_ = tenths;
    std::fprintf(stderr, "%s %3d%%  %s\n", label_.c_str(), int(fraction * 100), detail.c_str());
    std::fflush(stderr);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && !finished && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  constexpr int width = 30;
  const int filled = int(fraction * width);
  std::fprintf(stderr, "\r%s [%s%s] %3d%%  %s\033[K", label_.c_str(), std::string(std::size_t(filled), '#').c_str(),
               std::string(std::size_t(width - filled), ' ').c_str(), int(fraction * 100), detail.c_str());
  std::fflush(stderr);
}

}  // namespace dso::cli
