#include "cpu/step_counts.h"

#include "core/recent_window.h"

namespace dso::cpu {

void advance_lengths(std::span<std::int32_t> lengths, int count) {
  for (std::int32_t& n : lengths) n += count;
}

void append_current_token(std::int32_t* indices, std::int64_t index_stride, std::int32_t* counts,
                          const std::int32_t* lengths, int sequences, int kv_heads) {
  for (std::int64_t i = 0; i < std::int64_t(sequences) * kv_heads; ++i)
    indices[i * index_stride + counts[i]++] = lengths[i / kv_heads];
}

std::int64_t fetched_count(std::int64_t selected, std::int64_t n, std::int64_t sink, std::int64_t recent) {
  return selected - (n - window_begin(n, sink, recent));
}

void count_fetched(const std::int32_t* selected, const std::int32_t* lengths, std::int32_t* fetched, int sequences,
                   int kv_heads, std::int64_t sink, std::int64_t recent) {
  for (std::int64_t i = 0; i < std::int64_t(sequences) * kv_heads; ++i)
    fetched[i] = std::int32_t(fetched_count(selected[i], lengths[i / kv_heads], sink, recent));
}

}  // namespace dso::cpu
