#pragma once
// `dsoffload bench`'s model mode: whole decode steps of a Llama model
// (embedding, every layer's projections, attention through the engine, MLP,
// LM head) under each policy, over a context filled synthetically (dummy
// weights) or by a prefill through the model (real weights).
#include "cli/bench_options.h"

namespace dso::cli {

void run_model_bench(const BenchOptions& options, bool cuda);

}  // namespace dso::cli
