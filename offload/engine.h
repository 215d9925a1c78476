#pragma once
// The public embedding API: one attention engine per model, holding the K/V
// cache of `batch` sequences and running one policy over it. A model runner
// calls it once per layer and decode step; it knows nothing of the runner.
//
// Tensors are raw pointers in the backend's memory (host for Backend::cpu,
// device for Backend::cuda), of the config's dtype, row-major:
//   q, out:        [batch][q_heads][head_dim]   (q after RoPE)
//   k_new, v_new:  [batch][kv_heads][head_dim]  (k after RoPE)
// q, q_next and out may be views with other strides (EngineConfig's
// q_strides, out_strides). On the cuda backend work runs on the config's
// device and is ordered on the engine's stream (DeviceContext, set_stream).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/dtype.h"
#include "core/label_channels.h"
#include "core/kv_format.h"
#include "core/shape.h"

// cudaStream_t is CUstream_st*: the engine's stream is named without CUDA's headers.
struct CUstream_st;

namespace dso {

enum class Policy { dense_gpu, ds_gpu, flexgen, ds_offload, ds_offload_sync };
enum class Backend { cpu, cuda };
// How a sparse policy scores cached tokens before taking the top k:
//  labels  the label cache, K_t at the calibrated channels S_j (Double Sparsity);
//  sparq   SparQ's way, no calibration and no label cache: every step picks,
//          per sequence and KV head, the sparq_r channels of largest
//          sum over the group of |q_h[c]|, and reads the full keys at them.
//          It needs the keys where selection runs, so ds_gpu only.
enum class Selector { labels, sparq };

std::string_view policy_name(Policy p);
std::string_view selector_name(Selector s);
Selector parse_selector(std::string_view name);  // throws dso::Error naming the choices
Policy parse_policy(std::string_view name);  // throws dso::Error naming the choices
bool keeps_kv_on_host(Policy p);             // flexgen, ds_offload, ds_offload_sync
bool is_sparse(Policy p);                    // every policy but dense_gpu and flexgen

// Where a cuda engine runs. Two engines with different contexts (devices,
// streams) live side by side in one process; the cpu backend ignores it.
struct DeviceContext {
  int index = 0;                  // the CUDA device the engine allocates on and runs on
  CUstream_st* stream = nullptr;  // the engine's stream until set_stream; null: the legacy default stream
  int multiprocessors = 0;        // what grids are sized for; 0: the device's count, filled in at creation
};

// Element strides of a [batch][q_heads][head_dim] tensor that may be a view:
// between sequences and between query heads (a head's head_dim elements are
// contiguous). 0: packed, q_heads * head_dim and head_dim.
struct ActivationStrides {
  std::int64_t sequence = 0;
  std::int64_t head = 0;
};

struct EngineConfig {
  AttentionShape shape;
  DType dtype = DType::f16;      // of q, q_next, out, k_new, v_new and prefill's k, v
  std::optional<KVFormat> kv_format;  // what the cache stores; unset: the dtype's own format
  Policy policy = Policy::ds_offload;
  Backend backend = Backend::cpu;
  int batch = 1;
  std::int64_t capacity = 0;  // tokens per sequence, fixed at creation
  TokenBudget budget;         // budget.k = 0 with k_fraction > 0: k = k_fraction * context, per step
  double k_fraction = 0.0;    // context: the tokens cached when selection runs; k rounds down, at least 1
  LabelChannels channels;             // needed by the sparse policies under Selector::labels
  Selector selector = Selector::labels;
  int sparq_r = 0;                    // Selector::sparq: channels picked per step and KV head
  std::vector<int> sync_layers{0};    // ds_offload: layers that select with their true query (layer 0 always does)
  DeviceContext device;               // cuda backend
  ActivationStrides q_strides;        // q and q_next
  ActivationStrides out_strides;
};

// What the cache of this configuration stores.
KVFormat kv_format_in(const EngineConfig& config);
// The strides of q (q_next) and out, with packed ones filled in.
ActivationStrides q_strides_in(const EngineConfig& config);
ActivationStrides out_strides_in(const EngineConfig& config);

// Whether decode(layer) of an engine of this configuration must be given
// q_next: layer + 1 selects with a speculative query under ds_offload.
bool needs_q_next(const EngineConfig& config, int layer);
// Whether config.channels is read: a sparse policy under Selector::labels.
bool uses_label_channels(const EngineConfig& config);

// What a sparse policy's selection picks for one query, over the tokens a
// layer of one sequence holds, without decoding: for accuracy tools that
// compare selections (a speculative query against the true one).
struct SelectionProbe {
  std::int64_t cached = 0;  // n, the tokens selected among
  // The positions the top-k ranks, between the sink and the recent tokens;
  // the sink and recent tokens are selected whatever the query.
  std::int64_t ranked_begin = 0;
  std::int64_t ranked_end = 0;
  std::vector<std::vector<std::int32_t>> per_head;  // [kv_head]: the selected positions, ascending
};

// What a configuration needs, computed before anything is allocated. On the
// cpu backend the GPU part lives in host memory too.
struct MemoryPlan {
  std::int64_t host_bytes = 0;
  std::int64_t gpu_bytes = 0;
  // What the totals are made of:
  std::int64_t kv_bytes = 0;         // K and V of every sequence at capacity: host or GPU, by policy
  std::int64_t label_bytes = 0;      // label cache (GPU)
  std::int64_t window_bytes = 0;     // newest tokens kept on the GPU by host-resident sparse policies
  std::int64_t fetch_bytes = 0;      // buffers fetched K/V land in (GPU)
  std::int64_t workspace_bytes = 0;  // label scores and selected indices (GPU)
};

// Counters since the last reset_stats(); times are wall-clock on the host for
// the cpu backend and CUDA-event times for the cuda backend.
struct StepStats {
  std::int64_t steps = 0;            // decode calls of the last layer
  // Bytes that crossed (or, on cpu, would cross) PCIe host to device: K/V
  // fetched from the host cache. The current token and the recent window are
  // on the GPU already and never count.
  std::int64_t h2d_bytes = 0;
  std::int64_t tokens_selected = 0;  // tokens attended, summed over layers, sequences and KV heads
  double ms_select = 0;              // label scoring and top-k
  double ms_fetch = 0;               // moving K/V to where attention reads it
  double ms_attend = 0;              // attention itself
};

class Engine {
 public:
  // Validates the configuration and checks that its MemoryPlan fits the host
  // and the GPU before allocating; throws dso::Error saying what is needed and
  // what is available otherwise.
  static std::unique_ptr<Engine> create(const EngineConfig& config);
  // The memory a valid configuration needs; throws dso::Error if it is invalid.
  static MemoryPlan plan(const EngineConfig& config);
  // Validates and checks that the plan fits this machine, allocating nothing:
  // lets a caller refuse a whole run of several engines before starting one.
  static MemoryPlan check_fits(const EngineConfig& config);

