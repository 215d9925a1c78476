// The cuda backend: every policy on the GPU behind the Engine API, following
// offload/policy_rules.h as the cpu backend does (which tokens are selectable,
// what the window holds, k, byte counts), so that the cpu backend is its
// reference. Per layer, on the engine's stream unless said otherwise:
//   dense_gpu        append K/V in GPU memory; dense decode attention.
//   ds_gpu           label scores -> top-k over the n cached tokens; append;
//                    the current token joins the index list; attention reads
//                    the cache rows through it. Under Selector::sparq the
//                    scores come from the full cached keys at the channels
//                    each step's query picks (gpu/sparq.h), with no labels.
//   flexgen          the layer's K/V, fetched whole from the pinned host
//                    cache into a GPU slot one layer ahead on a side stream;
//                    the new token goes to the host cache (zero-copy) and
//                    into the slot; dense attention over the slot.
//   ds_offload_sync  scores -> top-k -> zero-copy gather of the selected
//                    tokens below the window -> append -> the window copied
//                    behind them -> attention over the slot: no overlap.
//   ds_offload       the same, with layer i+1's selection and gather issued
//                    to the Prefetcher during layer i with the speculative
//                    query; sync layers select with their true query.
// Lengths, selection counts and window bookkeeping stay on the device, so a
// step moves nothing from host to device but the K/V it fetches, and the
// statistics are counted on the host from the policy rules, with no waits.
#include "offload/cuda_engine.h"

#include <algorithm>
#include <optional>
#include <span>
#include <vector>

#include "core/checked_math.h"
#include "core/device.h"
#include "core/error.h"
#include "gpu/append.h"
#include "gpu/check.h"
#include "gpu/current_token.h"
#include "gpu/decode_attention.h"
#include "gpu/memory.h"
#include "gpu/window_assembly.h"
#include "offload/available_memory.h"
#include "offload/backends.h"
#include "offload/config_checks.h"
#include "offload/cuda_cache.h"
#include "offload/cuda_layer_fetcher.h"
#include "offload/format_bytes.h"
#include "offload/policy_rules.h"
#include "prefetch/fetch_slot.h"
#include "prefetch/phase_events.h"
#include "prefetch/prefetcher.h"
#include "prefetch/sparse_fetch.h"
#include "prefetch/token_selection.h"

namespace dso {

namespace {

// Phases one layer may record (select and fetch on two streams, attend).
constexpr int kPhasesPerLayer = 6;

// The most rows attention reads per (sequence, KV head): the whole cache for
// the dense policies; the largest selection and the current token for the
// sparse ones (k grows with the context where k_fraction is set, and the
// prefetcher may select over a layer at full capacity).
std::int64_t attended_rows(const EngineConfig& c) {
  if (!is_sparse(c.policy)) return c.capacity;
  return selection_size(c.capacity, budget_at(c, c.capacity)) + 1;
}

SelectionShape selection_shape(const EngineConfig& c) {
  return {c.dtype,    c.batch,    c.shape.q_heads,
          c.shape.kv_heads, c.shape.head_dim, c.channels.r,
          c.capacity, c.selector == Selector::sparq ? c.sparq_r : 0};
}

SlotShape slot_shape(const EngineConfig& c) {
  return {c.dtype, c.batch, c.shape.kv_heads, c.shape.head_dim, attended_rows(c), is_sparse(c.policy)};
}

gpu::DecodeAttentionPlan attention_plan(const EngineConfig& c) {
  return gpu::plan_decode_attention(c.batch, c.shape.q_heads, c.shape.kv_heads, c.shape.head_dim,
                                    attended_rows(c));
}

std::int64_t selected_bytes(const EngineConfig& c) {
  if (c.policy != Policy::ds_gpu) return 0;
  return checked_product("the selection buffer", c.batch, c.shape.kv_heads, attended_rows(c) + 1, 4);
}

// GPU memory the engine's buffers take, by part.
struct Footprint {
  std::int64_t cache = 0;
  std::int64_t fetch = 0;      // slots, the prefetcher's selection workspace
  std::int64_t selection = 0;  // label scores, top-k workspace and indices of the compute stream
  std::int64_t attention = 0;

