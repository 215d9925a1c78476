#include "cpu/labels.h"

#include "core/dtype.h"

namespace dso::cpu {

template <class T>
void gather_labels(const T* keys, std::int64_t n, int d, std::span<const int> channels, T* labels) {
  const auto r = static_cast<std::int64_t>(channels.size());
  for (std::int64_t t = 0; t < n; ++t)
    for (std::int64_t c = 0; c < r; ++c) labels[t * r + c] = keys[t * d + channels[c]];
}

template void gather_labels(const Half*, std::int64_t, int, std::span<const int>, Half*);
template void gather_labels(const BFloat16*, std::int64_t, int, std::span<const int>, BFloat16*);
template void gather_labels(const float*, std::int64_t, int, std::span<const int>, float*);

}  // namespace dso::cpu
