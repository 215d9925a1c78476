#pragma once
// Phase times of GPU work, from pairs of CUDA events recorded around each
// phase on the stream that runs it. Reading a time waits for its events, so
// times are read only when asked for (collect), and a disabled clock records
// nothing at all: the decode path then pays neither records nor waits.
#include <cuda_runtime_api.h>

#include <memory>

#include "gpu/memory.h"

namespace dso {

enum class Phase { select, fetch, attend };

class PhaseEvents {
 public:
  // pairs: phases that may be in flight before a read is forced.
  PhaseEvents(bool enabled, int pairs);

  bool enabled() const { return enabled_; }

  // Marks the start of a phase on `stream`; returns a handle for end (-1 when disabled).
  int begin(Phase phase, cudaStream_t stream);
  void end(int handle, cudaStream_t stream);

  // Waits for the phases recorded so far and adds their times to the totals.
  void collect();
  double total_ms(Phase phase) const { return totals_[int(phase)]; }
  // Collects, then zeroes the totals.
  void reset();

 private:
  struct Pair {
    gpu::Event begin;
    gpu::Event end;
    Phase phase = Phase::select;
    bool ended = false;
  };

  bool enabled_;
  int capacity_;
  std::unique_ptr<Pair[]> pairs_;
  int used_ = 0;
  double totals_[3] = {};
};

}  // namespace dso
