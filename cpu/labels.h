#pragma once
// Label cache construction, CPU reference. The label of token t for one KV head
// is K_t[S], the r calibrated channels S of that head.
#include <cstdint>
#include <span>

namespace dso::cpu {

// keys: [n][d]; labels: [n][channels.size()]
template <class T>
void gather_labels(const T* keys, std::int64_t n, int d, std::span<const int> channels, T* labels);

}  // namespace dso::cpu
