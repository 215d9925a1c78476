#pragma once
// Top-k token selection per (sequence, KV head), with the semantics of
// cpu::select_topk exactly: the first `sink` and last `recent` tokens are
// always kept, k more are the highest-scoring of the rest (among equal scores
// the lower index wins), and the indices come out sorted ascending — the
// order in which the head-major host cache is cheapest to read.
//
// Method: a threshold is sampled per head (4096 candidates' scores), the
// candidates at or above it are listed per tile of 2048 tokens in token order
// (about 1.4 k of them) with a histogram of their keys over 512 bins, the
// tiles' keys in the bin holding the k-th key (a few hundred) are gathered,
// one block per head finds the exact k-th key among those and each tile's
// output offset, and each tile then writes its indices. If fewer than k
// candidates reached the threshold, the selection is made from all of the
// head's scores instead: slower, same result. The workspace holds about 16
// bytes per (sequence, KV head, token).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/shape.h"

namespace dso::gpu {

// Sizes fixed once per (sequences, kv_heads, max_tokens); the workspace is
// allocated by the caller, so selecting allocates nothing.
struct TopkPlan {
  int sequences = 0;
  int kv_heads = 0;
  std::int64_t max_tokens = 0;
  std::int64_t tiles = 0;  // candidate lists per (sequence, KV head)
  std::size_t workspace_bytes = 0;
};

// max_tokens: at most 2^24 (16,777,216).
TopkPlan plan_topk(int sequences, int kv_heads, std::int64_t max_tokens);

struct TopkArgs {
  const float* scores = nullptr;         // [sequences][kv_heads][score_stride], device
  std::int64_t score_stride = 0;
  const std::int32_t* lengths = nullptr;  // [sequences], device: tokens of each sequence, at most plan.max_tokens
  TokenBudget budget;
  std::int32_t* indices = nullptr;        // [sequences][kv_heads][index_stride], device
  std::int64_t index_stride = 0;          // at least selection_size(plan.max_tokens, budget)
  std::int32_t* counts = nullptr;         // [sequences][kv_heads], device: selection_size(length, budget)
  void* workspace = nullptr;              // plan.workspace_bytes, device; contents need no initialisation
  std::size_t workspace_bytes = 0;
  bool candidates_written = false;        // score_labels wrote the candidates (see TopkCandidates)
};

void select_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream);

// The selection can ride on the kernel that computes the scores
// (score_labels): given these, it samples the threshold from the labels,
// lists the candidates instead of writing the scores, and decides each head's
// k-th key; select_topk with candidates_written, on the same stream and with
// the same score rows, then only writes the indices. The score rows are
// written only for heads whose sampled threshold kept fewer than k candidates.
struct TopkCandidates {
  void* states = nullptr;  // inside the top-k workspace; null: no candidates written
  std::uint32_t* histograms = nullptr;
  void* candidates = nullptr;
  std::uint32_t* tile_counts = nullptr;
  void* bucket = nullptr;
  std::uint32_t* tile_above = nullptr;
  void* tile_before = nullptr;
  std::int64_t tiles = 0;
  int sequences = 0, kv_heads = 0;  // the plan's, which the score call must match
  TokenBudget budget;
};

TopkCandidates topk_candidates(const TopkPlan& plan, const TopkArgs& args);

}  // namespace dso::gpu