  virtual ~Engine() = default;
  virtual const EngineConfig& config() const = 0;

  // Appends `count` tokens of one sequence at one layer (prefill, or a
  // synthetic fill): k, v are [count][kv_heads][head_dim]. A layer's tokens
  // are visible to decode once appended. Throws, appending nothing, past capacity.
  virtual void prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) = 0;

  // One decode step of one layer for every sequence: appends k_new/v_new and
  // writes the attention output of q over the cache (the new token included).
  // q_next ([batch][q_heads][head_dim]) is the speculative query of layer+1:
  // required under ds_offload where layer+1 is not a sync layer, which then
  // selects with it over the tokens it holds now; ignored otherwise. Checks
  // every argument, and that every sequence has room, before changing anything.
  virtual void decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
                      void* out) = 0;

  // Tokens cached for a sequence at a layer.
  virtual std::int64_t length(int sequence, int layer) const = 0;

  bool needs_q_next(int layer) const { return dso::needs_q_next(config(), layer); }
  // The selection decode(layer) would make with query q ([q_heads][head_dim]
  // of one sequence, in host memory, of the config's dtype) over the tokens
  // the layer holds now, the step's own token not included. Changes nothing,
  // statistics included. Throws dso::Error for a policy that selects nothing,
  // and on the cuda backend, which has no probe.
  virtual SelectionProbe probe_selection(int layer, int sequence, const void* q) = 0;

  // Orders later work on `stream` (a cudaStream_t), after all queued before.
  virtual void set_stream(CUstream_st* stream) = 0;
  virtual const StepStats& stats() const = 0;
  virtual void reset_stats() = 0;
};

}  // namespace dso
