// The cpu backend: every policy over host memory with the cpu/ reference
// functions. Where the cuda backend would hold data on the GPU (the K/V of
// dense_gpu and ds_gpu, labels, fetch buffers, the window of newest tokens)
// this one holds a copy in host memory and moves data as the GPU would, so
// outputs, selections and byte counts are the reference for the cuda backend.
#include <cstring>
#include <vector>

#include "core/recent_window.h"
#include "cpu/attention.h"
#include "cpu/scores.h"
#include "cpu/step_counts.h"
#include "cpu/topk.h"
#include "host_cache/host_kv_cache.h"
#include "offload/backends.h"
#include "offload/config_checks.h"
#include "offload/cpu_fetch_slot.h"
#include "offload/cpu_label_cache.h"
#include "offload/cpu_window.h"
#include "offload/phase_timer.h"
#include "offload/policy_rules.h"

namespace dso {

namespace {

template <class T>
class CpuEngine final : public Engine {
 public:
  explicit CpuEngine(const EngineConfig& config)
      : config_(config),
        kv_({config.batch, config.shape.layers, config.shape.kv_heads, config.shape.head_dim, config.capacity,
             config.dtype},
            HostMemoryKind::aligned),  // nothing reads it by DMA on this backend
        head_out_(std::size_t(config.shape.group()) * config.shape.head_dim) {
    const AttentionShape& s = config.shape;
    if (keeps_labels()) labels_ = CpuLabelCache<T>(config.channels, config.batch, config.capacity);
    if (config.selector == Selector::sparq) step_channels_.resize(std::size_t(config.sparq_r));
    if (is_sparse(config.policy)) {
      scores_.resize(std::size_t(config.capacity));
      selected_.resize(std::size_t(config.batch) * s.kv_heads * max_attended(config));
      selected_count_.resize(std::size_t(config.batch) * s.kv_heads);
    }
    if (is_sparse(config.policy) && keeps_kv_on_host(config.policy))
      window_ = CpuWindow<T>(config.batch, s.layers, s.kv_heads, s.head_dim, window_rows(config.budget.recent));
    for (int i = 0; i < fetch_slots(config.policy); ++i)
      slots_.emplace_back(config.batch, s.kv_heads, max_attended(config), s.head_dim);
  }

  const EngineConfig& config() const override { return config_; }
  std::int64_t length(int sequence, int layer) const override { return kv_.length(sequence, layer); }
  void set_stream(cudaStream_t) override {}  // nothing runs on a CUDA stream here
  const StepStats& stats() const override { return stats_; }
  void reset_stats() override { stats_ = {}; }

  void prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) override {
    const std::int64_t n = kv_.length(sequence, layer);
    kv_.append(sequence, layer, k, v, count);  // throws, changing nothing, past capacity
    append_side_copies(sequence, layer, n, static_cast<const T*>(k), static_cast<const T*>(v), count);
  }

  void decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
              void* out) override {
    const std::vector<std::int64_t> lengths = lengths_at(layer);
    check_decode_call(config_, layer, {q, k_new, v_new, q_next, out}, lengths);
    if (selects_speculatively(config_, layer)) check_prefetched(layer, lengths);

    const StepInputs in{static_cast<const T*>(q), static_cast<const T*>(k_new), static_cast<const T*>(v_new),
                        static_cast<T*>(out)};
    switch (config_.policy) {
      case Policy::dense_gpu: decode_dense(layer, in, lengths); break;
      case Policy::ds_gpu: decode_ds_gpu(layer, in, lengths); break;
      case Policy::flexgen: decode_flexgen(layer, in, lengths); break;
      case Policy::ds_offload:
      case Policy::ds_offload_sync: decode_offloaded(layer, in, lengths); break;
    }
    if (needs_q_next(config_, layer)) {
      // The speculative selection of the next layer, over the tokens it holds
      // now, fetched into the slot that layer will read.
      fill_slot(slots_[(layer + 1) % slots_.size()], layer + 1, static_cast<const T*>(q_next),
                lengths_at(layer + 1));
    }
    if (layer + 1 == config_.shape.layers) ++stats_.steps;
  }

 private:
  // q, out: [batch][q_heads][head_dim]; k_new, v_new: [batch][kv_heads][head_dim].
  struct StepInputs {
    const T* q;
    const T* k_new;
    const T* v_new;
    T* out;
  };

  bool keeps_labels() const { return is_sparse(config_.policy) && config_.selector == Selector::labels; }
  int group() const { return config_.shape.group(); }
  int head_dim() const { return config_.shape.head_dim; }
  int kv_heads() const { return config_.shape.kv_heads; }
  std::int64_t head_index(int s, int h) const { return std::int64_t(s) * kv_heads() + h; }

