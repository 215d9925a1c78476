#pragma once
// Naive RoPE for tests, in both head layouts: Hugging Face rotates channel i
// with i + d/2, llama.cpp's GGUF weights rotate rows 2i and 2i+1; pair i turns
// by position * base^(-2i/d) in both.
#include <cmath>
#include <cstdint>

#include "calibration/rope_layout.h"

namespace dso::test {

inline void apply_rope(float* x, int d, std::int64_t position, calibration::HeadLayout layout, double base = 10000.0) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = double(position) * std::pow(base, -2.0 * i / d);
    const int a = layout == calibration::HeadLayout::hugging_face ? i : 2 * i;
    const int b = layout == calibration::HeadLayout::hugging_face ? i + half : 2 * i + 1;
    const double xa = x[a], xb = x[b];
    x[a] = float(xa * std::cos(angle) - xb * std::sin(angle));
    x[b] = float(xb * std::cos(angle) + xa * std::sin(angle));
  }
}

}  // namespace dso::test
