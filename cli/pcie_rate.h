#pragma once
// The contiguous host-to-device copy rate of this machine, measured: a
// benchmark's reference for what its fetches achieve.
#include <cstdint>

namespace dso::cli {

// Median GB/s (1e9 bytes/s) of `repeats` cudaMemcpyAsync copies of `bytes`
// from pinned host memory to the GPU, after one untimed copy.
double measure_pcie_h2d_GBps(std::int64_t bytes, int repeats);

}  // namespace dso::cli
