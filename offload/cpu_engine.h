#pragma once
// The cpu backend: every policy over host memory with the cpu/ reference
// functions. Where the cuda backend would hold data on the GPU (the K/V of
// dense_gpu and ds_gpu, labels, fetch buffers, the window of newest tokens)
// this one holds a copy in host memory and moves data as the GPU would, so
// outputs, selections and byte counts are the reference for the cuda backend.
// CpuEngine holds what every policy shares and the steps they are made of;
// each policy's decode (offload/policy_<name>.cpp) puts those steps in order.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "host_cache/host_kv_cache.h"
#include "offload/cpu_fetch_slot.h"
#include "offload/cpu_label_cache.h"
#include "offload/cpu_window.h"
#include "offload/engine.h"
#include "offload/policy_def.h"

namespace dso {

// One layer of one decode step: q, out [batch][q_heads][head_dim]; k_new,
// v_new [batch][kv_heads][head_dim]; q_next as Engine::decode takes it.
template <class T>
struct CpuStep {
  int layer = 0;
  const T* q = nullptr;
  const T* k_new = nullptr;
  const T* v_new = nullptr;
  const T* q_next = nullptr;
  T* out = nullptr;
  std::span<const std::int64_t> lengths;  // per sequence, the layer's tokens before the step's
};

template <class T>
class CpuEngine final : public Engine {
 public:
  explicit CpuEngine(const EngineConfig& config);

  const EngineConfig& config() const override { return config_; }
  std::int64_t length(int sequence, int layer) const override { return kv_.length(sequence, layer); }
  void set_stream(CUstream_st*) override {}  // nothing runs on a CUDA stream here
  const StepStats& stats() const override { return stats_; }
  void reset_stats() override { stats_ = {}; }
  SelectionProbe probe_selection(int layer, int sequence, const void* q) override;
  void prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) override;
  void decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
              void* out) override;

  // The steps policies are made of.
  const PolicyDef& policy() const { return policy_; }
  std::vector<std::int64_t> lengths_at(int layer) const;
  // Appends the step's token of every sequence to the cache and its side copies.
  void append_step_token(const CpuStep<T>& step);
  // Top-k over the scores of the n tokens cached before the step; returns the count.
  std::int64_t select(int layer, int s, int h, const T* q_group, std::int64_t n, std::int32_t* indices);
  // Attention of one (sequence, KV head) over `count` tokens of keys/values:
  // those at `indices`, or the first `count` where indices is null.
  void attend(const CpuStep<T>& step, int s, int h, const T* keys, const T* values, const std::int32_t* indices,
              std::int64_t count);
  // Selects layer's tokens with q over the lengths given and gathers those
  // below the GPU window from the host cache into the slot.
  void fill_slot(CpuFetchSlot<T>& slot, int layer, const T* q, std::span<const std::int64_t> lengths);
  // Attention over the slot, with the window of newest tokens behind its fetched rows.
  void attend_slot(const CpuStep<T>& step, CpuFetchSlot<T>& slot);

  CpuFetchSlot<T>& slot_for(int layer) { return slots_[std::size_t(layer) % slots_.size()]; }
  const HostKVCache& kv() const { return kv_; }
  StepStats& counters() { return stats_; }
  // Policies' own scratch: ds_gpu's selection, [batch][kv_heads][max_attended] and [batch][kv_heads].
  std::vector<std::int32_t>& selected() { return selected_; }
  std::vector<std::int32_t>& selected_count() { return selected_count_; }

  int group() const { return config_.shape.group(); }
  int head_dim() const { return config_.shape.head_dim; }
  int kv_heads() const { return config_.shape.kv_heads; }
  std::int64_t head_index(int s, int h) const { return std::int64_t(s) * kv_heads() + h; }
  // The group's query heads of one (sequence, KV head), [group][head_dim]
  // contiguous: in place where heads are packed, else copied out of the view.
  const T* query(const T* q, int s, int h) {
    const T* first = q + s * q_strides_.sequence + std::int64_t(h) * group() * q_strides_.head;
    if (q_strides_.head == head_dim()) return first;
    for (int g = 0; g < group(); ++g)
      std::copy_n(first + g * q_strides_.head, head_dim(), query_copy_.data() + std::int64_t(g) * head_dim());
    return query_copy_.data();
  }
  // One token of one sequence from a [batch][kv_heads][head_dim] input.
  const T* new_token(const T* x, int s) const { return x + std::int64_t(s) * kv_heads() * head_dim(); }

 private:
  bool keeps_window() const { return policy_.is_sparse() && policy_.keeps_kv_on_host(); }
  std::int64_t score_and_select(int layer, int s, int h, const T* q_group, std::int64_t n, std::int32_t* indices);
  // Labels and the GPU window follow the K/V cache, token for token.
  void append_side_copies(int s, int layer, std::int64_t position, const T* k, const T* v, std::int64_t count);

  EngineConfig config_;
  const PolicyDef& policy_;
  HostKVCache kv_;  // the host cache, or for dense_gpu and ds_gpu the K/V the GPU would hold
  CpuLabelCache<T> labels_;
  CpuWindow<T> window_;
  std::vector<CpuFetchSlot<T>> slots_;
  std::vector<int> step_channels_;            // Selector::sparq: this step's channels, one head at a time
  std::vector<float> scores_;                 // [capacity], one head at a time
  std::vector<std::int32_t> selected_;        // ds_gpu: [batch][kv_heads][max_attended]
  std::vector<std::int32_t> selected_count_;  // ds_gpu: [batch][kv_heads]
  std::vector<float> head_out_;               // [group][head_dim]
  ActivationStrides q_strides_;               // packed ones filled in
  ActivationStrides out_strides_;
  std::vector<T> query_copy_;                 // [group][head_dim], where q's heads are not packed
  StepStats stats_;
};

extern template class CpuEngine<Half>;
extern template class CpuEngine<BFloat16>;

}  // namespace dso
