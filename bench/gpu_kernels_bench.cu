// GPU kernel microbenchmarks. Each reports its bytes/s next to the ceiling it
// is held to, measured in the same binary: the HBM device-to-device copy rate
// (bytes read + written) for on-GPU kernels, the contiguous pinned
// host-to-device cudaMemcpyAsync rate for the zero-copy gather. Times are
// medians of CUDA-event-timed runs after warm-up; the L2 cache is scrubbed
// before each run. Inputs are random, never zeros.
#include <benchmark/benchmark.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <numeric>
#include <random>
#include <vector>

#include "core/device.h"
#include "core/shape.h"
#include "gpu/check.h"
#include "gpu/decode_attention.h"
#include "gpu/gather.h"
#include "gpu/memory.h"
#include "gpu/scores.h"
#include "gpu/topk.h"

namespace dso {
namespace {

using gpu::DeviceBuffer;
using gpu::PinnedBuffer;

constexpr double kGB = 1e9;
constexpr std::size_t kScrubBytes = std::size_t(256) << 20;  // > the 50 MB L2

__device__ std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform values in [-1, 1), the same for a given seed.
__global__ void fill_random_kernel(__half* data, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    data[i] = __float2half_rn(float(mix(seed ^ i) >> 40) * (2.0f / 16777216.0f) - 1.0f);
}

void fill_random(void* data, std::size_t n, std::uint64_t seed, cudaStream_t stream) {
  fill_random_kernel<<<1024, 256, 0, stream>>>(static_cast<__half*>(data), n, seed);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

class Timer {
 public:
  Timer() : scrub_(kScrubBytes) {}
  cudaStream_t stream() const { return stream_.get(); }

  // Median milliseconds of `runs` timed calls of `work`, after `warmup` untimed ones.
  template <class Work>
  double median_ms(Work&& work, int runs = 30, int warmup = 3) {
    for (int i = 0; i < warmup; ++i) work();
    std::vector<double> times;
    for (int i = 0; i < runs; ++i) {
      DSO_CUDA_CHECK(cudaMemsetAsync(scrub_.data(), i & 0xff, scrub_.bytes(), stream()));
      start_.record(stream());
      work();
      stop_.record(stream());
      stream_.synchronize();
      times.push_back(stop_.elapsed_ms_since(start_));
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    return times[times.size() / 2];
  }

 private:
  gpu::Stream stream_;
  gpu::Event start_, stop_;
  DeviceBuffer scrub_;
};

// Runs a benchmark body once under manual timing; errors become skips with their message.
template <class Body>
void run_benchmark(benchmark::State& state, Body&& body) {
  if (!gpu_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  try {
    for (auto _ : state) state.SetIterationTime(body() / 1e3);
    state.SetLabel(device_name());
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

double hbm_copy_GBps() {
  static const double rate = [] {
    constexpr std::size_t bytes = std::size_t(2) << 30;
    DeviceBuffer a(bytes), b(bytes);
    Timer timer;
    fill_random(a.data(), bytes / 2, 1, timer.stream());
    const double ms = timer.median_ms(
        [&] { DSO_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, timer.stream())); },
        20);
    return 2.0 * bytes / (ms * 1e-3) / kGB;
  }();
  return rate;
}

double pinned_h2d_GBps() {
  constexpr std::size_t bytes = std::size_t(256) << 20;
  PinnedBuffer host(bytes);
  DeviceBuffer device(bytes);
  Timer timer;
  fill_random(host.device_data(), bytes / 2, 2, timer.stream());
  const double ms = timer.median_ms(
      [&] { DSO_CUDA_CHECK(cudaMemcpyAsync(device.data(), host.data(), bytes, cudaMemcpyHostToDevice, timer.stream())); },
      20);
  return bytes / (ms * 1e-3) / kGB;
}

void BM_GpuCeilingHbmCopy(benchmark::State& state) {
  run_benchmark(state, [&] {
    const double rate = hbm_copy_GBps();
    state.counters["GBps"] = rate;
    return 2.0 * double(std::size_t(2) << 30) / (rate * kGB) * 1e3;
  });
}
BENCHMARK(BM_GpuCeilingHbmCopy)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_GpuCeilingPinnedH2D(benchmark::State& state) {
  run_benchmark(state, [&] {
    const double rate = pinned_h2d_GBps();
    state.counters["GBps"] = rate;
    return double(std::size_t(256) << 20) / (rate * kGB) * 1e3;
  });
}
BENCHMARK(BM_GpuCeilingPinnedH2D)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

// One layer's attention state at batch 1: K/V [kv_head][n][d] fp16 on the GPU,
// a label cache [kv_head][n][r] and a query [q_heads][d].
struct DecodeLayer {
  DecodeLayer(int q_heads, int kv_heads, int head_dim, int r, std::int64_t n, cudaStream_t stream)
      : q_heads(q_heads), kv_heads(kv_heads), head_dim(head_dim), r(r), n(n),
        kv_bytes(std::size_t(kv_heads) * n * head_dim * 2), k(kv_bytes), v(kv_bytes),
        labels(std::size_t(kv_heads) * n * r * 2), q(std::size_t(q_heads) * head_dim * 2),
        lengths(sizeof(std::int32_t)), channels(std::size_t(kv_heads) * r * sizeof(std::int32_t)) {
    fill_random(k.data(), kv_bytes / 2, 10, stream);
    fill_random(v.data(), kv_bytes / 2, 11, stream);
    fill_random(labels.data(), labels.bytes() / 2, 12, stream);
    fill_random(q.data(), q.bytes() / 2, 13, stream);
    const std::int32_t length = std::int32_t(n);
    DSO_CUDA_CHECK(cudaMemcpy(lengths.data(), &length, sizeof(length), cudaMemcpyHostToDevice));
    std::vector<std::int32_t> ch(std::size_t(kv_heads) * r);
    for (std::size_t i = 0; i < ch.size(); ++i) ch[i] = std::int32_t(i % r);
    DSO_CUDA_CHECK(cudaMemcpy(channels.data(), ch.data(), ch.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice));
    DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  gpu::RowStrides kv_strides() const { return gpu::RowStrides::dense(kv_heads, n, head_dim); }

  int q_heads, kv_heads, head_dim, r;
  std::int64_t n;
  std::size_t kv_bytes;
  DeviceBuffer k, v, labels, q, lengths, channels;
};

// Dense attention over the whole layer; returns its output workspace owner.
struct DenseAttention {
  DenseAttention(const DecodeLayer& layer)
      : plan(gpu::plan_decode_attention(1, layer.q_heads, layer.kv_heads, layer.head_dim, layer.n)),
        workspace(plan.workspace_bytes), out(std::size_t(layer.q_heads) * layer.head_dim * 2) {
    args.dtype = DType::f16;
    args.q = layer.q.data();
    args.k = {layer.k.data(), layer.kv_strides()};
    args.v = {layer.v.data(), layer.kv_strides()};
    args.lengths = layer.lengths.as<std::int32_t>();
    args.out = out.data();
    args.workspace = workspace.data();
    args.workspace_bytes = workspace.bytes();
  }
  void run(cudaStream_t stream) const { gpu::decode_attention(plan, args, stream); }

  gpu::DecodeAttentionPlan plan;
  DeviceBuffer workspace, out;
  gpu::DecodeAttentionArgs args;
};

// The Double Sparsity step on the GPU: label scores, top-k, attention through the index list.
struct SparseStep {
  SparseStep(const DecodeLayer& layer, const TokenBudget& budget)
      : budget(budget), k_max(selection_size(layer.n, budget)),
        topk_plan(gpu::plan_topk(1, layer.kv_heads, layer.n)),
        attention_plan(gpu::plan_decode_attention(1, layer.q_heads, layer.kv_heads, layer.head_dim, k_max)),
        scores(std::size_t(layer.kv_heads) * layer.n * sizeof(float)),
        indices(std::size_t(layer.kv_heads) * k_max * sizeof(std::int32_t)),
        counts(std::size_t(layer.kv_heads) * sizeof(std::int32_t)), topk_workspace(topk_plan.workspace_bytes),
        attention_workspace(attention_plan.workspace_bytes), out(std::size_t(layer.q_heads) * layer.head_dim * 2) {
    score_args.dtype = DType::f16;
    score_args.sequences = 1;
    score_args.q_heads = layer.q_heads;
    score_args.kv_heads = layer.kv_heads;
    score_args.head_dim = layer.head_dim;
    score_args.r = layer.r;
    score_args.q = layer.q.data();
    score_args.channels = layer.channels.as<std::int32_t>();
    score_args.labels = {layer.labels.data(), gpu::RowStrides::dense(layer.kv_heads, layer.n, layer.r)};
    score_args.lengths = layer.lengths.as<std::int32_t>();
    score_args.max_tokens = layer.n;
    score_args.scores = scores.as<float>();
    score_args.score_stride = layer.n;

    topk_args = {scores.as<float>(),         layer.n,  layer.lengths.as<std::int32_t>(), budget,
                 indices.as<std::int32_t>(), k_max,    counts.as<std::int32_t>(),        topk_workspace.data(),
                 topk_workspace.bytes()};

    attention_args.dtype = DType::f16;
    attention_args.q = layer.q.data();
    attention_args.k = {layer.k.data(), layer.kv_strides()};
    attention_args.v = {layer.v.data(), layer.kv_strides()};
    attention_args.lengths = counts.as<std::int32_t>();
    attention_args.length_stride_sequence = layer.kv_heads;
    attention_args.length_stride_head = 1;
    attention_args.indices = indices.as<std::int32_t>();
    attention_args.index_stride = k_max;
    attention_args.out = out.data();
    attention_args.workspace = attention_workspace.data();
    attention_args.workspace_bytes = attention_workspace.bytes();
  }
  // The step as the engine runs it: the selection's candidates listed by the score kernels.
  void run(cudaStream_t s) const {
    score_and_list(s);
    finish_selection(s);
    attend(s);
  }
  void score_and_list(cudaStream_t s) const {
    gpu::LabelScoreArgs listing = score_args;
    listing.candidates = gpu::topk_candidates(topk_plan, topk_args);
    gpu::score_labels(listing, s);
  }
  void finish_selection(cudaStream_t s) const {
    gpu::TopkArgs rest = topk_args;
    rest.candidates_written = true;
    gpu::select_topk(topk_plan, rest, s);
  }
  // Each kernel family alone, the top-k with its own first pass.
  void score(cudaStream_t s) const { gpu::score_labels(score_args, s); }
  void select(cudaStream_t s) const { gpu::select_topk(topk_plan, topk_args, s); }
  void attend(cudaStream_t s) const { gpu::decode_attention(attention_plan, attention_args, s); }

  TokenBudget budget;
  std::int64_t k_max;
  gpu::TopkPlan topk_plan;
  gpu::DecodeAttentionPlan attention_plan;
  DeviceBuffer scores, indices, counts, topk_workspace, attention_workspace, out;
  gpu::LabelScoreArgs score_args;
  gpu::TopkArgs topk_args;
  gpu::DecodeAttentionArgs attention_args;
};

// Selection of n/16 tokens in all: 4 sink, 64 recent and the rest by score.
TokenBudget sixteenth(std::int64_t n) { return {n / 16 - 68, 4, 64}; }

// args: n, q_heads, kv_heads
void BM_GpuDenseAttention(benchmark::State& state) {
  run_benchmark(state, [&] {
    Timer timer;
    const DecodeLayer layer(int(state.range(1)), int(state.range(2)), 128, 8, state.range(0), timer.stream());
    const DenseAttention dense(layer);
    const double ms = timer.median_ms([&] { dense.run(timer.stream()); });
    const double rate = 2.0 * layer.kv_bytes / (ms * 1e-3) / kGB;
    state.counters["GBps"] = rate;
    state.counters["hbm_copy_GBps"] = hbm_copy_GBps();
    state.counters["fraction_of_copy"] = rate / hbm_copy_GBps();
    return ms;
  });
}
BENCHMARK(BM_GpuDenseAttention)
    ->ArgNames({"n", "q_heads", "kv_heads"})
    ->Args({256 * 1024, 32, 32})
    ->Args({256 * 1024, 32, 8})
    ->Args({32 * 1024, 32, 32})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// args: n, q_heads, kv_heads. The step's time is the manual time; the dense
// kernel on the same layer is timed in the same run for the speed-up.
void BM_GpuDoubleSparsityStep(benchmark::State& state) {
  run_benchmark(state, [&] {
    Timer timer;
    const DecodeLayer layer(int(state.range(1)), int(state.range(2)), 128, 8, state.range(0), timer.stream());
    const DenseAttention dense(layer);
    const SparseStep step(layer, sixteenth(layer.n));
    const cudaStream_t s = timer.stream();
    const double dense_ms = timer.median_ms([&] { dense.run(s); });
    const double step_ms = timer.median_ms([&] { step.run(s); }, 50);
    const double score_ms = timer.median_ms([&] { step.score(s); }, 50);
    const double select_ms = timer.median_ms([&] { step.select(s); }, 50);
    const double attend_ms = timer.median_ms([&] { step.attend(s); }, 50);
    const double label_pass_ms = timer.median_ms([&] { step.score_and_list(s); }, 50);
    const double compaction_ms = timer.median_ms([&] { step.finish_selection(s); }, 50);

    // The same step replayed from a CUDA graph: no launch gaps.
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    DSO_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    step.run(s);
    DSO_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    DSO_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const double graph_ms = timer.median_ms([&] { DSO_CUDA_CHECK(cudaGraphLaunch(exec, s)); }, 50);
    DSO_CUDA_CHECK(cudaGraphExecDestroy(exec));
    DSO_CUDA_CHECK(cudaGraphDestroy(graph));

    const double label_bytes = double(layer.kv_heads) * layer.n * layer.r * 2;
    const double score_bytes = double(layer.kv_heads) * layer.n * 4;
    const double selected_bytes = 2.0 * layer.kv_heads * step.k_max * layer.head_dim * 2;
    state.counters["dense_ms"] = dense_ms;
    state.counters["step_ms"] = step_ms;
    state.counters["step_graph_ms"] = graph_ms;
    state.counters["speedup"] = dense_ms / step_ms;
    state.counters["speedup_graph"] = dense_ms / graph_ms;
    state.counters["scores_ms"] = score_ms;
    state.counters["scores_GBps"] = (label_bytes + score_bytes) / (score_ms * 1e-3) / kGB;
    state.counters["topk_ms"] = select_ms;
    // The step's own split: sampling, scores and candidate lists, bucket and k-th key; compaction.
    state.counters["step_label_pass_ms"] = label_pass_ms;
    state.counters["step_compaction_ms"] = compaction_ms;
    state.counters["sparse_attention_ms"] = attend_ms;
    state.counters["sparse_attention_GBps"] = selected_bytes / (attend_ms * 1e-3) / kGB;
    state.counters["hbm_copy_GBps"] = hbm_copy_GBps();
    return step_ms;
  });
}
BENCHMARK(BM_GpuDoubleSparsityStep)
    ->ArgNames({"n", "q_heads", "kv_heads"})
    ->Args({256 * 1024, 32, 32})
    ->Args({256 * 1024, 32, 8})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// args: n, kv_heads. Top-k alone over random scores.
void BM_GpuTopk(benchmark::State& state) {
  run_benchmark(state, [&] {
    Timer timer;
    const std::int64_t n = state.range(0);
    const int kv_heads = int(state.range(1));
    const TokenBudget budget = sixteenth(n);
    const gpu::TopkPlan plan = gpu::plan_topk(1, kv_heads, n);
    const std::int64_t k_max = selection_size(n, budget);
    DeviceBuffer scores(std::size_t(kv_heads) * n * 4), lengths(4), indices(std::size_t(kv_heads) * k_max * 4),
        counts(std::size_t(kv_heads) * 4), workspace(plan.workspace_bytes);
    // fp16 noise reinterpreted as pairs: every float finite, many distinct.
    fill_random(scores.data(), std::size_t(kv_heads) * n * 2, 20, timer.stream());
    const std::int32_t length = std::int32_t(n);
    DSO_CUDA_CHECK(cudaMemcpy(lengths.data(), &length, 4, cudaMemcpyHostToDevice));
    const gpu::TopkArgs args{scores.as<float>(), n,     lengths.as<std::int32_t>(), budget, indices.as<std::int32_t>(),
                             k_max,              counts.as<std::int32_t>(), workspace.data(), workspace.bytes()};
    const double ms = timer.median_ms([&] { gpu::select_topk(plan, args, timer.stream()); }, 50);
    state.counters["scores_GBps_per_pass"] = double(kv_heads) * n * 4 / (ms * 1e-3) / kGB;
    return ms;
  });
}
BENCHMARK(BM_GpuTopk)
    ->ArgNames({"n", "kv_heads"})
    ->Args({256 * 1024, 32})
    ->Args({1024 * 1024, 8})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// One layer of the pinned head-major host cache ([kv_head][n][d] for K and
// for V, llama-2-7b's shape at 256K tokens), made once for all gather runs.
struct HostLayer {
  static constexpr std::int64_t n = 256 * 1024;
  static constexpr int kv_heads = 32, d = 128;
  static constexpr std::size_t bytes = std::size_t(kv_heads) * n * d * 2;

  static HostLayer& get() {
    static HostLayer layer;
    return layer;
  }

  HostLayer() : k(bytes), v(bytes) {
    gpu::Stream stream;
    fill_random(k.device_data(), bytes / 2, 30, stream.get());
    fill_random(v.device_data(), bytes / 2, 31, stream.get());
    // One full read of the fresh pages before any timing: on the measured
    // machine (a VM) the first gathers over newly pinned memory ran 10-35%
    // slower, for longer than a few warm-up runs.
    DeviceBuffer scratch(std::size_t(256) << 20);
    for (const PinnedBuffer* layer : {&k, &v})
      for (std::size_t at = 0; at < bytes; at += scratch.bytes())
        DSO_CUDA_CHECK(cudaMemcpyAsync(scratch.data(), static_cast<const char*>(layer->data()) + at,
                                       std::min(scratch.bytes(), bytes - at), cudaMemcpyHostToDevice, stream.get()));
    stream.synchronize();
  }
  PinnedBuffer k, v;
};

// args: blocks per multiprocessor (0: the default). n/16 sorted random
// positions per head, K and V: 256 MiB.
void BM_GpuGather(benchmark::State& state) {
  run_benchmark(state, [&] {
    Timer timer;
    HostLayer& layer = HostLayer::get();
    constexpr std::int64_t n = HostLayer::n;
    constexpr int kv_heads = HostLayer::kv_heads, d = HostLayer::d;
    const std::int64_t count = n / 16;
    std::vector<std::int32_t> idx(std::size_t(kv_heads) * count), counts(kv_heads, std::int32_t(count));
    std::mt19937_64 rng(40);
    std::vector<std::int32_t> all(n);
    for (int h = 0; h < kv_heads; ++h) {
      std::iota(all.begin(), all.end(), 0);
      for (std::int64_t i = 0; i < count; ++i) std::swap(all[i], all[i + std::int64_t(rng() % (n - i))]);
      std::sort(all.begin(), all.begin() + count);
      std::copy(all.begin(), all.begin() + count, idx.begin() + std::int64_t(h) * count);
    }
    DeviceBuffer d_idx(idx.size() * 4), d_counts(counts.size() * 4);
    DSO_CUDA_CHECK(cudaMemcpy(d_idx.data(), idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
    DSO_CUDA_CHECK(cudaMemcpy(d_counts.data(), counts.data(), counts.size() * 4, cudaMemcpyHostToDevice));
    const std::size_t out_bytes = std::size_t(kv_heads) * count * d * 2;
    DeviceBuffer k_out(out_bytes), v_out(out_bytes);
    const gpu::RowStrides cache = gpu::RowStrides::dense(kv_heads, n, d);
    const gpu::RowStrides dst = gpu::RowStrides::dense(kv_heads, count, d);
    gpu::GatherArgs args;
    args.dtype = DType::f16;
    args.sequences = 1;
    args.kv_heads = kv_heads;
    args.head_dim = d;
    args.k_source = {layer.k.device_data(), cache};
    args.v_source = {layer.v.device_data(), cache};
    args.indices = d_idx.as<std::int32_t>();
    args.index_stride = count;
    args.counts = d_counts.as<std::int32_t>();
    args.max_count = count;
    args.k_destination = {k_out.data(), dst};
    args.v_destination = {v_out.data(), dst};
    args.blocks_per_multiprocessor = int(state.range(0));
    const double pcie = pinned_h2d_GBps();
    // More warm-up than the on-GPU kernels: the first passes over freshly mapped host pages run slow.
    const double ms = timer.median_ms([&] { gpu::gather_rows(args, timer.stream()); }, 20, 10);
    const double rate = 2.0 * out_bytes / (ms * 1e-3) / kGB;
    state.counters["GBps"] = rate;
    state.counters["pinned_h2d_GBps"] = pcie;
    state.counters["fraction_of_h2d"] = rate / pcie;
    state.counters["bytes"] = 2.0 * out_bytes;
    return ms;
  });
}
BENCHMARK(BM_GpuGather)
    ->ArgNames({"blocks_per_sm"})
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dso
