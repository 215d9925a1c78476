#include "cli/pcie_rate.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/memory.h"

namespace dso::cli {

double measure_pcie_h2d_GBps(std::int64_t bytes, int repeats) {
  require(bytes > 0 && repeats > 0, "PCIe measurement needs bytes and repeats, got ", bytes, " and ", repeats);
  const gpu::PinnedBuffer host{std::size_t(bytes)};
  const gpu::DeviceBuffer device{std::size_t(bytes)};
  gpu::Stream stream;
  gpu::Event start, stop;
  std::vector<double> rates;
  for (int i = 0; i <= repeats; ++i) {
    start.record(stream.get());
    DSO_CUDA_CHECK(cudaMemcpyAsync(device.data(), host.data(), std::size_t(bytes), cudaMemcpyHostToDevice,
                                   stream.get()));
    stop.record(stream.get());
    stream.synchronize();
    if (i > 0) rates.push_back(double(bytes) / (double(stop.elapsed_ms_since(start)) * 1e6));
  }
  std::nth_element(rates.begin(), rates.begin() + std::ptrdiff_t(rates.size() / 2), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace dso::cli
