#pragma once
// Where the cpu backend puts what a GPU fetch buffer would hold: the tokens of
// one layer that attention reads, [sequence][kv_head][rows][head_dim] for K and
// for V, and the selection they were fetched for.
#include <cstdint>
#include <vector>

namespace dso {

template <class T>
struct CpuFetchSlot {
  CpuFetchSlot(int sequences, int kv_heads, std::int64_t rows, int head_dim)
      : kv_heads(kv_heads),
        rows(rows),
        head_dim(head_dim),
        indices(std::size_t(sequences) * kv_heads * rows),
        fetched(std::size_t(sequences) * kv_heads),
        keys(indices.size() * head_dim),
        values(keys.size()) {}

  std::int64_t head(int sequence, int kv_head) const { return std::int64_t(sequence) * kv_heads + kv_head; }
  std::int32_t* indices_of(int s, int h) { return indices.data() + head(s, h) * rows; }
  T* keys_of(int s, int h) { return keys.data() + head(s, h) * rows * head_dim; }
  T* values_of(int s, int h) { return values.data() + head(s, h) * rows * head_dim; }

  int kv_heads;
  std::int64_t rows;
  int head_dim;
  int layer = -1;                     // the layer whose tokens it holds
  std::vector<std::int64_t> lengths;  // per sequence, the cache length it was filled for
  std::vector<std::int32_t> indices;  // selected positions, ascending
  std::vector<std::int64_t> fetched;  // per (sequence, KV head), rows that came from the host
  std::vector<T> keys;
  std::vector<T> values;
};

}  // namespace dso
