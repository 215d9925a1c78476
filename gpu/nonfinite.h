#pragma once
// A running count of non-finite values (NaN, +-inf) in device memory, for
// long runs that watch every step's output without copying it to the host:
// the count stays on the device until the caller reads it.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dso::gpu {

// *count += the number of x[0..n) that are NaN or infinite, ordered on
// `stream`. count is one device word the caller zeroes and reads.
void count_nonfinite(const float* x, std::int64_t n, unsigned long long* count, cudaStream_t stream);

}  // namespace dso::gpu
