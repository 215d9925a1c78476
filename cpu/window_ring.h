#pragma once
// The window of newest tokens of one (sequence, layer, KV head), CPU
// reference of gpu/window_ring.h and gpu/window_assembly.h for one head: a
// ring of `size` rows of head_dim elements for K and for V, position p in row
// p mod size.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/recent_window.h"

namespace dso::cpu {

template <class T>
struct HeadRing {
  T* keys;  // [size][head_dim]
  T* values;
  std::int64_t size;
  int head_dim;
};

// Writes `count` tokens at positions position, position + 1, ...; only the
// newest `size` can stay. keys, values: token t at t * source_stride.
template <class T>
void append_to_ring(const HeadRing<T>& ring, std::int64_t position, const T* keys, const T* values,
                    std::int64_t source_stride, std::int64_t count) {
  for (std::int64_t t = std::max<std::int64_t>(0, count - ring.size); t < count; ++t) {
    const std::int64_t row = (position + t) % ring.size * ring.head_dim;
    std::memcpy(ring.keys + row, keys + t * source_stride, sizeof(T) * ring.head_dim);
    std::memcpy(ring.values + row, values + t * source_stride, sizeof(T) * ring.head_dim);
  }
}

// With n tokens cached before the step's, which the ring already holds:
// copies positions [window_begin(n, sink, recent), n] to slot rows fetched,
// fetched + 1, ... and returns the rows attention reads, fetched included.
template <class T>
std::int64_t assemble_window(const HeadRing<const T>& ring, std::int64_t n, std::int64_t sink, std::int64_t recent,
                             std::int64_t fetched, T* slot_keys, T* slot_values) {
  const std::int64_t begin = window_begin(n, sink, recent);
  for (std::int64_t p = begin; p <= n; ++p) {
    const std::int64_t row = p % ring.size * ring.head_dim;
    const std::int64_t to = (fetched + p - begin) * ring.head_dim;
    std::memcpy(slot_keys + to, ring.keys + row, sizeof(T) * ring.head_dim);
    std::memcpy(slot_values + to, ring.values + row, sizeof(T) * ring.head_dim);
  }
  return fetched + n + 1 - begin;
}

}  // namespace dso::cpu
