#pragma once
// The timed part of `dsoffload bench`, one loop per backend: fill every
// (sequence, layer) of the engine with `context` synthetic tokens, then decode
// warmup + steps steps of every layer, timing each step from the first
// layer's call to the last layer's output being ready.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cli/device_synthetic_tensors.h"
#include "cli/synthetic_tensors.h"
#include "core/interrupt.h"
#include "offload/engine.h"

namespace dso::cli {

struct StepLoop {
  std::int64_t context = 0;
  int warmup = 0;
  int steps = 0;
  std::string run;  // "policy P (i of n)": where an interrupt says it stopped
};

// Polled at every step boundary of a loop: throws Interrupted after Ctrl-C.
inline void stop_at_step(const StepLoop& loop, int step) {
  stop_if_interrupted("step ", step + 1, " of ", loop.warmup + loop.steps, " (", loop.warmup, " warm-up) of ", loop.run);
}

// One timed step: wall-clock milliseconds and the engine's counters.
struct StepSample {
  double ms = 0;
  StepStats stats;
};

// Appends `context` synthetic tokens to every (sequence, layer) of an empty
// engine through its prefill, in large chunks, with progress on stderr. The
// cuda fill makes the chunks on the GPU, sets `stream` as the engine's stream
// and returns with it synchronised.
void fill_cpu_cache(Engine& engine, const SyntheticTensors& data, std::int64_t context, const std::string& run);
void fill_cuda_cache(Engine& engine, const DeviceSyntheticTensors& data, std::int64_t context, cudaStream_t stream,
                     const std::string& run);

// Host tensors, host wall-clock.
std::vector<StepSample> run_cpu_steps(Engine& engine, const SyntheticTensors& data, const StepLoop& loop);
// Device tensors made on the GPU, work on `stream`, which becomes the engine's
// and must outlive it; each step ends when the stream is idle.
std::vector<StepSample> run_cuda_steps(Engine& engine, const SyntheticTensors& data, const StepLoop& loop,
                                       cudaStream_t stream);

}  // namespace dso::cli
