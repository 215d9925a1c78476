#include "offload/engine.h"

#include "core/error.h"
#include "offload/backends.h"

namespace dso {

std::unique_ptr<Engine> Engine::create(const EngineConfig& config) {
  check_fits(config);
  switch (config.backend) {
    case Backend::cpu: return make_cpu_engine(config);
    case Backend::cuda: return make_cuda_engine(config, {});
  }
  fail("unknown backend ", int(config.backend));
}

}  // namespace dso
