#pragma once
// How the CPU backend spreads work over threads: plain std::threads started
// per call, the caller one of them. A call is a whole matrix product or a
// layer's attention over a prefill chunk, long enough that starting a few
// threads is lost in it; without a pool there is nothing to shut down.
#include <cstdint>
#include <functional>

namespace dso::cpu {

// The cores this process may run on (its CPU affinity, which containers and
// taskset narrow), at least 1.
int available_cores();

// A thread count as the options give it: 0 means available_cores().
int resolve_threads(int threads);

// Calls body(i) for every i in [0, count) on up to `threads` threads (0:
// available_cores()). Items are handed out in order as threads become free,
// so items of uneven cost balance. An exception thrown by a body stops the
// handing out and is rethrown once every thread has finished.
void parallel_for(std::int64_t count, int threads, const std::function<void(std::int64_t)>& body);

}  // namespace dso::cpu