  std::int64_t total() const {
    std::int64_t sum = checked_sum("the GPU footprint", cache, fetch);
    sum = checked_sum("the GPU footprint", sum, selection);
    return checked_sum("the GPU footprint", sum, attention);
  }
};

Footprint footprint(const EngineConfig& c) {
  Footprint f;
  f.cache = CudaCache::device_bytes(c);
  f.attention = std::int64_t(attention_plan(c).workspace_bytes);
  switch (c.policy) {
    case Policy::dense_gpu: break;
    case Policy::ds_gpu:
      f.selection = checked_sum("the selection workspace", TokenSelection::device_bytes(selection_shape(c)),
                                selected_bytes(c));
      break;
    case Policy::flexgen: f.fetch = LayerFetcher::device_bytes(slot_shape(c)); break;
    case Policy::ds_offload_sync:
      f.fetch = FetchSlot::device_bytes(slot_shape(c));
      f.selection = SparseFetch::device_bytes(selection_shape(c));
      break;
    case Policy::ds_offload: f.fetch = Prefetcher::device_bytes(selection_shape(c), slot_shape(c)); break;
  }
  return f;
}

void check_supported(const EngineConfig& c) {
  const AttentionShape& s = c.shape;
  require(gpu::decode_attention_supports(s.q_heads, s.kv_heads, s.head_dim), "the cuda backend supports head_dim ",
          "64 or 128 and 1 to 8 query heads per KV head; the shape has head_dim ", s.head_dim, " and ", s.group(),
          " query heads per KV head (use the cpu backend)");
}

void check_footprint_fits(const EngineConfig& c) {
  const Footprint f = footprint(c);
  const std::int64_t free = available_gpu_bytes();
  require(f.total() <= free, "needs ", format_bytes(f.total()), " of GPU memory (cache ", format_bytes(f.cache),
          ", fetch buffers ", format_bytes(f.fetch), ", selection ", format_bytes(f.selection), ", attention ",
          format_bytes(f.attention), "), ", format_bytes(free), " free on ", device_name());
}

// Kernels read what they are given directly: GPU memory, managed memory, or
// pinned host memory mapped at the same address.
void require_device_accessible(const void* p, const char* what) {
  cudaPointerAttributes a{};
  const cudaError_t status = cudaPointerGetAttributes(&a, p);
  if (status != cudaSuccess) cudaGetLastError();  // clears the sticky-free error of the probe
  const bool ok = status == cudaSuccess && (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged ||
                                            (a.type == cudaMemoryTypeHost && a.devicePointer == p));
  require(ok, what, " must be a device pointer on the cuda backend (GPU, managed or mapped pinned memory)");
}

gpu::ConstRows as_const(const gpu::Rows& rows) { return {rows.data, rows.strides}; }

class CudaEngine final : public Engine {
 public:
  CudaEngine(const EngineConfig& config, const CudaEngineOptions& options)
      : config_(config),
        clock_(options.time_phases, kPhasesPerLayer * config.shape.layers),
        cache_(config),
        rows_(attended_rows(config)),
        attention_plan_(attention_plan(config)),
        attention_workspace_(attention_plan_.workspace_bytes),
        before_(std::size_t(config.batch)),
        budgets_(std::size_t(config.batch)),
        next_budgets_(std::size_t(config.batch)) {
    switch (config.policy) {
      case Policy::dense_gpu: break;
      case Policy::ds_gpu:
        selection_.emplace(selection_shape(config));
        selected_ = gpu::DeviceBuffer(std::size_t(selected_bytes(config)));
        break;
      case Policy::flexgen: layer_fetcher_.emplace(slot_shape(config), clock_); break;
      case Policy::ds_offload_sync:
        sync_slot_.emplace(slot_shape(config));
        sync_fetch_.emplace(selection_shape(config));
        break;
      case Policy::ds_offload: prefetcher_.emplace(selection_shape(config), slot_shape(config), clock_); break;
    }
  }

  ~CudaEngine() override {
    // Queued work still reads and writes the buffers about to be freed.
    cudaStreamSynchronize(stream_);
  }

