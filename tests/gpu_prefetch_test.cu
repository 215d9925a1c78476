// The prefetcher alone, against the cpu reference of what it must fetch: for
// each (sequence, KV head), cpu::select_topk over cpu::score_labels, the
// selected tokens below the window (cpu::fetched_count) gathered in
// order. Inputs lie on a 1/8 grid so scores, and so selections, are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/step_counts.h"
#include "cpu/topk.h"
#include "gpu/memory.h"
#include "prefetch/prefetcher.h"
#include "support/gpu_test_util.h"

namespace dso::test {
namespace {

constexpr int kSequences = 2, kQHeads = 6, kKvHeads = 2, kDim = 64, kR = 4;
constexpr std::int64_t kCapacity = 500;
constexpr int kGroup = kQHeads / kKvHeads;

std::vector<Half> grid(std::size_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> steps(-24, 24);
  std::vector<Half> x(n);
  for (Half& e : x) e = from_float<Half>(float(steps(rng)) / 8.0f);
  return x;
}

// One layer: K/V in pinned host memory [sequence][kv_head][capacity][d], its
// labels on the GPU, and a query.
struct Layer {
  std::vector<Half> k, v, labels, q;
  std::vector<std::int32_t> channels;  // [kv_heads][r]
  gpu::PinnedBuffer host_k, host_v;
  DeviceArray<Half> device_labels{std::size_t(kSequences) * kKvHeads * kCapacity * kR};
  DeviceArray<std::int32_t> device_channels{std::size_t(kKvHeads) * kR};
  DeviceArray<Half> device_q{std::size_t(kSequences) * kQHeads * kDim};

  Layer(std::mt19937_64& rng, std::span<const std::int64_t> lengths)
      : k(grid(std::size_t(kSequences) * kKvHeads * kCapacity * kDim, rng)),
        v(grid(k.size(), rng)),
        labels(std::size_t(kSequences) * kKvHeads * kCapacity * kR),
        q(grid(std::size_t(kSequences) * kQHeads * kDim, rng)),
        host_k(k.size() * sizeof(Half)),
        host_v(v.size() * sizeof(Half)) {
    for (int h = 0; h < kKvHeads; ++h) {
      std::vector<std::int32_t> all(kDim);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      channels.insert(channels.end(), all.begin(), all.begin() + kR);
    }
    for (int s = 0; s < kSequences; ++s)
      for (int h = 0; h < kKvHeads; ++h)
        cpu::gather_labels(k.data() + head(s, h) * kCapacity * kDim, lengths[std::size_t(s)], kDim,
                           std::span<const int>(channels.data() + h * kR, kR),
                           labels.data() + head(s, h) * kCapacity * kR);
    std::copy(k.begin(), k.end(), host_k.as<Half>());
    std::copy(v.begin(), v.end(), host_v.as<Half>());
    device_labels.upload(labels);
    device_channels.upload(channels);
    device_q.upload(q);
  }

  static std::int64_t head(int s, int h) { return std::int64_t(s) * kKvHeads + h; }

