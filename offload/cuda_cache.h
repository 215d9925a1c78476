#pragma once
// What the cuda engine keeps for its policy, and the one way tokens enter it:
//  - K and V, head-major [sequence][layer][kv_head][capacity][head_dim], in
//    GPU memory (dense_gpu, ds_gpu) or in the pinned host cache, which
//    kernels read and write directly through its device addresses;
//  - the label cache [sequence][layer][kv_head][capacity][r] and the label
//    channels [layer][kv_head][r] (sparse policies under Selector::labels);
//  - a ring of the newest recent + 1 tokens per (sequence, layer, KV head)
//    (host-resident sparse policies: the window attended from the GPU);
//  - the tokens cached per (layer, sequence), on the device, advanced by a
//    kernel, and on the host, counting what has been queued.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gpu/memory.h"
#include "gpu/rows.h"
#include "gpu/window_ring.h"
#include "host_cache/host_kv_cache.h"
#include "host_cache/host_memory.h"
#include "offload/engine.h"

namespace dso {

class CudaCache {
 public:
  explicit CudaCache(const EngineConfig& config);

  // GPU memory the cache of this configuration holds.
  static std::int64_t device_bytes(const EngineConfig& config);

  std::int64_t length(int sequence, int layer) const;
  // Per sequence, the tokens of `layer` (host count, current as of the last queued append).
  std::span<const std::int64_t> lengths(int layer) const;
  // Per sequence, the same count on the device: what kernels queued now will see.
  std::int32_t* device_lengths(int layer) const;

  // (sequence, kv_head, position), device addresses, of the layer's K/V and labels.
  gpu::Rows keys(int layer) const;
  gpu::Rows values(int layer) const;
  gpu::Rows labels(int layer) const;
  const std::int32_t* channels(int layer) const;
  gpu::WindowRing window(int layer) const;
  // The host cache's region of one (sequence, layer, KV head), for DMA copies.
  const std::byte* host_keys(int sequence, int layer, int kv_head) const;
  const std::byte* host_values(int sequence, int layer, int kv_head) const;

  // Appends `count` tokens to sequences [first, first + sequences) of one
  // layer, ordered on `stream`: K/V, labels and window, then the lengths.
  // k, v: (sequence, kv_head, i) device rows of the new tokens.
  void append(int layer, int first, int sequences, gpu::ConstRows k, gpu::ConstRows v, int count,
              cudaStream_t stream);

 private:
  bool sparse() const { return is_sparse(config_.policy); }
  bool host_kv() const { return keeps_kv_on_host(config_.policy); }
  bool has_window() const { return sparse() && host_kv(); }
  std::int64_t elem() const { return dtype_size(config_.dtype); }
  std::int64_t plane_elements() const;  // all of K (or of V)

  EngineConfig config_;
  HostKVLayout layout_;
  std::unique_ptr<HostMemory> host_kv_;  // K plane then V plane, host-resident policies
  std::byte* kv_device_ = nullptr;       // K plane then V plane as kernels address them
  gpu::DeviceBuffer gpu_kv_;             // GPU-resident policies
  gpu::DeviceBuffer labels_;
  gpu::DeviceBuffer channels_;
  gpu::DeviceBuffer window_;             // K ring then V ring
  std::int64_t window_size_ = 0;
  gpu::DeviceBuffer device_lengths_;     // [layer][sequence] int32
  std::vector<std::int64_t> lengths_;    // [layer][sequence]
};

}  // namespace dso
