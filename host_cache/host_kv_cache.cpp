#include "host_cache/host_kv_cache.h"

#include <cstring>

#include "core/checked_math.h"
#include "core/error.h"

namespace dso {

void HostKVLayout::validate() const {
  require(sequences > 0 && layers > 0 && kv_heads > 0 && head_dim > 0,
          "host K/V cache dimensions must be positive: sequences=", sequences, " layers=", layers,
          " kv_heads=", kv_heads, " head_dim=", head_dim);
  require(capacity > 0, "host K/V cache capacity must be positive, got ", capacity);
  require(dtype == DType::f16 || dtype == DType::bf16, "host K/V cache dtype must be f16 or bf16");
  bytes();
}

std::int64_t HostKVLayout::bytes() const {
  return checked_product("the host K/V cache size", 2, sequences, layers, kv_heads, capacity, head_dim,
                         dtype_size(dtype));
}

std::int64_t HostKVLayout::region_offset(int sequence, int layer, int kv_head) const {
  return ((std::int64_t(sequence) * layers + layer) * kv_heads + kv_head) * capacity * head_dim;
}

HostKVCache::HostKVCache(const HostKVLayout& layout, HostMemoryKind kind) : layout_(layout) {
  layout_.validate();
  row_bytes_ = std::int64_t(layout_.head_dim) * dtype_size(layout_.dtype);
  plane_bytes_ = layout_.bytes() / 2;
  memory_ = allocate_host_memory(layout_.bytes(), kind);
  lengths_.assign(std::size_t(layout_.sequences) * layout_.layers, 0);
}

void HostKVCache::check_position(int sequence, int layer) const {
  require(sequence >= 0 && sequence < layout_.sequences, "sequence ", sequence, " does not exist (the cache holds ",
          layout_.sequences, ")");
  require(layer >= 0 && layer < layout_.layers, "layer ", layer, " does not exist (the cache holds ",
          layout_.layers, ")");
}

void HostKVCache::check_head(int kv_head) const {
  require(kv_head >= 0 && kv_head < layout_.kv_heads, "KV head ", kv_head, " does not exist (the cache holds ",
          layout_.kv_heads, ")");
}

std::int64_t HostKVCache::length(int sequence, int layer) const {
  check_position(sequence, layer);
  return lengths_[std::size_t(sequence) * layout_.layers + layer];
}

void HostKVCache::append(int sequence, int layer, const void* k, const void* v, std::int64_t count) {
  check_position(sequence, layer);
  std::int64_t& len = lengths_[std::size_t(sequence) * layout_.layers + layer];
  require(count >= 0, "cannot append a negative token count (", count, ")");
  require(count <= layout_.capacity - len, "appending ", count, " tokens to sequence ", sequence, " layer ", layer,
          " would hold ", len + count, " tokens, past its capacity of ", layout_.capacity);
  if (count == 0) return;
  require(k != nullptr && v != nullptr, "append of ", count, " tokens was given a null K or V pointer");
  const auto* k_in = static_cast<const std::byte*>(k);
  const auto* v_in = static_cast<const std::byte*>(v);
  for (int h = 0; h < layout_.kv_heads; ++h) {
    std::byte* k_row = key_region(sequence, layer, h) + len * row_bytes_;
    std::byte* v_row = k_row + plane_bytes_;
    for (std::int64_t t = 0; t < count; ++t) {
      const std::int64_t from = (t * layout_.kv_heads + h) * row_bytes_;
      std::memcpy(k_row + t * row_bytes_, k_in + from, std::size_t(row_bytes_));
      std::memcpy(v_row + t * row_bytes_, v_in + from, std::size_t(row_bytes_));
    }
  }
  len += count;
}

void HostKVCache::read(int sequence, int layer, int kv_head, std::int64_t begin, std::int64_t count, void* k_out,
                       void* v_out) const {
  const std::int64_t len = length(sequence, layer);
  check_head(kv_head);
  require(begin >= 0 && count >= 0 && count <= len - begin, "tokens [", begin, ", ", begin + count,
          ") of sequence ", sequence, " layer ", layer, " are not cached (it holds ", len, ")");
  if (count == 0) return;
  const auto bytes = std::size_t(count * row_bytes_);
  std::memcpy(k_out, keys(sequence, layer, kv_head) + begin * row_bytes_, bytes);
  std::memcpy(v_out, values(sequence, layer, kv_head) + begin * row_bytes_, bytes);
}

std::byte* HostKVCache::key_region(int sequence, int layer, int kv_head) const {
  check_position(sequence, layer);
  check_head(kv_head);
  return memory_->data() + layout_.region_offset(sequence, layer, kv_head) * dtype_size(layout_.dtype);
}

const std::byte* HostKVCache::keys(int sequence, int layer, int kv_head) const {
  return key_region(sequence, layer, kv_head);
}

const std::byte* HostKVCache::values(int sequence, int layer, int kv_head) const {
  return keys(sequence, layer, kv_head) + plane_bytes_;
}

}  // namespace dso
