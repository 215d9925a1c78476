#pragma once
// Top-k token selection per (sequence, KV head), with the semantics of
// cpu::select_topk exactly: the first `sink` and last `recent` tokens are
// always kept, k more are the highest-scoring of the rest (among equal scores
// the lower index wins), and the indices come out sorted ascending — the
// order in which the head-major host cache is cheapest to read.
//
// Method: a radix select over the scores' order-preserving 32-bit keys finds
// the k-th largest key in three digit passes (11, 11, 10 bits), each split
// over many blocks per head with per-block histograms merged in global memory;
// the second pass keeps only the keys that can still be selected, so the third
// and the in-order compaction that writes the indices read a few percent of
// the tokens. Each head's tokens are split into tiles so that batch 1 with a
// few KV heads still fills the GPU. The workspace holds about 12 bytes per
// (sequence, KV head, token).
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
  int tiles = 0;                  // blocks per (sequence, KV head)
  std::int64_t tile_tokens = 0;
  std::size_t workspace_bytes = 0;
};

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
  bool first_digit_counted = false;       // begin_topk ran and the score kernel counted the first digit
};

void select_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream);

// The selection's first pass can ride on the kernel that writes the scores
// (score_labels): it counts the first radix digit of each candidate's key as
// it stores the score, sparing the selection one read of them. begin_topk
// clears the counts and returns what that kernel needs; then run it, then
// select_topk with first_digit_counted, all on one stream.
struct TopkFirstDigit {
  std::uint32_t* histograms = nullptr;  // inside the top-k workspace; null: no counting
  TokenBudget budget;
};

TopkFirstDigit begin_topk(const TopkPlan& plan, const TopkArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
