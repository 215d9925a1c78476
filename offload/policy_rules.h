#pragma once
// What each policy does at one layer of one decode step, independent of where
// the work runs. Every backend follows these rules, so the cpu backend is the
// reference for the others, byte counts included.
//
// The attended set of a sparse policy for one (sequence, KV head), with n
// tokens cached before the step's token is appended:
//   select_topk over the labels of those n tokens (sink, top-k, recent), then
//   the current token (position n).
// Host-resident sparse policies keep the newest tokens on the GPU (the
// "window": positions from window_begin(n) to n, the current one included),
// so only the selected tokens below window_begin are fetched from the host.
#include <cstdint>

#include "core/recent_window.h"
#include "offload/engine.h"

namespace dso {

// Buffers on the GPU that fetched K/V land in: two where fetching the next
// layer overlaps the current one, one for the synchronous ablation.
int fetch_slots(Policy p);

// Layer 0 has no predecessor to predict its query, so it always selects with
// its true query, as do the config's sync_layers.
bool selects_synchronously(const EngineConfig& config, int layer);
// ds_offload layers that select from the speculative query handed to the
// previous layer.
bool selects_speculatively(const EngineConfig& config, int layer);

// The budget for a selection over n cached tokens: k is budget.k, or
// k_fraction * n (at least 1) where k_fraction is set.
TokenBudget budget_at(const EngineConfig& config, std::int64_t n);

// The first position of the GPU-resident window among n cached tokens
// (core/recent_window.h, for this budget's sink and recent).
std::int64_t window_begin(std::int64_t n, const TokenBudget& budget);
// Selected tokens that must be fetched from the host: the selection of n
// tokens less those in the window.
std::int64_t fetched_tokens(std::int64_t n, const TokenBudget& budget);

// The most tokens one (sequence, KV head) attends in a decode step.
std::int64_t max_attended(const EngineConfig& config);

// Bytes of K and V of one token of one KV head.
std::int64_t kv_token_bytes(const EngineConfig& config);

// The sizes the memory plan and the cuda cache share, computed once here:
// K and V of every sequence at capacity (host or GPU, by policy);
std::int64_t kv_cache_bytes(const EngineConfig& config);
// the label cache (0 unless the policy selects with label channels);
std::int64_t label_cache_bytes(const EngineConfig& config);
// the ring of newest tokens kept on the GPU by host-resident sparse policies.
std::int64_t window_cache_bytes(const EngineConfig& config);

}  // namespace dso
