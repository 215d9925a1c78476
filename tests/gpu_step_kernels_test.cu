// The engine's bookkeeping kernels against their CPU references on fresh
// random inputs: several seeds, awkward sizes (1, primes, just past a block of
// 256 threads, past the 1024 blocks a grid-stride loop is given), strided and
// padded layouts, and outputs that start out random, never zero, so a
// kernel that leaves them alone fails as surely as one that writes wrong values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/step_counts.h"
#include "cpu/window_ring.h"
#include "gpu/advance_lengths.h"
#include "gpu/current_token.h"
#include "gpu/fetch_counts.h"
#include "gpu/window_assembly.h"
#include "gpu/window_ring.h"
#include "support/gpu_test_util.h"

namespace dso::test {
namespace {

constexpr int kSeeds = 3;

std::vector<std::int32_t> random_ints(std::size_t n, std::int32_t below, std::mt19937_64& rng) {
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = std::int32_t(rng() % std::uint64_t(below));
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST(GpuStepKernels, AdvanceLengthsMatchesTheReference) {
  DSO_SKIP_WITHOUT_GPU();
  for (int sequences : {1, 7, 257, 300007})
    for (int seed = 0; seed < kSeeds; ++seed) {
      SCOPED_TRACE("sequences=" + std::to_string(sequences) + " seed=" + std::to_string(seed));
      std::mt19937_64 rng(seed_for(seed));
      std::vector<std::int32_t> lengths = random_ints(std::size_t(sequences), 1 << 20, rng);
      const int count = 1 + int(rng() % 13);
      DeviceArray<std::int32_t> d_lengths(lengths);
      gpu::advance_lengths({d_lengths.data(), sequences, count}, nullptr);
      cpu::advance_lengths(lengths, count);
      EXPECT_EQ(d_lengths.download(), lengths);
    }
}

TEST(GpuStepKernels, CurrentTokenMatchesTheReference) {
  DSO_SKIP_WITHOUT_GPU();
  struct Case {
    int sequences, kv_heads;
    std::int64_t stride;
  };
  for (const Case c : {Case{1, 1, 1}, Case{3, 5, 13}, Case{257, 1, 2}, Case{1031, 300, 3}})
    for (int seed = 0; seed < kSeeds; ++seed) {
      SCOPED_TRACE("sequences=" + std::to_string(c.sequences) + " kv_heads=" + std::to_string(c.kv_heads) +
                   " stride=" + std::to_string(c.stride) + " seed=" + std::to_string(seed));
      std::mt19937_64 rng(seed_for(seed));
      const std::size_t heads = std::size_t(c.sequences) * c.kv_heads;
      std::vector<std::int32_t> indices = random_ints(heads * c.stride, 1 << 30, rng);
      std::vector<std::int32_t> counts = random_ints(heads, std::int32_t(c.stride), rng);  // room for one more
      const std::vector<std::int32_t> lengths = random_ints(std::size_t(c.sequences), 1 << 30, rng);
      DeviceArray<std::int32_t> d_indices(indices), d_counts(counts), d_lengths(lengths);
      gpu::append_current_token(
          {d_indices.data(), c.stride, d_counts.data(), d_lengths.data(), c.sequences, c.kv_heads}, nullptr);
      cpu::append_current_token(indices.data(), c.stride, counts.data(), lengths.data(), c.sequences, c.kv_heads);
      EXPECT_EQ(d_indices.download(), indices);
      EXPECT_EQ(d_counts.download(), counts);
    }
}

TEST(GpuStepKernels, FetchCountsMatchTheReference) {
  DSO_SKIP_WITHOUT_GPU();
  struct Case {
    int sequences, kv_heads;
    std::int64_t sink, recent;
  };
  for (const Case c : {Case{1, 1, 0, 0}, Case{3, 5, 4, 16}, Case{257, 1, 1, 1}, Case{1031, 300, 7, 61}})
    for (int seed = 0; seed < kSeeds; ++seed) {
      SCOPED_TRACE("sequences=" + std::to_string(c.sequences) + " kv_heads=" + std::to_string(c.kv_heads) + " sink=" +
                   std::to_string(c.sink) + " recent=" + std::to_string(c.recent) + " seed=" + std::to_string(seed));
      std::mt19937_64 rng(seed_for(seed));
      const std::size_t heads = std::size_t(c.sequences) * c.kv_heads;
      // Lengths from 0 up, so the window is sometimes empty, sometimes all but the sink.
      const std::vector<std::int32_t> lengths = random_ints(std::size_t(c.sequences), 200, rng);
      std::vector<std::int32_t> selected(heads);
      for (std::size_t i = 0; i < heads; ++i)
        selected[i] =
            std::int32_t(std::min<std::int64_t>(lengths[i / c.kv_heads], c.sink + c.recent) + std::int64_t(rng() % 50));
      std::vector<std::int32_t> fetched = random_ints(heads, 1 << 30, rng);
      DeviceArray<std::int32_t> d_selected(selected), d_lengths(lengths), d_fetched(fetched);
      gpu::count_fetched(
          {d_selected.data(), d_lengths.data(), d_fetched.data(), c.sequences, c.kv_heads, c.sink, c.recent}, nullptr);
      cpu::count_fetched(selected.data(), lengths.data(), fetched.data(), c.sequences, c.kv_heads, c.sink, c.recent);
      EXPECT_EQ(d_fetched.download(), fetched);
    }
}

// Ring and slot rows are head_dim apart; heads carry `pad` elements of
// padding after their rows, so a kernel that ignores the strides, or writes
// past a head, changes elements the reference leaves alone.
struct Layout {
  int sequences, kv_heads, head_dim;
  std::int64_t rows, pad;
  gpu::RowStrides strides() const {
    const std::int64_t head = rows * head_dim + pad;
    return {kv_heads * head, head, head_dim};
  }
  std::size_t elements() const { return std::size_t(sequences) * std::size_t(strides().sequence); }
};

struct RingCase {
  int sequences, kv_heads, head_dim;
  std::int64_t size;
  int count;
};

std::string describe(const RingCase& c) {
  return "sequences=" + std::to_string(c.sequences) + " kv_heads=" + std::to_string(c.kv_heads) +
         " d=" + std::to_string(c.head_dim) + " size=" + std::to_string(c.size) + " count=" + std::to_string(c.count);
}

template <class T>
void check_ring_append(const RingCase& c, DType dtype, int seed) {
  SCOPED_TRACE(describe(c) + " dtype=" + std::string(dtype_name(dtype)) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed_for(seed));
  const Layout ring{c.sequences, c.kv_heads, c.head_dim, c.size, 3};
  // New tokens token-major, [sequence][token][kv_head][d], as the engine's inputs are.
  const gpu::RowStrides source{std::int64_t(c.count) * c.kv_heads * c.head_dim, c.head_dim,
                               std::int64_t(c.kv_heads) * c.head_dim};
  const std::size_t source_elements = std::size_t(c.sequences) * std::size_t(source.sequence);
  const std::vector<T> k_new = random_values<T>(source_elements, rng), v_new = random_values<T>(source_elements, rng);
  std::vector<T> ring_k = random_values<T>(ring.elements(), rng), ring_v = random_values<T>(ring.elements(), rng);
  const std::vector<std::int32_t> positions = random_ints(std::size_t(c.sequences), 100000, rng);

  DeviceArray<T> d_k_new(k_new), d_v_new(v_new), d_ring_k(ring_k), d_ring_v(ring_v);
  DeviceArray<std::int32_t> d_positions(positions);
  gpu::RingAppendArgs a;
  a.dtype = dtype;
  a.head_dim = c.head_dim;
  a.keys = {d_k_new.data(), source};
  a.values = {d_v_new.data(), source};
  a.sequences = c.sequences;
  a.kv_heads = c.kv_heads;
  a.count = c.count;
  a.positions = d_positions.data();
  a.ring = {{d_ring_k.data(), ring.strides()}, {d_ring_v.data(), ring.strides()}, c.size};
  gpu::append_to_ring(a, nullptr);

  for (int s = 0; s < c.sequences; ++s)
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::int64_t at = ring.strides().offset(s, h, 0), from = source.offset(s, h, 0);
      cpu::append_to_ring<T>({ring_k.data() + at, ring_v.data() + at, c.size, c.head_dim}, positions[s],
                             k_new.data() + from, v_new.data() + from, source.token, c.count);
    }
  EXPECT_TRUE(same_bits(d_ring_k.download(), ring_k)) << "ring keys differ";
  EXPECT_TRUE(same_bits(d_ring_v.download(), ring_v)) << "ring values differ";
}

const RingCase kRingCases[] = {
    {1, 1, 1, 1, 1},        // a ring of one row
    {1, 1, 129, 1, 1},      // 2 * 129 elements: just past one block of 256 threads
    {3, 2, 64, 17, 5},      // fewer tokens than rows
    {2, 5, 7, 13, 31},      // more tokens than rows: only the newest 13 stay
    {3, 5, 128, 129, 200},  // past 1024 blocks of 256: the grid-stride loop goes round
};

TEST(GpuStepKernels, RingAppendMatchesTheReference) {
  DSO_SKIP_WITHOUT_GPU();
  for (const RingCase& c : kRingCases)
    for (int seed = 0; seed < kSeeds; ++seed) {
      check_ring_append<Half>(c, DType::f16, seed);
      check_ring_append<BFloat16>(c, DType::bf16, seed);
    }
}

struct WindowCase {
  int sequences, kv_heads, head_dim;
  std::int64_t sink, recent, extra_rows;  // the ring holds recent + 1 + extra_rows
};

template <class T>
void check_window_assembly(const WindowCase& c, DType dtype, int seed) {
  SCOPED_TRACE("sequences=" + std::to_string(c.sequences) + " kv_heads=" + std::to_string(c.kv_heads) +
               " d=" + std::to_string(c.head_dim) + " sink=" + std::to_string(c.sink) +
               " recent=" + std::to_string(c.recent) + " extra=" + std::to_string(c.extra_rows) +
               " dtype=" + std::string(dtype_name(dtype)) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed_for(seed));
  const std::int64_t size = c.recent + 1 + c.extra_rows;
  const std::int32_t max_fetched = 9;
  const Layout ring{c.sequences, c.kv_heads, c.head_dim, size, 5};
  const Layout slot{c.sequences, c.kv_heads, c.head_dim, max_fetched + c.recent + 1 + 2, 3};
  const std::vector<T> ring_k = random_values<T>(ring.elements(), rng), ring_v = random_values<T>(ring.elements(), rng);
  std::vector<T> slot_k = random_values<T>(slot.elements(), rng), slot_v = random_values<T>(slot.elements(), rng);
  // Lengths include the step's token: from 1 (n = 0) to well past sink + recent.
  std::vector<std::int32_t> lengths = random_ints(std::size_t(c.sequences), std::int32_t(3 * size + c.sink), rng);
  for (auto& n : lengths) n += 1;
  lengths[0] = 1;
  const std::size_t heads = std::size_t(c.sequences) * c.kv_heads;
  const std::vector<std::int32_t> fetched = random_ints(heads, max_fetched + 1, rng);
  std::vector<std::int32_t> attended = random_ints(heads, 1 << 30, rng);

  DeviceArray<T> d_ring_k(ring_k), d_ring_v(ring_v), d_slot_k(slot_k), d_slot_v(slot_v);
  DeviceArray<std::int32_t> d_lengths(lengths), d_fetched(fetched), d_attended(attended);
  gpu::WindowAssemblyArgs a;
  a.dtype = dtype;
  a.head_dim = c.head_dim;
  a.sequences = c.sequences;
  a.kv_heads = c.kv_heads;
  a.ring = {{d_ring_k.data(), ring.strides()}, {d_ring_v.data(), ring.strides()}, size};
  a.lengths = d_lengths.data();
  a.sink = c.sink;
  a.recent = c.recent;
  a.fetched = d_fetched.data();
  a.slot_keys = {d_slot_k.data(), slot.strides()};
  a.slot_values = {d_slot_v.data(), slot.strides()};
  a.attended = d_attended.data();
  gpu::assemble_window(a, nullptr);

  for (int s = 0; s < c.sequences; ++s)
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::int64_t from = ring.strides().offset(s, h, 0), to = slot.strides().offset(s, h, 0);
      const std::size_t head = std::size_t(s) * c.kv_heads + h;
      attended[head] = std::int32_t(
          cpu::assemble_window<T>({ring_k.data() + from, ring_v.data() + from, size, c.head_dim}, lengths[s] - 1,
                                  c.sink, c.recent, fetched[head], slot_k.data() + to, slot_v.data() + to));
    }
  EXPECT_EQ(d_attended.download(), attended);
  EXPECT_TRUE(same_bits(d_slot_k.download(), slot_k)) << "slot keys differ";
  EXPECT_TRUE(same_bits(d_slot_v.download(), slot_v)) << "slot values differ";
}

const WindowCase kWindowCases[] = {
    {1, 1, 1, 0, 0, 0},                           // the step's token alone
    {1, 1, 129, 0, 0, 0},                         // 2 * 129 elements: just past one block
    {3, 2, 64, 4, 16, 0},   {5, 3, 7, 40, 6, 2},  // sink past most windows, a ring larger than the window
    {3, 5, 128, 2, 128, 0},                       // past 1024 blocks of 256
};

TEST(GpuStepKernels, WindowAssemblyMatchesTheReference) {
  DSO_SKIP_WITHOUT_GPU();
  for (const WindowCase& c : kWindowCases)
    for (int seed = 0; seed < kSeeds; ++seed) {
      check_window_assembly<Half>(c, DType::f16, seed);
      check_window_assembly<BFloat16>(c, DType::bf16, seed);
    }
}

}  // namespace
}  // namespace dso::test