  const EngineConfig& config() const override { return config_; }
  std::int64_t length(int sequence, int layer) const override { return cache_.length(sequence, layer); }

  void set_stream(cudaStream_t stream) override {
    // Work queued on the old stream comes before anything queued on the new one.
    stream_switch_.record(stream_);
    DSO_CUDA_CHECK(cudaStreamWaitEvent(stream, stream_switch_.get(), 0));
    stream_ = stream;
  }

  const StepStats& stats() const override {
    if (clock_.enabled()) {
      clock_.collect();
      stats_.ms_select = clock_.total_ms(Phase::select);
      stats_.ms_fetch = clock_.total_ms(Phase::fetch);
      stats_.ms_attend = clock_.total_ms(Phase::attend);
    }
    return stats_;
  }

  void reset_stats() override {
    clock_.reset();
    stats_ = {};
  }

  void prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) override {
    const std::int64_t n = cache_.length(sequence, layer);  // checks both
    require(count >= 0, "cannot append a negative token count (", count, ")");
    require(count <= config_.capacity - n, "appending ", count, " tokens to sequence ", sequence, " layer ", layer,
            " would hold ", n + count, " tokens, past its capacity of ", config_.capacity);
    if (count == 0) return;
    require_device_accessible(k, "prefill's k");
    require_device_accessible(v, "prefill's v");
    const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
    const gpu::RowStrides strides{0, d, std::int64_t(heads) * d};  // [count][kv_heads][head_dim]
    cache_.append(layer, sequence, 1, {k, strides}, {v, strides}, int(count), stream_);
  }

  void decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
              void* out) override {
    const std::span<const std::int64_t> lengths = cache_.lengths(layer);  // checks the layer
    check_decode_call(config_, layer, {q, k_new, v_new, q_next, out}, lengths);
    require_device_accessible(q, "decode's q");
    require_device_accessible(k_new, "decode's k_new");
    require_device_accessible(v_new, "decode's v_new");
    require_device_accessible(out, "decode's out");
    if (needs_q_next(config_, layer)) require_device_accessible(q_next, "decode's q_next");
    if (selects_speculatively(config_, layer))
      require(prefetcher_->holds(layer, lengths), "layer ", layer, " selects with the speculative query given to layer ",
              layer - 1, ", and none was given for its current cache: decode layer ", layer - 1, " with q_next first");
    std::copy(lengths.begin(), lengths.end(), before_.begin());

    const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
    const gpu::RowStrides strides{std::int64_t(heads) * d, d, std::int64_t(heads) * d};  // [batch][kv_heads][d]
    const StepInputs in{q, {k_new, strides}, {v_new, strides}, out};
    switch (config_.policy) {
      case Policy::dense_gpu: decode_dense(layer, in); break;
      case Policy::ds_gpu: decode_ds_gpu(layer, in); break;
      case Policy::flexgen: decode_flexgen(layer, in); break;
      case Policy::ds_offload_sync: decode_offload_sync(layer, in); break;
      case Policy::ds_offload: decode_offload(layer, in, q_next); break;
    }
    if (layer + 1 == config_.shape.layers) ++stats_.steps;
  }

 private:
  struct StepInputs {
    const void* q;
    gpu::ConstRows k_new;  // (sequence, kv_head, 0)
    gpu::ConstRows v_new;
    void* out;
  };

  int kv_heads() const { return config_.shape.kv_heads; }

  // One budget per sequence for a selection over `lengths` tokens.
  void fill_budgets(std::span<const std::int64_t> lengths, std::vector<TokenBudget>& budgets) const {
    for (std::size_t s = 0; s < budgets.size(); ++s) budgets[s] = budget_at(config_, lengths[s]);
  }

  std::int64_t max_fetched(std::span<const std::int64_t> lengths, std::span<const TokenBudget> budgets) const {
    std::int64_t most = 0;
    for (std::size_t s = 0; s < lengths.size(); ++s) most = std::max(most, fetched_tokens(lengths[s], budgets[s]));
    return most;
  }