  LayerSource source(const std::int32_t* lengths) const {
    const gpu::RowStrides kv = gpu::RowStrides::dense(kKvHeads, kCapacity, kDim);
    return {{host_k.device_data(), kv},
            {host_v.device_data(), kv},
            device_channels.data(),
            {device_labels.data(), gpu::RowStrides::dense(kKvHeads, kCapacity, kR)},
            lengths};
  }
};

struct Expected {
  std::vector<std::int32_t> indices;  // the selection, ascending
  std::int64_t fetched = 0;
};

Expected expected(const Layer& layer, int s, int h, std::int64_t n, const TokenBudget& b) {
  std::vector<float> scores(std::size_t(std::max<std::int64_t>(n, 1)));
  cpu::score_labels(layer.q.data() + (std::int64_t(s) * kQHeads + h * kGroup) * kDim, kGroup, kDim,
                    std::span<const int>(layer.channels.data() + h * kR, kR),
                    layer.labels.data() + Layer::head(s, h) * kCapacity * kR, n, scores.data());
  Expected e;
  e.indices.resize(std::size_t(std::max<std::int64_t>(n, 1)));
  e.indices.resize(std::size_t(cpu::select_topk(scores.data(), n, b, e.indices.data())));
  e.fetched = cpu::fetched_count(std::int64_t(e.indices.size()), n, b.sink, b.recent);
  return e;
}

void expect_slot(const FetchSlot& slot, const Layer& layer, std::span<const std::int64_t> lengths,
                 std::span<const TokenBudget> budgets) {
  const std::int64_t rows = slot.shape().rows;
  const std::size_t heads = std::size_t(kSequences) * kKvHeads;
  DSO_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<std::int32_t> indices(heads * rows), selected(heads), fetched(heads);
  std::vector<Half> keys(heads * rows * kDim), values(keys.size());
  DSO_CUDA_CHECK(cudaMemcpy(indices.data(), slot.indices(), indices.size() * 4, cudaMemcpyDeviceToHost));
  DSO_CUDA_CHECK(cudaMemcpy(selected.data(), slot.selected(), heads * 4, cudaMemcpyDeviceToHost));
  DSO_CUDA_CHECK(cudaMemcpy(fetched.data(), slot.fetched(), heads * 4, cudaMemcpyDeviceToHost));
  DSO_CUDA_CHECK(cudaMemcpy(keys.data(), slot.keys().data, keys.size() * 2, cudaMemcpyDeviceToHost));
  DSO_CUDA_CHECK(cudaMemcpy(values.data(), slot.values().data, values.size() * 2, cudaMemcpyDeviceToHost));
  for (int s = 0; s < kSequences; ++s)
    for (int h = 0; h < kKvHeads; ++h) {
      SCOPED_TRACE("sequence " + std::to_string(s) + " head " + std::to_string(h));
      const std::int64_t head = Layer::head(s, h);
      const Expected e = expected(layer, s, h, lengths[std::size_t(s)], budgets[std::size_t(s)]);
      ASSERT_EQ(selected[std::size_t(head)], std::int64_t(e.indices.size()));
      ASSERT_EQ(fetched[std::size_t(head)], e.fetched);
      for (std::size_t i = 0; i < e.indices.size(); ++i)
        ASSERT_EQ(indices[std::size_t(head * rows) + i], e.indices[i]) << "index " << i;
      for (std::int64_t i = 0; i < e.fetched; ++i)
        for (int c = 0; c < kDim; ++c) {
          const std::int64_t at = (head * kCapacity + e.indices[std::size_t(i)]) * kDim + c;
          ASSERT_EQ(keys[std::size_t((head * rows + i) * kDim + c)].bits, layer.k[std::size_t(at)].bits) << "row " << i;
          ASSERT_EQ(values[std::size_t((head * rows + i) * kDim + c)].bits, layer.v[std::size_t(at)].bits)
              << "row " << i;
        }
    }
}

// Two sequences of different lengths with k of their own (the selection runs
// per sequence), three layers through two slots, two fetches in flight at
// once, and the caller's query buffer overwritten right after each issue.
TEST(GpuPrefetcher, FetchesWhatTheCpuSelects) {
  DSO_SKIP_WITHOUT_GPU();
  const std::vector<std::int64_t> lengths{357, 130};
  const std::vector<TokenBudget> budgets{{22, 2, 5}, {8, 2, 5}};
  std::mt19937_64 rng(seed_for(41));
  std::vector<std::unique_ptr<Layer>> layers;
  for (int l = 0; l < 3; ++l) layers.push_back(std::make_unique<Layer>(rng, lengths));
  DeviceArray<std::int32_t> device_lengths(std::vector<std::int32_t>(lengths.begin(), lengths.end()));
  // The uploads ran on the legacy default stream, which the prefetcher's
  // non-blocking streams do not wait for.
  DSO_CUDA_CHECK(cudaDeviceSynchronize());

  const SelectionShape selection{DType::f16, kSequences, kQHeads, kKvHeads, kDim, kR, kCapacity};
  const SlotShape slot{DType::f16, kSequences, kKvHeads, kDim, selection_size(kCapacity, budgets[0]) + 1, true};
  PhaseEvents clock(false, 0);
  Prefetcher prefetcher(selection, slot, clock);
  gpu::Stream compute;
  std::int64_t max_fetched = 0;
  for (int s = 0; s < kSequences; ++s)
    max_fetched = std::max(max_fetched, selection_size(lengths[std::size_t(s)], budgets[std::size_t(s)]));

  const auto issue = [&](int l) {
    prefetcher.issue(l, layers[std::size_t(l)]->source(device_lengths.data()), layers[std::size_t(l)]->device_q.data(),
                     budgets, max_fetched, lengths, compute.get());
    DSO_CUDA_CHECK(cudaMemsetAsync(layers[std::size_t(l)]->device_q.data(), kPoisonByte,
                                   layers[std::size_t(l)]->device_q.size() * sizeof(Half), compute.get()));
  };
  const auto check = [&](int l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    ASSERT_TRUE(prefetcher.holds(l, lengths));
    expect_slot(prefetcher.acquire(l, compute.get()), *layers[std::size_t(l)], lengths, budgets);
    prefetcher.release(l, compute.get());
    layers[std::size_t(l)]->device_q.upload(layers[std::size_t(l)]->q);
    DSO_CUDA_CHECK(cudaDeviceSynchronize());
  };

  issue(0);
  check(0);
  issue(1);
  issue(2);  // slot 0 again, while slot 1 is still being filled
  check(1);
  check(2);
  EXPECT_FALSE(prefetcher.holds(0, lengths)) << "slot 0 now holds layer 2";
  EXPECT_FALSE(prefetcher.holds(2, std::vector<std::int64_t>{357, 131})) << "tagged with other lengths";
  issue(1);
  check(1);
}

}  // namespace
}  // namespace dso::test
