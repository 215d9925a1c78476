#pragma once
// The K/V cache of every sequence in host memory, head-major: K and V are each
// [sequence][layer][kv_head][capacity][head_dim], so the tokens of one
// (sequence, layer, KV head) are one contiguous region (256K tokens x 256 B =
// 64 MiB), and a sorted gather of one head's selected tokens stays within it,
// which is what lets a sparse PCIe fetch run near the contiguous rate.
// Tokens of a (sequence, layer) are appended in order; its KV heads share one
// length. Elements are 16-bit (dso::Half or dso::BFloat16 bit patterns).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "host_cache/host_memory.h"

namespace dso {

struct HostKVLayout {
  int sequences = 0;
  int layers = 0;
  int kv_heads = 0;
  int head_dim = 0;
  std::int64_t capacity = 0;  // tokens per (sequence, layer)
  DType dtype = DType::f16;

  void validate() const;
  // Bytes of K and V together: 2 * sequences * layers * kv_heads * capacity * head_dim * 2.
  // Throws where the count overflows 64 bits.
  std::int64_t bytes() const;
  // Elements from the start of K (or V) to the region of one (sequence, layer, KV head).
  std::int64_t region_offset(int sequence, int layer, int kv_head) const;
};

class HostKVCache {
 public:
  // Allocates the whole capacity up front; throws dso::Error where the layout
  // is invalid or the memory cannot be had.
  explicit HostKVCache(const HostKVLayout& layout, HostMemoryKind kind = HostMemoryKind::automatic);

  const HostKVLayout& layout() const { return layout_; }
  HostMemoryKind memory_kind() const { return memory_->kind(); }
  // Bytes of K/V storage held, equal to layout().bytes().
  std::int64_t bytes() const { return memory_->bytes(); }

  std::int64_t length(int sequence, int layer) const;

  // Appends `count` tokens to one (sequence, layer); k and v are
  // [count][kv_heads][head_dim]. Throws, changing nothing, where the sequence
  // or layer does not exist or the tokens do not fit in the capacity.
  void append(int sequence, int layer, const void* k, const void* v, std::int64_t count);

  // Copies tokens [begin, begin + count) of one head into k_out, v_out, each
  // [count][head_dim]. Throws where the range is not cached.
  void read(int sequence, int layer, int kv_head, std::int64_t begin, std::int64_t count, void* k_out,
            void* v_out) const;

  // The region of one head: [capacity][head_dim], rows below length() valid.
  const std::byte* keys(int sequence, int layer, int kv_head) const;
  const std::byte* values(int sequence, int layer, int kv_head) const;
  template <class T>
  const T* keys_as(int sequence, int layer, int kv_head) const {
    return reinterpret_cast<const T*>(keys(sequence, layer, kv_head));
  }
  template <class T>
  const T* values_as(int sequence, int layer, int kv_head) const {
    return reinterpret_cast<const T*>(values(sequence, layer, kv_head));
  }

 private:
  void check_position(int sequence, int layer) const;
  void check_head(int kv_head) const;
  std::byte* key_region(int sequence, int layer, int kv_head) const;

  HostKVLayout layout_;
  std::int64_t row_bytes_ = 0;    // one token of one head
  std::int64_t plane_bytes_ = 0;  // all of K (or of V)
  std::unique_ptr<HostMemory> memory_;
  std::vector<std::int64_t> lengths_;  // [sequence][layer]
};

}  // namespace dso
