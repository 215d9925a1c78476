#pragma once
// Approximate attention scores from the GPU label cache, with GQA aggregation:
//   score[s][j][t] = sum over the group's query heads h of q_h[S_j] . label_t
// for every cached token t < lengths[s]. fp32 scores. CPU reference:
// cpu::score_labels. With `candidates`, the first part of the top-k selection
// instead (see TopkCandidates in topk.h): the scores are not written then.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"
#include "gpu/topk.h"

namespace dso::gpu {

struct LabelScoreArgs {
  DType dtype = DType::f16;
  int sequences = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int r = 0;
  const void* q = nullptr;                 // [sequences][q_heads][head_dim], device
  const std::int32_t* channels = nullptr;  // [kv_heads][r], device; null: label channel c is channel c
  ConstRows labels;                        // (sequence, kv_head, token): r wide (full key rows where channels is null)
  const std::int32_t* lengths = nullptr;   // [sequences], device: cached tokens of each sequence
  std::int64_t max_tokens = 0;             // bound on every length; sizes the grid
  float* scores = nullptr;                 // [sequences][kv_heads][score_stride]; entries past a length are left as they were
  std::int64_t score_stride = 0;
  TopkCandidates candidates;               // optional: from topk_candidates, for the selection that follows
};

void score_labels(const LabelScoreArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
