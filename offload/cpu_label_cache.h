#pragma once
// The label cache of the cpu backend, in host memory where the cuda backend
// keeps it on the GPU: for every (sequence, layer, KV head), [capacity][r]
// labels, K_t[S] for the layer and head's channels S, filled as tokens are
// appended.
#include <cstdint>
#include <vector>

#include "core/label_channels.h"
#include "cpu/labels.h"

namespace dso {

template <class T>
class CpuLabelCache {
 public:
  CpuLabelCache() = default;
  CpuLabelCache(const LabelChannels& channels, int sequences, std::int64_t capacity)
      : channels_(channels),
        capacity_(capacity),
        labels_(std::size_t(sequences) * channels.layers * channels.kv_heads * capacity * channels.r) {}

  // k: [count][kv_heads][head_dim], the keys of positions position .. position+count-1.
  void append(int sequence, int layer, std::int64_t position, const T* k, std::int64_t count, int head_dim) {
    for (int h = 0; h < channels_.kv_heads; ++h) {
      T* row = labels_.data() + offset(sequence, layer, h) + position * channels_.r;
      for (std::int64_t t = 0; t < count; ++t)
        cpu::gather_labels(k + (t * channels_.kv_heads + h) * head_dim, 1, head_dim, channels_.of(layer, h),
                           row + t * channels_.r);
    }
  }

  const T* of(int sequence, int layer, int kv_head) const { return labels_.data() + offset(sequence, layer, kv_head); }

 private:
  std::int64_t offset(int sequence, int layer, int kv_head) const {
    const std::int64_t head = (std::int64_t(sequence) * channels_.layers + layer) * channels_.kv_heads + kv_head;
    return head * capacity_ * channels_.r;
  }

  LabelChannels channels_;
  std::int64_t capacity_ = 0;
  std::vector<T> labels_;
};

}  // namespace dso
