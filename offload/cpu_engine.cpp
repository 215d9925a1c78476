#include "offload/cpu_engine.h"

#include <algorithm>

#include "core/recent_window.h"
#include "cpu/attention.h"
#include "cpu/scores.h"
#include "cpu/step_counts.h"
#include "cpu/topk.h"
#include "offload/backends.h"
#include "offload/config_checks.h"
#include "offload/phase_timer.h"
#include "offload/policy_rules.h"

namespace dso {

template <class T>
CpuEngine<T>::CpuEngine(const EngineConfig& config)
    : config_(config),
      policy_(policy_def(config.policy)),
      kv_({config.batch, config.shape.layers, config.shape.kv_heads, config.shape.head_dim, config.capacity,
           config.dtype},
          HostMemoryKind::aligned),  // nothing reads it by DMA on this backend
      head_out_(std::size_t(config.shape.group()) * config.shape.head_dim),
      q_strides_(q_strides_in(config)),
      out_strides_(out_strides_in(config)),
      query_copy_(head_out_.size()) {
  const AttentionShape& s = config.shape;
  if (uses_label_channels(config)) labels_ = CpuLabelCache<T>(config.channels, config.batch, config.capacity);
  if (config.selector == Selector::sparq) step_channels_.resize(std::size_t(config.sparq_r));
  if (policy_.is_sparse()) {
    scores_.resize(std::size_t(config.capacity));
    selected_.resize(std::size_t(config.batch) * s.kv_heads * max_attended(config));
    selected_count_.resize(std::size_t(config.batch) * s.kv_heads);
  }
  if (keeps_window()) window_ = CpuWindow<T>(config.batch, s.layers, s.kv_heads, s.head_dim, window_rows(config.budget.recent));
  for (int i = 0; i < policy_.fetch_slots(); ++i)
    slots_.emplace_back(config.batch, s.kv_heads, max_attended(config), s.head_dim);
}

template <class T>
SelectionProbe CpuEngine<T>::probe_selection(int layer, int sequence, const void* q) {
  require(policy_.is_sparse(), "policy ", policy_.name(), " selects no tokens to probe");
  const std::int64_t n = length(sequence, layer);  // checks both
  require(q != nullptr, "probe_selection of layer ", layer, " was given a null q");
  const TokenBudget budget = budget_at(config_, n);
  SelectionProbe probe{n, std::min(n, budget.sink), window_begin(n, budget), {}};
  // [q_heads][head_dim] of one sequence is the layout of sequence 0 of a batch.
  const T* q_sequence = static_cast<const T*>(q);
  std::vector<std::int32_t> indices(std::size_t(max_attended(config_)));
  for (int h = 0; h < kv_heads(); ++h) {
    const std::int64_t count = score_and_select(layer, sequence, h, query(q_sequence, 0, h), n, indices.data());
    probe.per_head.emplace_back(indices.begin(), indices.begin() + count);
  }
  return probe;
}

template <class T>
void CpuEngine<T>::prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) {
  const std::int64_t n = kv_.length(sequence, layer);
  kv_.append(sequence, layer, k, v, count);  // throws, changing nothing, past capacity
  append_side_copies(sequence, layer, n, static_cast<const T*>(k), static_cast<const T*>(v), count);
}

template <class T>
void CpuEngine<T>::decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
                          void* out) {
  const std::vector<std::int64_t> lengths = lengths_at(layer);
  check_decode_call(config_, layer, {q, k_new, v_new, q_next, out}, lengths);
  if (policy_.selects_speculatively(config_, layer)) {
    const CpuFetchSlot<T>& slot = slot_for(layer);
    require(slot.layer == layer && slot.lengths == lengths, "layer ", layer,
            " selects with the speculative query given to layer ", layer - 1,
            ", and none was given for its current cache: decode layer ", layer - 1, " with q_next first");
  }
  const CpuStep<T> step{layer,
                        static_cast<const T*>(q),
                        static_cast<const T*>(k_new),
                        static_cast<const T*>(v_new),
                        static_cast<const T*>(q_next),
                        static_cast<T*>(out),
                        lengths};
  policy_.decode_cpu(*this, step);
  if (layer + 1 == config_.shape.layers) ++stats_.steps;
}

