#pragma once
// The cuda backend of the engine, and the options only it has. Engine::create
// with Backend::cuda makes one with default options.
//
// Every tensor handed to it is a device pointer (or mapped pinned memory),
// and all its work, prefill included, is ordered on the engine's stream (the
// legacy default stream until set_stream names another): the caller keeps
// inputs alive and reads outputs in that stream's order. Side streams of its
// own fetch ahead, ordered with that stream by events.
#include <memory>

#include "offload/engine.h"

namespace dso {

struct CudaEngineOptions {
  // StepStats' phase times (ms_select, ms_fetch, ms_attend) from CUDA events
  // recorded around each phase. Off by default: reading them (stats())
  // waits for the GPU, and recording costs a little host time per phase.
  bool time_phases = false;
};

// Validates the configuration, checks that it fits this machine (Engine::check_fits),
// then creates the engine; config.backend must be Backend::cuda.
std::unique_ptr<Engine> create_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options);

}  // namespace dso
