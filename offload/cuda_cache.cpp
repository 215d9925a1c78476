#include "offload/cuda_cache.h"

#include "core/checked_math.h"
#include "core/error.h"
#include "core/recent_window.h"
#include "gpu/advance_lengths.h"
#include "gpu/append.h"
#include "gpu/check.h"
#include "gpu/labels.h"
#include "gpu/window_ring.h"
#include "offload/policy_rules.h"

namespace dso {

namespace {

// The rows of sequences from `first` on.
gpu::Rows from_sequence(gpu::Rows rows, int first, std::int64_t elem) {
  rows.data = static_cast<std::byte*>(rows.data) + first * rows.strides.sequence * elem;
  return rows;
}

HostKVLayout kv_layout(const EngineConfig& c) {
  return {c.batch, c.shape.layers, c.shape.kv_heads, c.shape.head_dim, c.capacity, c.dtype};
}

}  // namespace

std::int64_t CudaCache::device_bytes(const EngineConfig& c) {
  std::int64_t total = keeps_kv_on_host(c.policy) ? 0 : kv_cache_bytes(c);
  total = checked_sum("the GPU cache size", total, label_cache_bytes(c));
  total = checked_sum("the GPU cache size", total, window_cache_bytes(c));
  if (uses_label_channels(c)) total = checked_sum("the GPU cache size", total, std::int64_t(c.channels.index.size()) * 4);
  return checked_sum("the GPU cache size", total, checked_product("the length table", c.shape.layers, c.batch, 4));
}

CudaCache::CudaCache(const EngineConfig& config)
    : config_(config),
      layout_(kv_layout(config)),
      labels_(std::size_t(label_cache_bytes(config))),
      window_(std::size_t(window_cache_bytes(config))),
      window_size_(window_rows(config.budget.recent)),
      device_lengths_(std::size_t(config.shape.layers) * config.batch * sizeof(std::int32_t)),
      lengths_(std::size_t(config.shape.layers) * config.batch, 0) {
  if (host_kv()) {
    host_kv_ = allocate_host_memory(layout_.bytes(), HostMemoryKind::automatic);
    require(host_kv_->kind() == HostMemoryKind::pinned || host_kv_->kind() == HostMemoryKind::numa_pinned,
            "the cuda backend needs the host K/V cache pinned, got ", host_memory_kind_name(host_kv_->kind()),
            " memory");
    void* device = nullptr;
    DSO_CUDA_CHECK(cudaHostGetDevicePointer(&device, host_kv_->data(), 0));
    kv_device_ = static_cast<std::byte*>(device);
  } else {
    gpu_kv_ = gpu::DeviceBuffer(std::size_t(layout_.bytes()));
    kv_device_ = gpu_kv_.as<std::byte>();
  }
  if (uses_label_channels(config)) {
    channels_ = gpu::DeviceBuffer(config.channels.index.size() * sizeof(std::int32_t));
    static_assert(sizeof(int) == sizeof(std::int32_t));
    DSO_CUDA_CHECK(cudaMemcpy(channels_.data(), config.channels.index.data(), channels_.bytes(),
                              cudaMemcpyHostToDevice));
  }
  DSO_CUDA_CHECK(cudaMemset(device_lengths_.data(), 0, device_lengths_.bytes()));
  // Those ran on the legacy default stream, which the engine's non-blocking
  // streams do not wait for (and a copy from pageable memory may return
  // before it lands): finish them before any kernel can read the results.
  DSO_CUDA_CHECK(cudaDeviceSynchronize());
}

std::int64_t CudaCache::plane_elements() const { return layout_.bytes() / 2 / elem(); }

std::int64_t CudaCache::length(int sequence, int layer) const {
  require(sequence >= 0 && sequence < config_.batch, "sequence ", sequence, " does not exist (the engine holds ",
          config_.batch, ")");
  return lengths(layer)[std::size_t(sequence)];
}

std::span<const std::int64_t> CudaCache::lengths(int layer) const {
  require(layer >= 0 && layer < config_.shape.layers, "layer ", layer, " does not exist (the model has ",
          config_.shape.layers, ")");
  return {lengths_.data() + std::size_t(layer) * config_.batch, std::size_t(config_.batch)};
}

std::int32_t* CudaCache::device_lengths(int layer) const {
  return device_lengths_.as<std::int32_t>() + std::int64_t(layer) * config_.batch;
}

gpu::Rows CudaCache::keys(int layer) const {
  const AttentionShape& s = config_.shape;
  const std::int64_t head = config_.capacity * s.head_dim;
  return {kv_device_ + layout_.region_offset(0, layer, 0) * elem(),
          {std::int64_t(s.layers) * s.kv_heads * head, head, s.head_dim}};
}

gpu::Rows CudaCache::values(int layer) const {
  gpu::Rows rows = keys(layer);
  rows.data = static_cast<std::byte*>(rows.data) + plane_elements() * elem();
  return rows;
}

gpu::Rows CudaCache::labels(int layer) const {
  const AttentionShape& s = config_.shape;
  const int r = config_.channels.r;
  const std::int64_t head = config_.capacity * r;
  return {labels_.as<std::byte>() + std::int64_t(layer) * s.kv_heads * head * elem(),
          {std::int64_t(s.layers) * s.kv_heads * head, head, r}};
}

const std::int32_t* CudaCache::channels(int layer) const {
  return channels_.as<std::int32_t>() + std::int64_t(layer) * config_.shape.kv_heads * config_.channels.r;
}

gpu::WindowRing CudaCache::window(int layer) const {
  const AttentionShape& s = config_.shape;
  const std::int64_t head = window_size_ * s.head_dim;
  const gpu::RowStrides strides{std::int64_t(s.layers) * s.kv_heads * head, head, s.head_dim};
  std::byte* keys = window_.as<std::byte>() + std::int64_t(layer) * s.kv_heads * head * elem();
  std::byte* values = keys + std::int64_t(window_.bytes() / 2);
  return {{keys, strides}, {values, strides}, window_size_};
}

const std::byte* CudaCache::host_keys(int sequence, int layer, int kv_head) const {
  return host_kv_->data() + layout_.region_offset(sequence, layer, kv_head) * elem();
}

const std::byte* CudaCache::host_values(int sequence, int layer, int kv_head) const {
  return host_keys(sequence, layer, kv_head) + plane_elements() * elem();
}

void CudaCache::append(int layer, int first, int sequences, gpu::ConstRows k, gpu::ConstRows v, int count,
                       cudaStream_t stream) {
  const AttentionShape& s = config_.shape;
  std::int32_t* positions = device_lengths(layer) + first;
  const gpu::NewTokens tokens{sequences, s.kv_heads, count, positions};

  gpu::KVAppendArgs kv;
  kv.dtype = config_.dtype;
  kv.head_dim = s.head_dim;
  kv.k_new = k;
  kv.v_new = v;
  kv.tokens = tokens;
  kv.k_cache = from_sequence(keys(layer), first, elem());
  kv.v_cache = from_sequence(values(layer), first, elem());
  kv.capacity = config_.capacity;
  gpu::append_kv(kv, stream);

  if (uses_label_channels(config_)) {
    gpu::LabelAppendArgs labels_args;
    labels_args.dtype = config_.dtype;
    labels_args.head_dim = s.head_dim;
    labels_args.r = config_.channels.r;
    labels_args.keys = k;
    labels_args.tokens = tokens;
    labels_args.channels = channels(layer);
    labels_args.labels = from_sequence(labels(layer), first, elem());
    labels_args.capacity = config_.capacity;
    gpu::append_labels(labels_args, stream);
  }
  if (has_window()) {
    gpu::WindowRing ring = window(layer);
    ring.keys = from_sequence(ring.keys, first, elem());
    ring.values = from_sequence(ring.values, first, elem());
    gpu::append_to_ring({config_.dtype, s.head_dim, k, v, sequences, s.kv_heads, count, positions, ring}, stream);
  }
  gpu::advance_lengths({positions, sequences, count}, stream);
  for (int i = first; i < first + sequences; ++i) lengths_[std::size_t(layer) * config_.batch + i] += count;
}

}  // namespace dso
