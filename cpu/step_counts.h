#pragma once
// The engine's per-step bookkeeping on integers, CPU reference of the kernels
// in gpu/advance_lengths.h, gpu/current_token.h and gpu/fetch_counts.h, with
// the same arrays: heads i of [sequences][kv_heads] belong to sequence
// i / kv_heads.
#include <cstdint>
#include <span>

namespace dso::cpu {

// lengths[s] += count.
void advance_lengths(std::span<std::int32_t> lengths, int count);

// The step's token, at position lengths[s], joins head i's selection:
// indices[i * index_stride + counts[i]] = lengths[i / kv_heads], then ++counts[i].
void append_current_token(std::int32_t* indices, std::int64_t index_stride, std::int32_t* counts,
                          const std::int32_t* lengths, int sequences, int kv_heads);

// Of `selected` tokens chosen among n, those below the recent window
// (core/recent_window.h): the ones a host-resident policy fetches.
std::int64_t fetched_count(std::int64_t selected, std::int64_t n, std::int64_t sink, std::int64_t recent);

// fetched[i] = fetched_count(selected[i], lengths[i / kv_heads], sink, recent).
void count_fetched(const std::int32_t* selected, const std::int32_t* lengths, std::int32_t* fetched, int sequences,
                   int kv_heads, std::int64_t sink, std::int64_t recent);

}  // namespace dso::cpu
