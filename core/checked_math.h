#pragma once
// Sizes computed from user-supplied dimensions (a huge capacity, a typo in a
// shape) must fail with a message rather than wrap around.
#include <cstdint>

#include "core/error.h"

namespace dso {

template <class... Factors>
std::int64_t checked_product(const char* what, Factors... factors) {
  std::int64_t product = 1;
  const bool overflow = (__builtin_mul_overflow(product, std::int64_t(factors), &product) || ...);
  require(!overflow, what, " overflows 64 bits");
  return product;
}

inline std::int64_t checked_sum(const char* what, std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  require(!__builtin_add_overflow(a, b, &sum), what, " overflows 64 bits");
  return sum;
}

}  // namespace dso
