#pragma once
// One Engine implementation per backend. Engine::create validates the
// configuration and checks its memory plan, then hands it to one of these,
// which may assume both.
#include <memory>

#include "offload/engine.h"

namespace dso {

std::unique_ptr<Engine> make_cpu_engine(const EngineConfig& config);

}  // namespace dso
