#include "prefetch/phase_events.h"

#include "core/error.h"
#include "gpu/check.h"

namespace dso {

PhaseEvents::PhaseEvents(bool enabled, int pairs)
    : enabled_(enabled), capacity_(enabled ? pairs : 0), pairs_(enabled ? new Pair[std::size_t(pairs)] : nullptr) {
  require(!enabled || pairs > 0, "phase timing needs room for at least one phase, got ", pairs);
}

int PhaseEvents::begin(Phase phase, cudaStream_t stream) {
  if (!enabled_) return -1;
  if (used_ == capacity_) collect();  // a wait, only when more phases are in flight than planned
  Pair& p = pairs_[std::size_t(used_)];
  p.phase = phase;
  p.ended = false;
  p.begin.record(stream);
  return used_++;
}

void PhaseEvents::end(int handle, cudaStream_t stream) {
  if (handle < 0) return;
  Pair& p = pairs_[std::size_t(handle)];
  p.end.record(stream);
  p.ended = true;
}

void PhaseEvents::collect() {
  for (int i = 0; i < used_; ++i) {
    Pair& p = pairs_[std::size_t(i)];
    if (!p.ended) continue;  // abandoned by an error between begin and end
    DSO_CUDA_CHECK(cudaEventSynchronize(p.end.get()));
    totals_[int(p.phase)] += p.end.elapsed_ms_since(p.begin);
  }
  used_ = 0;
}

void PhaseEvents::reset() {
  collect();
  for (double& t : totals_) t = 0;
}

}  // namespace dso
