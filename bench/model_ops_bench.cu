// The decode-time projection: y = W x through cuBLAS at batch 1 and 2, where
// every call streams the whole weight matrix from HBM once. Its ceiling is the
// HBM copy rate, measured in this binary: each product reports its effective
// rate and the fraction of that ceiling. Timed with CUDA events, one call per
// iteration after warm-up, L2 flushed before each, median over the iterations.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "gpu/blas_handle.h"
#include "gpu/device_array.h"
#include "gpu/model_check.h"
#include "gpu/model_ops.h"

namespace dso {
namespace {

using gpu::DeviceArray;

constexpr int kWarmup = 3;

class Events {
 public:
  Events() {
    DSO_CUDA_CHECK(cudaEventCreate(&start_));
    DSO_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Events() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  // Milliseconds that `work` takes on `stream`.
  template <class F>
  float time(cudaStream_t stream, F&& work) {
    DSO_CUDA_CHECK(cudaEventRecord(start_, stream));
    work();
    DSO_CUDA_CHECK(cudaEventRecord(stop_, stream));
    DSO_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    DSO_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

class Stream {
 public:
  Stream() { DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Writing twice the L2's size evicts whatever the previous call left there.
class L2Flush {
 public:
  L2Flush() : buffer_(2 * l2_bytes()) {}
  void run(cudaStream_t stream) { DSO_CUDA_CHECK(cudaMemsetAsync(buffer_.data(), 0, buffer_.bytes(), stream)); }

 private:
  static std::size_t l2_bytes() {
    int device = 0, bytes = 0;
    DSO_CUDA_CHECK(cudaGetDevice(&device));
    DSO_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device));
    return std::max<std::size_t>(std::size_t(bytes), 1 << 20);
  }
  DeviceArray<std::byte> buffer_;
};

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (double(v[n / 2 - 1]) + v[n / 2]);
}

// Device-to-device copies of 256 MiB, counted as bytes read plus bytes
// written: the traffic a copy puts on HBM.
class HbmCopy {
 public:
  static constexpr std::size_t kBytes = std::size_t(256) << 20;

  HbmCopy() : src_(kBytes), dst_(kBytes) {
    DSO_CUDA_CHECK(cudaMemsetAsync(src_.data(), 1, kBytes, stream_.get()));
    for (int i = 0; i < kWarmup; ++i) once_ms();
  }
  float once_ms() {
    return events_.time(stream_.get(), [&] {
      DSO_CUDA_CHECK(cudaMemcpyAsync(dst_.data(), src_.data(), kBytes, cudaMemcpyDeviceToDevice, stream_.get()));
    });
  }
  static double GBps(double ms) { return 2.0 * double(kBytes) / (ms * 1e-3) / 1e9; }

 private:
  DeviceArray<std::byte> src_, dst_;
  Stream stream_;
  Events events_;
};

// The ceiling every product is compared with, measured once per process.
double hbm_copy_GBps() {
  static const double rate = [] {
    HbmCopy copy;
    std::vector<float> ms;
    for (int i = 0; i < 20; ++i) ms.push_back(copy.once_ms());
    return HbmCopy::GBps(median(ms));
  }();
  return rate;
}

void BM_HbmCopy(benchmark::State& state) {
  if (!gpu_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  HbmCopy copy;
  std::vector<float> ms;
  for (auto _ : state) {
    ms.push_back(copy.once_ms());
    state.SetIterationTime(ms.back() * 1e-3);
  }
  state.SetBytesProcessed(std::int64_t(2 * HbmCopy::kBytes) * state.iterations());
  state.counters["median_us"] = median(ms) * 1e3;
  state.counters["GBps"] = HbmCopy::GBps(median(ms));
  state.SetLabel(device_name());
}

// Args: out_features, in_features, batch.
template <class W>
void BM_Matmul(benchmark::State& state) {
  if (!gpu_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const std::int64_t out_f = state.range(0), in_f = state.range(1);
  const int batch = int(state.range(2));
  Stream stream;
  Events events;
  L2Flush flush;
  gpu::BlasHandle blas(stream.get());
  // Values do not change the time of a dense product; a byte pattern gives
  // finite numbers in both 16-bit formats.
  DeviceArray<W> w(std::size_t(out_f * in_f)), x(std::size_t(batch * in_f));
  DeviceArray<float> y(std::size_t(batch * out_f));
  DSO_CUDA_CHECK(cudaMemsetAsync(w.data(), 0x3c, w.bytes(), stream.get()));
  DSO_CUDA_CHECK(cudaMemsetAsync(x.data(), 0x3c, x.bytes(), stream.get()));
  const gpu::MatmulParams<W> params{w.data(), out_f, in_f, x.data(), batch, y.data()};
  for (int i = 0; i < kWarmup; ++i) gpu::matmul(blas, params);

  std::vector<float> ms;
  for (auto _ : state) {
    flush.run(stream.get());
    const float t = events.time(stream.get(), [&] { gpu::matmul(blas, params); });
    ms.push_back(t);
    state.SetIterationTime(t * 1e-3);
  }
  const double bytes = double(w.bytes() + x.bytes() + y.bytes());
  const double rate = bytes / (median(ms) * 1e-3) / 1e9;
  state.SetBytesProcessed(std::int64_t(bytes) * state.iterations());
  state.counters["median_us"] = median(ms) * 1e3;
  state.counters["GBps"] = rate;
  state.counters["hbm_copy_GBps"] = hbm_copy_GBps();
  state.counters["of_copy"] = rate / hbm_copy_GBps();
  state.SetLabel(device_name());
}

void matmul_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t out_f : {4096, 14336})
    for (std::int64_t batch : {1, 2}) b->Args({out_f, 4096, batch});
  b->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
}

BENCHMARK(BM_HbmCopy)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK_TEMPLATE(BM_Matmul, Half)->Apply(matmul_shapes);
BENCHMARK_TEMPLATE(BM_Matmul, BFloat16)->Apply(matmul_shapes);

}  // namespace
}  // namespace dso