template <class T>
std::vector<std::int64_t> CpuEngine<T>::lengths_at(int layer) const {
  require(layer >= 0 && layer < config_.shape.layers, "layer ", layer, " does not exist (the model has ",
          config_.shape.layers, ")");
  std::vector<std::int64_t> lengths(std::size_t(config_.batch));
  for (int s = 0; s < config_.batch; ++s) lengths[std::size_t(s)] = kv_.length(s, layer);
  return lengths;
}

template <class T>
void CpuEngine<T>::append_side_copies(int s, int layer, std::int64_t position, const T* k, const T* v,
                                      std::int64_t count) {
  if (uses_label_channels(config_)) labels_.append(s, layer, position, k, count, head_dim());
  if (keeps_window()) window_.append(s, layer, position, k, v, count);
}

template <class T>
void CpuEngine<T>::append_step_token(const CpuStep<T>& step) {
  for (int s = 0; s < config_.batch; ++s) {
    const T* k = new_token(step.k_new, s);
    const T* v = new_token(step.v_new, s);
    kv_.append(s, step.layer, k, v, 1);
    append_side_copies(s, step.layer, step.lengths[std::size_t(s)], k, v, 1);
  }
}

template <class T>
std::int64_t CpuEngine<T>::select(int layer, int s, int h, const T* q_group, std::int64_t n, std::int32_t* indices) {
  PhaseTimer timer(stats_.ms_select);
  return score_and_select(layer, s, h, q_group, n, indices);
}

template <class T>
std::int64_t CpuEngine<T>::score_and_select(int layer, int s, int h, const T* q_group, std::int64_t n,
                                            std::int32_t* indices) {
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

template <class T>
void CpuEngine<T>::attend(const CpuStep<T>& step, int s, int h, const T* keys, const T* values,
                          const std::int32_t* indices, std::int64_t count) {
  PhaseTimer timer(stats_.ms_attend);
  const T* q_group = query(step.q, s, h);
  float* o = head_out_.data();
  if (indices != nullptr)
    cpu::sparse_attention(q_group, group(), head_dim(), keys, values, indices, count, o);
  else
    cpu::dense_attention(q_group, group(), head_dim(), keys, values, count, o);
  T* dst = step.out + s * out_strides_.sequence + std::int64_t(h) * group() * out_strides_.head;
  for (int g = 0; g < group(); ++g)
    for (int c = 0; c < head_dim(); ++c)
      dst[g * out_strides_.head + c] = from_float<T>(o[std::size_t(g) * head_dim() + c]);
  stats_.tokens_selected += count;
}

template <class T>
void CpuEngine<T>::fill_slot(CpuFetchSlot<T>& slot, int layer, const T* q, std::span<const std::int64_t> lengths) {
  slot.layer = layer;
  slot.lengths.assign(lengths.begin(), lengths.end());
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

template <class T>
void CpuEngine<T>::attend_slot(const CpuStep<T>& step, CpuFetchSlot<T>& slot) {
  for (int s = 0; s < config_.batch; ++s)
    for (int h = 0; h < kv_heads(); ++h) {
      const std::int64_t n = step.lengths[std::size_t(s)];
      const std::int64_t fetched = slot.fetched[std::size_t(head_index(s, h))];
      std::int64_t attended = 0;
      {
        // Fetched tokens all lie below the window, so appending the window
        // keeps positions ascending, the order ds_gpu attends in.
        PhaseTimer timer(stats_.ms_fetch);
        attended = window_.assemble(s, step.layer, h, n, config_.budget, fetched, slot.keys_of(s, h),
                                    slot.values_of(s, h));
      }
      attend(step, s, h, slot.keys_of(s, h), slot.values_of(s, h), nullptr, attended);
    }
}

template class CpuEngine<Half>;
template class CpuEngine<BFloat16>;

std::unique_ptr<Engine> make_cpu_engine(const EngineConfig& config) {
  return dispatch_dtype(config.dtype, [&](auto tag) -> std::unique_ptr<Engine> {
    return std::make_unique<CpuEngine<decltype(tag)>>(config);
  });
}

}  // namespace dso
