// The cuda backend: every policy on the GPU behind the Engine API, following
// offload/policy_rules.h as the cpu backend does (which tokens are selectable,
// what the window holds, k, byte counts), so that the cpu backend is its
// reference. What each policy does per layer is in its offload/policy_<name>.cpp.
#include "offload/cuda_backend.h"

#include <algorithm>

#include "core/checked_math.h"
#include "core/device_context.h"
#include "core/error.h"
#include "gpu/check.h"
#include "offload/available_memory.h"
#include "offload/backends.h"
#include "offload/config_checks.h"
#include "gpu/window_assembly.h"
#include "offload/format_bytes.h"
#include "offload/policy_rules.h"

namespace dso {

namespace {

// Phases one layer may record (select and fetch on two streams, attend).
constexpr int kPhasesPerLayer = 6;

gpu::DecodeAttentionPlan attention_plan(const EngineConfig& c) {
  return gpu::plan_decode_attention(c.batch, c.shape.q_heads, c.shape.kv_heads, c.shape.head_dim,
                                    attended_rows(c));
}

// GPU memory the engine's buffers take, by part.
struct Footprint {
  std::int64_t cache = 0;
  CudaPolicyBytes policy;
  std::int64_t attention = 0;

  std::int64_t total() const {
    std::int64_t sum = checked_sum("the GPU footprint", cache, policy.fetch);
    sum = checked_sum("the GPU footprint", sum, policy.selection);
    return checked_sum("the GPU footprint", sum, attention);
  }
};

Footprint footprint(const EngineConfig& c) {
  return {CudaCache::device_bytes(c), policy_def(c.policy).cuda_bytes(c),
          std::int64_t(attention_plan(c).workspace_bytes)};
}

void check_supported(const EngineConfig& c) {
  const AttentionShape& s = c.shape;
  const ActivationStrides packed{std::int64_t(s.q_heads) * s.head_dim, s.head_dim};
  const ActivationStrides q = q_strides_in(c), out = out_strides_in(c);
  require(q.sequence == packed.sequence && q.head == packed.head && out.sequence == packed.sequence &&
              out.head == packed.head,
          "the cuda backend takes q and out packed, [batch][q_heads][head_dim] (q_strides and out_strides 0); use the "
          "cpu backend for views");
  require(gpu::decode_attention_supports(s.q_heads, s.kv_heads, s.head_dim), "the cuda backend supports head_dim ",
          "64 or 128 and 1 to 8 query heads per KV head; the shape has head_dim ", s.head_dim, " and ", s.group(),
          " query heads per KV head (use the cpu backend)");
}

void check_footprint_fits(const EngineConfig& c) {
  const Footprint f = footprint(c);
  const std::int64_t free = available_gpu_bytes();
  require(f.total() <= free, "needs ", format_bytes(f.total()), " of GPU memory (cache ", format_bytes(f.cache),
          ", fetch buffers ", format_bytes(f.policy.fetch), ", selection ", format_bytes(f.policy.selection),
          ", attention ", format_bytes(f.attention), "), ", format_bytes(free), " free on ",
          device_name(c.device.index));
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

}  // namespace

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
          c.capacity, c.selector == Selector::sparq ? c.sparq_r : 0, c.device.multiprocessors};
}

SlotShape slot_shape(const EngineConfig& c) {
  return {c.dtype, c.batch, c.shape.kv_heads, c.shape.head_dim, attended_rows(c), is_sparse(c.policy)};
}

gpu::ConstRows as_const(const gpu::Rows& rows) { return {rows.data, rows.strides}; }

CudaEngine::CudaEngine(const EngineConfig& config, const CudaEngineOptions& options)
    : config_(config),
      policy_(policy_def(config.policy)),
      stream_(config.device.stream),
      clock_(options.time_phases, kPhasesPerLayer * config.shape.layers),
      cache_(config),
      rows_(attended_rows(config)),
      attention_plan_(attention_plan(config)),
      attention_workspace_(attention_plan_.workspace_bytes),
      before_(std::size_t(config.batch)),
      budgets_(std::size_t(config.batch)),
      state_(policy_.make_cuda_state(*this)) {}

CudaEngine::~CudaEngine() {
  const ScopedDevice on(config_.device.index);
  // Queued work still reads and writes the buffers about to be freed.
  cudaStreamSynchronize(stream_);
  state_.reset();
}

void CudaEngine::set_stream(cudaStream_t stream) {
  const ScopedDevice on(config_.device.index);
  // Work queued on the old stream comes before anything queued on the new one.
  stream_switch_.record(stream_);
  DSO_CUDA_CHECK(cudaStreamWaitEvent(stream, stream_switch_.get(), 0));
  stream_ = stream;
}

const StepStats& CudaEngine::stats() const {
  if (clock_.enabled()) {
    const ScopedDevice on(config_.device.index);
    clock_.collect();
    stats_.ms_select = clock_.total_ms(Phase::select);
    stats_.ms_fetch = clock_.total_ms(Phase::fetch);
    stats_.ms_attend = clock_.total_ms(Phase::attend);
  }
  return stats_;
}

void CudaEngine::reset_stats() {
  const ScopedDevice on(config_.device.index);
  clock_.reset();
  stats_ = {};
}

SelectionProbe CudaEngine::probe_selection(int, int, const void*) {
  fail("probe_selection runs on the cpu backend only");
}

