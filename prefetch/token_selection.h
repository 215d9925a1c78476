#pragma once
// Top-k token selection of one layer on the GPU, for every (sequence, KV
// head): label scores of the cached tokens with a query, then select_topk;
// or, for SparQ-style selection, scores over the full keys at the channels
// the query picks (gpu/sparq.h), then the same select_topk.
// Scores and the top-k workspace are planned and allocated once, so selecting
// allocates nothing. Budgets may differ between sequences (k as a fraction of
// each one's context); where they do, each sequence is selected on its own.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/shape.h"
#include "gpu/memory.h"
#include "gpu/rows.h"
#include "gpu/topk.h"

namespace dso {

struct SelectionShape {
  DType dtype = DType::f16;
  int sequences = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int r = 0;                    // label channels (Selector::labels)
  std::int64_t max_tokens = 0;  // the most tokens a selection runs over: the cache capacity
  int sparq_r = 0;              // channels picked per step (Selector::sparq); 0: select_sparq is not planned for
  int multiprocessors = 0;      // of the device the gather after it runs on; 0: the current device's
};

// One layer's labels and a query to score them with.
struct SelectionInputs {
  const void* q = nullptr;                 // [sequences][q_heads][head_dim], device
  const std::int32_t* channels = nullptr;  // [kv_heads][r], device: the layer's label channels;
                                           // null: labels are full rows, head_dim wide
  gpu::ConstRows labels;                   // (sequence, kv_head, token): r wide
  const std::int32_t* lengths = nullptr;   // [sequences], device: tokens cached
};

// One layer's full keys (Selector::sparq) and the query that picks their channels.
struct SparqSelectionInputs {
  const void* q = nullptr;                // [sequences][q_heads][head_dim], device
  gpu::ConstRows keys;                    // (sequence, kv_head, token): head_dim wide
  const std::int32_t* lengths = nullptr;  // [sequences], device: tokens cached
};

// Where a selection goes: positions ascending, as select_topk writes them.
struct SelectionOutputs {
  std::int32_t* indices = nullptr;  // [sequences][kv_heads][index_stride], device
  std::int64_t index_stride = 0;
  std::int32_t* counts = nullptr;   // [sequences][kv_heads], device
};

class TokenSelection {
 public:
  explicit TokenSelection(const SelectionShape& shape);

  // Device memory a selection of this shape holds.
  static std::int64_t device_bytes(const SelectionShape& shape);

  // budgets: one per sequence. Ordered on `stream`.
  void select(const SelectionInputs& in, std::span<const TokenBudget> budgets, const SelectionOutputs& out,
              cudaStream_t stream) const;
  // SparQ-style: each (sequence, KV head) picks shape.sparq_r channels from
  // its query, then select() over the full keys with the query masked to them.
  void select_sparq(const SparqSelectionInputs& in, std::span<const TokenBudget> budgets,
                    const SelectionOutputs& out, cudaStream_t stream) const;

 private:
  struct Plans {
    gpu::TopkPlan all;  // every sequence at once
    gpu::TopkPlan one;  // one sequence, where budgets differ
    std::size_t workspace_bytes = 0;
  };
  static Plans make_plans(const SelectionShape& shape);

  // Scores and selects sequences [first, first + count) with one budget.
  void select_range(const SelectionInputs& in, int first, int count, const TokenBudget& budget,
                    const SelectionOutputs& out, cudaStream_t stream) const;

  SelectionShape shape_;
  Plans plans_;
  gpu::DeviceBuffer scores_;     // [sequences][kv_heads][max_tokens] fp32
  gpu::DeviceBuffer workspace_;  // plans_.workspace_bytes
  gpu::DeviceBuffer sparq_channels_;  // [sequences][kv_heads][sparq_r] int32: the step's channels
  gpu::DeviceBuffer sparq_query_;     // [sequences][q_heads][head_dim]: the query masked to them
};

}  // namespace dso