  void count_fetched_bytes(std::span<const std::int64_t> lengths, std::span<const TokenBudget> budgets) {
    for (std::size_t s = 0; s < lengths.size(); ++s)
      stats_.h2d_bytes += fetched_tokens(lengths[s], budgets[s]) * kv_heads() * kv_token_bytes(config_);
  }

  void count_attended(std::span<const TokenBudget> budgets) {
    for (std::size_t s = 0; s < before_.size(); ++s) {
      const std::int64_t n = before_[s];
      stats_.tokens_selected += (is_sparse(config_.policy) ? selection_size(n, budgets[s]) + 1 : n + 1) * kv_heads();
    }
  }

  void append_step(int layer, const StepInputs& in) {
    cache_.append(layer, 0, config_.batch, in.k_new, in.v_new, 1, stream_);
  }

  // Attention of every sequence over `k`/`v` rows: the first lengths[...]
  // (per sequence, or per (sequence, KV head) where per_head), or those at
  // `indices` where given.
  void attend(const StepInputs& in, gpu::ConstRows k, gpu::ConstRows v, const std::int32_t* lengths, bool per_head,
              const std::int32_t* indices) {
    gpu::DecodeAttentionArgs a;
    a.dtype = config_.dtype;
    a.q = in.q;
    a.k = k;
    a.v = v;
    a.lengths = lengths;
    a.length_stride_sequence = per_head ? kv_heads() : 1;
    a.length_stride_head = per_head ? 1 : 0;
    a.indices = indices;
    a.index_stride = indices ? rows_ : 0;
    a.out = in.out;
    a.workspace = attention_workspace_.data();
    a.workspace_bytes = attention_workspace_.bytes();
    const int timer = clock_.begin(Phase::attend, stream_);
    gpu::decode_attention(attention_plan_, a, stream_);
    clock_.end(timer, stream_);
  }

  LayerSource source(int layer) const {
    return {as_const(cache_.keys(layer)), as_const(cache_.values(layer)), cache_.channels(layer),
            as_const(cache_.labels(layer)), cache_.device_lengths(layer)};
  }

  void decode_dense(int layer, const StepInputs& in) {
    append_step(layer, in);
    attend(in, as_const(cache_.keys(layer)), as_const(cache_.values(layer)), cache_.device_lengths(layer), false,
           nullptr);
    count_attended(budgets_);
  }

  void decode_ds_gpu(int layer, const StepInputs& in) {
    fill_budgets(before_, budgets_);
    std::int32_t* indices = selected_.as<std::int32_t>();
    std::int32_t* counts = indices + std::int64_t(config_.batch) * kv_heads() * rows_;
    const int timer = clock_.begin(Phase::select, stream_);
    const SelectionOutputs selected{indices, rows_, counts};
    if (config_.selector == Selector::sparq)
      selection_->select_sparq({in.q, as_const(cache_.keys(layer)), cache_.device_lengths(layer)}, budgets_, selected,
                               stream_);
    else
      selection_->select({in.q, cache_.channels(layer), as_const(cache_.labels(layer)), cache_.device_lengths(layer)},
                         budgets_, selected, stream_);
    clock_.end(timer, stream_);
    gpu::append_current_token({indices, rows_, counts, cache_.device_lengths(layer), config_.batch, kv_heads()},
                              stream_);
    append_step(layer, in);
    attend(in, as_const(cache_.keys(layer)), as_const(cache_.values(layer)), counts, true, indices);
    count_attended(budgets_);
  }

  void decode_flexgen(int layer, const StepInputs& in) {
    FetchSlot& slot = layer_fetcher_->acquire(layer, before_, cache_, stream_);
    // The new token was computed on the GPU: it joins the fetched layer there,
    // at row n, before the append advances the lengths past it.
    gpu::KVAppendArgs token;
    token.dtype = config_.dtype;
    token.head_dim = config_.shape.head_dim;
    token.k_new = in.k_new;
    token.v_new = in.v_new;
    token.tokens = {config_.batch, kv_heads(), 1, cache_.device_lengths(layer)};
    token.k_cache = slot.keys();
    token.v_cache = slot.values();
    token.capacity = config_.capacity;
    gpu::append_kv(token, stream_);
    append_step(layer, in);
    const int next = (layer + 1) % config_.shape.layers;
    layer_fetcher_->prefetch(next, cache_.lengths(next), cache_, stream_);
    attend(in, as_const(slot.keys()), as_const(slot.values()), cache_.device_lengths(layer), false, nullptr);
    for (std::int64_t n : before_) stats_.h2d_bytes += n * kv_heads() * kv_token_bytes(config_);
    count_attended(budgets_);
  }

