#pragma once
// `dsoffload bench`'s model mode: whole decode steps of a Llama model
// (embedding, every layer's projections, attention through the engine, MLP,
// LM head) under each policy, over a context filled synthetically (dummy
// weights) or by a prefill through the model (real weights).
#include "cli/bench_options.h"

namespace dso::cli {

// The Llama shapes the model mode knows by name: llama-2-7b, llama-3-8b,
// smollm2-135m (dummy weights).
bool is_model_shape(const std::string& name);

void run_model_bench(const BenchOptions& options, bool cuda);

}  // namespace dso::cli