  // The group's query heads of one (sequence, KV head): [group][head_dim].
  const T* query(const T* q, int s, int h) const {
    return q + (std::int64_t(s) * config_.shape.q_heads + h * group()) * head_dim();
  }
  // One token of one sequence from a [batch][kv_heads][head_dim] input.
  const T* new_token(const T* x, int s) const { return x + std::int64_t(s) * kv_heads() * head_dim(); }

  std::vector<std::int64_t> lengths_at(int layer) const {
    require(layer >= 0 && layer < config_.shape.layers, "layer ", layer, " does not exist (the model has ",
            config_.shape.layers, ")");
    std::vector<std::int64_t> lengths(std::size_t(config_.batch));
    for (int s = 0; s < config_.batch; ++s) lengths[std::size_t(s)] = kv_.length(s, layer);
    return lengths;
  }

  void check_prefetched(int layer, const std::vector<std::int64_t>& lengths) const {
    const CpuFetchSlot<T>& slot = slots_[layer % slots_.size()];
    require(slot.layer == layer && slot.lengths == lengths, "layer ", layer,
            " selects with the speculative query given to layer ", layer - 1,
            ", and none was given for its current cache: decode layer ", layer - 1, " with q_next first");
  }

  // Labels and the GPU window follow the K/V cache, token for token.
  void append_side_copies(int s, int layer, std::int64_t position, const T* k, const T* v, std::int64_t count) {
    if (keeps_labels()) labels_.append(s, layer, position, k, count, head_dim());
    if (is_sparse(config_.policy) && keeps_kv_on_host(config_.policy))
      window_.append(s, layer, position, k, v, count);
  }

  void append_step_token(int layer, const StepInputs& in, const std::vector<std::int64_t>& lengths) {
    for (int s = 0; s < config_.batch; ++s) {
      const T* k = new_token(in.k_new, s);
      const T* v = new_token(in.v_new, s);
      kv_.append(s, layer, k, v, 1);
      append_side_copies(s, layer, lengths[std::size_t(s)], k, v, 1);
    }
  }

  // Top-k over the scores of the n tokens cached before the step; returns the count.
  std::int64_t select(int layer, int s, int h, const T* q_group, std::int64_t n, std::int32_t* indices) {
    PhaseTimer timer(stats_.ms_select);
    if (config_.selector == Selector::sparq) {
      cpu::sparq_channels(q_group, group(), head_dim(), config_.sparq_r, step_channels_.data());
      cpu::score_key_channels(q_group, group(), head_dim(), std::span<const int>(step_channels_),
                              kv_.keys_as<T>(s, layer, h), n, scores_.data());
    } else {
      cpu::score_labels(q_group, group(), head_dim(), config_.channels.of(layer, h), labels_.of(s, layer, h), n,
                        scores_.data());
    }
    return cpu::select_topk(scores_.data(), n, budget_at(config_, n), indices);
  }

  // Attention of one (sequence, KV head) over `count` tokens of keys/values:
  // those at `indices`, or the first `count` where indices is null.
  void attend(const StepInputs& in, int s, int h, const T* keys, const T* values, const std::int32_t* indices,
              std::int64_t count) {
    PhaseTimer timer(stats_.ms_attend);
    const T* q_group = query(in.q, s, h);
    float* o = head_out_.data();
    if (indices != nullptr)
      cpu::sparse_attention(q_group, group(), head_dim(), keys, values, indices, count, o);
    else
      cpu::dense_attention(q_group, group(), head_dim(), keys, values, count, o);
    T* dst = in.out + (std::int64_t(s) * config_.shape.q_heads + h * group()) * head_dim();
    for (std::size_t i = 0; i < head_out_.size(); ++i) dst[i] = from_float<T>(o[i]);
    stats_.tokens_selected += count;
  }

