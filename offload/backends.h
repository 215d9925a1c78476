#pragma once
// One Engine implementation per backend. Engine::create validates the
// configuration and checks its memory plan, then hands it to one of these,
// which may assume both.
#include <memory>

#include "offload/cuda_engine.h"
#include "offload/engine.h"

namespace dso {

std::unique_ptr<Engine> make_cpu_engine(const EngineConfig& config);
// Also checks the GPU memory its own buffers take, which the plan estimates.
std::unique_ptr<Engine> make_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options);

}  // namespace dso