void CudaEngine::prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) {
  const std::int64_t n = cache_.length(sequence, layer);  // checks both
  require(count >= 0, "cannot append a negative token count (", count, ")");
  require(count <= config_.capacity - n, "appending ", count, " tokens to sequence ", sequence, " layer ", layer,
          " would hold ", n + count, " tokens, past its capacity of ", config_.capacity);
  if (count == 0) return;
  const ScopedDevice on(config_.device.index);
  require_device_accessible(k, "prefill's k");
  require_device_accessible(v, "prefill's v");
  const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
  const gpu::RowStrides strides{0, d, std::int64_t(heads) * d};  // [count][kv_heads][head_dim]
  cache_.append(layer, sequence, 1, {k, strides}, {v, strides}, int(count), stream_);
}

void CudaEngine::decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
                        void* out) {
  const std::span<const std::int64_t> lengths = cache_.lengths(layer);  // checks the layer
  check_decode_call(config_, layer, {q, k_new, v_new, q_next, out}, lengths);
  const ScopedDevice on(config_.device.index);
  require_device_accessible(q, "decode's q");
  require_device_accessible(k_new, "decode's k_new");
  require_device_accessible(v_new, "decode's v_new");
  require_device_accessible(out, "decode's out");
  if (needs_q_next(layer)) require_device_accessible(q_next, "decode's q_next");
  state_->check_ready(layer, lengths);
  std::copy(lengths.begin(), lengths.end(), before_.begin());

  const int d = config_.shape.head_dim, heads = config_.shape.kv_heads;
  const gpu::RowStrides strides{std::int64_t(heads) * d, d, std::int64_t(heads) * d};  // [batch][kv_heads][d]
  state_->decode(*this, {layer, q, {k_new, strides}, {v_new, strides}, q_next, out});
  if (layer + 1 == config_.shape.layers) ++stats_.steps;
}

void CudaEngine::fill_budgets(std::span<const std::int64_t> lengths, std::vector<TokenBudget>& budgets) const {
  for (std::size_t s = 0; s < budgets.size(); ++s) budgets[s] = budget_at(config_, lengths[s]);
}

std::int64_t CudaEngine::max_fetched(std::span<const std::int64_t> lengths,
                                     std::span<const TokenBudget> budgets) const {
  std::int64_t most = 0;
  for (std::size_t s = 0; s < lengths.size(); ++s) most = std::max(most, fetched_tokens(lengths[s], budgets[s]));
  return most;
}

void CudaEngine::count_fetched_bytes(std::span<const std::int64_t> lengths, std::span<const TokenBudget> budgets) {
  for (std::size_t s = 0; s < lengths.size(); ++s)
    stats_.h2d_bytes += fetched_tokens(lengths[s], budgets[s]) * kv_heads() * kv_token_bytes(config_);
}

void CudaEngine::count_attended() {
  for (std::size_t s = 0; s < before_.size(); ++s) {
    const std::int64_t n = before_[s];
    stats_.tokens_selected += (policy_.is_sparse() ? selection_size(n, budgets_[s]) + 1 : n + 1) * kv_heads();
  }
}

void CudaEngine::append_step(const CudaStep& step) {
  cache_.append(step.layer, 0, config_.batch, step.k_new, step.v_new, 1, stream_);
}

void CudaEngine::attend(const CudaStep& step, gpu::ConstRows k, gpu::ConstRows v, const std::int32_t* lengths,
                        bool per_head, const std::int32_t* indices) {
  gpu::DecodeAttentionArgs a;
  a.dtype = config_.dtype;
  a.q = step.q;
  a.k = k;
  a.v = v;
  a.lengths = lengths;
  a.length_stride_sequence = per_head ? kv_heads() : 1;
  a.length_stride_head = per_head ? 1 : 0;
  a.indices = indices;
  a.index_stride = indices ? rows_ : 0;
  a.out = step.out;
  a.workspace = attention_workspace_.data();
  a.workspace_bytes = attention_workspace_.bytes();
  const int timer = clock_.begin(Phase::attend, stream_);
  gpu::decode_attention(attention_plan_, a, stream_);
  clock_.end(timer, stream_);
}

void CudaEngine::attend_slot(const CudaStep& step, FetchSlot& slot) {
  const int timer = clock_.begin(Phase::fetch, stream_);
  gpu::assemble_window({config_.dtype, config_.shape.head_dim, config_.batch, kv_heads(), cache_.window(step.layer),
                   cache_.device_lengths(step.layer), config_.budget.sink, config_.budget.recent, slot.fetched(),
                   slot.keys(), slot.values(), slot.attended()},
                  stream_);
  clock_.end(timer, stream_);
  attend(step, as_const(slot.keys()), as_const(slot.values()), slot.attended(), true, nullptr);
}

LayerSource CudaEngine::source(int layer) const {
  return {as_const(cache_.keys(layer)), as_const(cache_.values(layer)), cache_.channels(layer),
          as_const(cache_.labels(layer)), cache_.device_lengths(layer)};
}

std::unique_ptr<Engine> make_cuda_engine(const EngineConfig& requested, const CudaEngineOptions& options) {
  check_supported(requested);
  // Everything the engine allocates, it allocates on its device.
  const ScopedDevice on(requested.device.index);
  EngineConfig config = requested;
  if (config.device.multiprocessors == 0) config.device.multiprocessors = gpu::multiprocessor_count();
  check_footprint_fits(config);
  return std::make_unique<CudaEngine>(config, options);
}

std::unique_ptr<Engine> create_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options) {
  require(config.backend == Backend::cuda, "create_cuda_engine needs config.backend = cuda");
  Engine::check_fits(config);
  return make_cuda_engine(config, options);
}

}  // namespace dso