  void decode_dense(int layer, const StepInputs& in, const std::vector<std::int64_t>& lengths) {
    append_step_token(layer, in, lengths);
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h)
        attend(in, s, h, kv_.keys_as<T>(s, layer, h), kv_.values_as<T>(s, layer, h), nullptr,
               lengths[std::size_t(s)] + 1);
  }

  void decode_ds_gpu(int layer, const StepInputs& in, const std::vector<std::int64_t>& lengths) {
    const std::int64_t rows = max_attended(config_);
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h) {
        const std::int64_t n = lengths[std::size_t(s)];
        selected_count_[std::size_t(head_index(s, h))] =
            std::int32_t(select(layer, s, h, query(in.q, s, h), n, selected_.data() + head_index(s, h) * rows));
      }
    // The current token is always attended.
    const std::vector<std::int32_t> positions(lengths.begin(), lengths.end());
    cpu::append_current_token(selected_.data(), rows, selected_count_.data(), positions.data(), config_.batch,
                              kv_heads());
    append_step_token(layer, in, lengths);
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h)
        attend(in, s, h, kv_.keys_as<T>(s, layer, h), kv_.values_as<T>(s, layer, h),
               selected_.data() + head_index(s, h) * rows, selected_count_[std::size_t(head_index(s, h))]);
  }

  void decode_flexgen(int layer, const StepInputs& in, const std::vector<std::int64_t>& lengths) {
    CpuFetchSlot<T>& slot = slots_[layer % slots_.size()];
    const std::int64_t row_bytes = std::int64_t(sizeof(T)) * head_dim();
    {
      PhaseTimer timer(stats_.ms_fetch);
      for (int s = 0; s < config_.batch; ++s)
        for (int h = 0; h < kv_heads(); ++h) {
          const std::int64_t n = lengths[std::size_t(s)];
          std::memcpy(slot.keys_of(s, h), kv_.keys(s, layer, h), std::size_t(n * row_bytes));
          std::memcpy(slot.values_of(s, h), kv_.values(s, layer, h), std::size_t(n * row_bytes));
          stats_.h2d_bytes += n * kv_token_bytes(config_);
        }
    }
    append_step_token(layer, in, lengths);
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h) {
        // The new token was computed on the GPU: it joins the fetched layer there.
        const std::int64_t n = lengths[std::size_t(s)];
        std::memcpy(slot.keys_of(s, h) + n * head_dim(), new_token(in.k_new, s) + h * head_dim(),
                    std::size_t(row_bytes));
        std::memcpy(slot.values_of(s, h) + n * head_dim(), new_token(in.v_new, s) + h * head_dim(),
                    std::size_t(row_bytes));
        attend(in, s, h, slot.keys_of(s, h), slot.values_of(s, h), nullptr, n + 1);
      }
  }

  // Selects layer's tokens with q over the lengths given and gathers those
  // below the GPU window from the host cache into the slot.
  void fill_slot(CpuFetchSlot<T>& slot, int layer, const T* q, const std::vector<std::int64_t>& lengths) {
    slot.layer = layer;
    slot.lengths = lengths;
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h) {
        const std::int64_t n = lengths[std::size_t(s)];
        std::int32_t* indices = slot.indices_of(s, h);
        const std::int64_t selected = select(layer, s, h, query(q, s, h), n, indices);
        const std::int64_t fetched = cpu::fetched_count(selected, n, config_.budget.sink, config_.budget.recent);
        PhaseTimer timer(stats_.ms_fetch);
        for (std::int64_t i = 0; i < fetched; ++i)
          kv_.read(s, layer, h, indices[i], 1, slot.keys_of(s, h) + i * head_dim(),
                   slot.values_of(s, h) + i * head_dim());
        slot.fetched[std::size_t(head_index(s, h))] = fetched;
        stats_.h2d_bytes += fetched * kv_token_bytes(config_);
      }
  }

  void decode_offloaded(int layer, const StepInputs& in, const std::vector<std::int64_t>& lengths) {
    CpuFetchSlot<T>& slot = slots_[layer % slots_.size()];
    if (!selects_speculatively(config_, layer)) fill_slot(slot, layer, in.q, lengths);
    append_step_token(layer, in, lengths);
    for (int s = 0; s < config_.batch; ++s)
      for (int h = 0; h < kv_heads(); ++h) {
        const std::int64_t n = lengths[std::size_t(s)];
        const std::int64_t fetched = slot.fetched[std::size_t(head_index(s, h))];
        std::int64_t attended = 0;
        {
          // Fetched tokens all lie below the window, so appending the window
          // keeps positions ascending, the order ds_gpu attends in.
          PhaseTimer timer(stats_.ms_fetch);
          attended =
              window_.assemble(s, layer, h, n, config_.budget, fetched, slot.keys_of(s, h), slot.values_of(s, h));
        }
        attend(in, s, h, slot.keys_of(s, h), slot.values_of(s, h), nullptr, attended);
      }
  }

  EngineConfig config_;
  HostKVCache kv_;  // the host cache, or for dense_gpu and ds_gpu the K/V the GPU would hold
  CpuLabelCache<T> labels_;
  CpuWindow<T> window_;
  std::vector<CpuFetchSlot<T>> slots_;
  std::vector<int> step_channels_;            // Selector::sparq: this step's channels, one head at a time
  std::vector<float> scores_;                 // [capacity], one head at a time
  std::vector<std::int32_t> selected_;        // ds_gpu: [batch][kv_heads][max_attended]
  std::vector<std::int32_t> selected_count_;  // ds_gpu: [batch][kv_heads]
  std::vector<float> head_out_;               // [group][head_dim]
  StepStats stats_;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(const EngineConfig& config) {
  return dispatch_dtype(config.dtype, [&](auto tag) -> std::unique_ptr<Engine> {
    return std::make_unique<CpuEngine<decltype(tag)>>(config);
  });
}

}  // namespace dso