  // After the append: the window behind the fetched rows, and what attention reads.
  void attend_slot(int layer, const StepInputs& in, FetchSlot& slot) {
    const int timer = clock_.begin(Phase::fetch, stream_);
    gpu::assemble_window({config_.dtype, config_.shape.head_dim, config_.batch, kv_heads(), cache_.window(layer),
                          cache_.device_lengths(layer), config_.budget.sink, config_.budget.recent, slot.fetched(),
                          slot.keys(), slot.values(), slot.attended()},
                         stream_);
    clock_.end(timer, stream_);
    attend(in, as_const(slot.keys()), as_const(slot.values()), slot.attended(), true, nullptr);
  }

  void decode_offload_sync(int layer, const StepInputs& in) {
    fill_budgets(before_, budgets_);
    sync_fetch_->fill(*sync_slot_, source(layer), in.q, budgets_, max_fetched(before_, budgets_), stream_, clock_);
    count_fetched_bytes(before_, budgets_);
    append_step(layer, in);
    attend_slot(layer, in, *sync_slot_);
    count_attended(budgets_);
  }

  void decode_offload(int layer, const StepInputs& in, const void* q_next) {
    fill_budgets(before_, budgets_);
    if (selects_synchronously(config_, layer)) {
      prefetcher_->issue(layer, source(layer), in.q, budgets_, max_fetched(before_, budgets_), before_, stream_);
      count_fetched_bytes(before_, budgets_);
    }
    if (needs_q_next(config_, layer)) {
      // Layer + 1's selection over the tokens it holds now, fetched while this layer computes.
      const std::span<const std::int64_t> next = cache_.lengths(layer + 1);
      fill_budgets(next, next_budgets_);
      prefetcher_->issue(layer + 1, source(layer + 1), q_next, next_budgets_, max_fetched(next, next_budgets_), next,
                         stream_);
      count_fetched_bytes(next, next_budgets_);
    }
    FetchSlot& slot = prefetcher_->acquire(layer, stream_);
    append_step(layer, in);
    attend_slot(layer, in, slot);
    prefetcher_->release(layer, stream_);
    count_attended(budgets_);
  }

  EngineConfig config_;
  // The legacy default stream until set_stream: ordered with the caller's
  // plain cudaMemcpy and default-stream kernels without any set-up.
  cudaStream_t stream_ = nullptr;
  mutable PhaseEvents clock_;
  CudaCache cache_;
  std::int64_t rows_;
  gpu::DecodeAttentionPlan attention_plan_;
  gpu::DeviceBuffer attention_workspace_;
  std::optional<TokenSelection> selection_;  // ds_gpu
  gpu::DeviceBuffer selected_;               // ds_gpu: indices [batch][kv_heads][rows], counts [batch][kv_heads]
  std::optional<LayerFetcher> layer_fetcher_;  // flexgen
  std::optional<FetchSlot> sync_slot_;         // ds_offload_sync
  std::optional<SparseFetch> sync_fetch_;      // ds_offload_sync
  std::optional<Prefetcher> prefetcher_;       // ds_offload
  std::vector<std::int64_t> before_;           // per sequence: the layer's tokens before the step's
  std::vector<TokenBudget> budgets_;           // per sequence, for the layer decoded
  std::vector<TokenBudget> next_budgets_;      // per sequence, for the layer prefetched
  mutable StepStats stats_;
  gpu::Event stream_switch_;
};

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options) {
  check_supported(config);
  check_footprint_fits(config);
  return std::make_unique<CudaEngine>(config, options);
}

std::unique_ptr<Engine> create_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options) {
  require(config.backend == Backend::cuda, "create_cuda_engine needs config.backend = cuda");
  Engine::check_fits(config);
  return make_cuda_engine(config, options);
}

}  // namespace dso
