// GPU decode attention (dense, over gathered rows, and through an index list)
// against cpu::dense_attention and cpu::sparse_attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cpu/attention.h"
#include "gpu/decode_attention.h"
#include "support/gpu_test_util.h"

namespace dso {
namespace {

using test::DeviceArray;

enum class Rows { dense, gathered, indexed };

const char* name(Rows r) { return r == Rows::dense ? "dense" : r == Rows::gathered ? "gathered" : "indexed"; }

struct AttentionCase {
  Rows rows;
  int head_dim;
  int group;
  std::vector<std::int32_t> lengths;   // per sequence: cached tokens
  std::int64_t max_count = 0;          // sparse: bound on the rows attended per head
  std::int64_t sequence_stride = 0;    // 0: dense [sequence][kv_head][capacity][d]
};

template <class T>
void run_attention(const AttentionCase& c, std::uint64_t seed) {
  const int d = c.head_dim, kv_heads = 2, q_heads = kv_heads * c.group;
  const int sequences = int(c.lengths.size());
  SCOPED_TRACE(std::string(name(c.rows)) + " dtype=" + std::string(dtype_name(dtype_of<T>())) +
               " d=" + std::to_string(d) + " group=" + std::to_string(c.group) + " n=" +
               std::to_string(c.lengths[0]) + " max_count=" + std::to_string(c.max_count) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::int64_t max_len = *std::max_element(c.lengths.begin(), c.lengths.end());
  const std::int64_t heads = std::int64_t(sequences) * kv_heads;

  // What each head attends: its first `count` rows (dense, gathered) or the rows in its index list.
  std::vector<std::int32_t> counts(heads);
  const std::int64_t index_stride = c.max_count + 2;
  std::vector<std::int32_t> indices(c.rows == Rows::indexed ? heads * index_stride : 0, 0);
  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h) {
      const std::int64_t head = std::int64_t(s) * kv_heads + h;
      if (c.rows == Rows::dense) {
        counts[head] = c.lengths[s];
        continue;
      }
      const std::int64_t most = std::min<std::int64_t>(c.max_count, c.lengths[s]);
      counts[head] = std::int32_t(head == 0 ? most : head == 1 ? 0 : std::int64_t(rng() % (most + 1)));
      if (c.rows == Rows::indexed) {
        std::vector<std::int32_t> all(c.lengths[s]);
        std::iota(all.begin(), all.end(), 0);
        std::shuffle(all.begin(), all.end(), rng);
        std::sort(all.begin(), all.begin() + counts[head]);
        std::copy(all.begin(), all.begin() + counts[head], indices.begin() + head * index_stride);
      }
    }

  const std::int64_t rows_per_head = c.rows == Rows::gathered ? c.max_count : max_len + 5;
  const gpu::RowStrides strides{c.sequence_stride ? c.sequence_stride : kv_heads * rows_per_head * d,
                                rows_per_head * d, d};
  const std::int64_t region = kv_heads * rows_per_head * d;  // one sequence's rows
  const std::int64_t kv_elements = (sequences - 1) * strides.sequence + region;
  DeviceArray<T> d_k(kv_elements), d_v(kv_elements);
  std::vector<std::vector<T>> k_host, v_host;  // per sequence region
  for (int s = 0; s < sequences; ++s) {
    k_host.push_back(test::random_values<T>(region, rng));
    v_host.push_back(test::random_values<T>(region, rng));
    DSO_CUDA_CHECK(cudaMemcpy(d_k.data() + strides.offset(s, 0, 0), k_host[s].data(), region * sizeof(T),
                              cudaMemcpyHostToDevice));
    DSO_CUDA_CHECK(cudaMemcpy(d_v.data() + strides.offset(s, 0, 0), v_host[s].data(), region * sizeof(T),
                              cudaMemcpyHostToDevice));
  }
  // Larger queries make the softmax peaky, so a lost or doubled row shows.
  const float q_scale = seed % 2 ? 2.0f : 1.0f;
  const std::vector<T> q = test::random_values<T>(std::size_t(sequences) * q_heads * d, rng, q_scale);

  const std::int64_t max_tokens = c.rows == Rows::dense ? max_len : c.max_count;
  const gpu::DecodeAttentionPlan plan = gpu::plan_decode_attention(sequences, q_heads, kv_heads, d, max_tokens);
  DeviceArray<T> d_q(q), d_out(std::size_t(sequences) * q_heads * d);
  DeviceArray<float> d_out_f32(std::size_t(sequences) * q_heads * d);
  DeviceArray<std::int32_t> d_lengths(c.rows == Rows::dense ? c.lengths : counts);
  DeviceArray<std::int32_t> d_indices(std::max<std::size_t>(1, indices.size()));
  if (!indices.empty()) d_indices.upload(indices);
  DeviceArray<unsigned char> d_workspace(plan.workspace_bytes);
  d_out.poison();
  d_out_f32.poison();
  d_workspace.poison();

  gpu::DecodeAttentionArgs args;
  args.dtype = dtype_of<T>();
  args.q = d_q.data();
  args.k = {d_k.data(), strides};
  args.v = {d_v.data(), strides};
  args.lengths = d_lengths.data();
  args.length_stride_sequence = c.rows == Rows::dense ? 1 : kv_heads;
  args.length_stride_head = c.rows == Rows::dense ? 0 : 1;
  args.indices = c.rows == Rows::indexed ? d_indices.data() : nullptr;
  args.index_stride = index_stride;
  args.out = d_out.data();
  args.out_f32 = d_out_f32.data();
  args.workspace = d_workspace.data();
  args.workspace_bytes = plan.workspace_bytes;
  gpu::decode_attention(plan, args, nullptr);
  const std::vector<T> out = d_out.download();
  const std::vector<float> out_f32 = d_out_f32.download();

  const test::Tolerance f32_tol{1e-4, 1e-3};
  const test::Tolerance storage_tol = dtype_of<T>() == DType::f16 ? test::Tolerance{1e-3, 2e-3} : test::Tolerance{1e-3, 1e-2};
  std::vector<float> expected(std::size_t(c.group) * d);
  for (int s = 0; s < sequences; ++s)
    for (int h = 0; h < kv_heads; ++h) {
      const std::int64_t head = std::int64_t(s) * kv_heads + h;
      const T* qh = q.data() + (std::int64_t(s) * q_heads + std::int64_t(h) * c.group) * d;
      const T* keys = k_host[s].data() + h * rows_per_head * d;
      const T* values = v_host[s].data() + h * rows_per_head * d;
      if (c.rows == Rows::indexed)
        cpu::sparse_attention(qh, c.group, d, keys, values, indices.data() + head * index_stride, counts[head],
                              expected.data());
      else
        cpu::dense_attention(qh, c.group, d, keys, values, counts[head], expected.data());
      for (int g = 0; g < c.group; ++g)
        for (int e = 0; e < d; ++e) {
          const std::size_t o = (std::size_t(s) * q_heads + std::size_t(h) * c.group + g) * d + e;
          const float want = expected[std::size_t(g) * d + e];
          ASSERT_TRUE(f32_tol.accepts(out_f32[o], want))
              << "s" << s << " h" << h << " g" << g << " c" << e << " count " << counts[head] << ": " << out_f32[o]
              << " vs " << want;
          ASSERT_TRUE(storage_tol.accepts(to_float(out[o]), want))
              << "storage output s" << s << " h" << h << " g" << g << " c" << e << ": " << to_float(out[o]) << " vs "
              << want;
        }
    }
}

template <class T>
void run_shapes(Rows rows, int& seed) {
  for (int d : {64, 128})
    for (int group : {1, 3, 4, 8})
      for (const auto& [lengths, max_count] : std::vector<std::pair<std::vector<std::int32_t>, std::int64_t>>{
               {{1}, 1}, {{3, 2}, 3}, {{257, 130}, 100}, {{3001, 1}, 1500}, {{9000, 4099}, 4099}})
        run_attention<T>({rows, d, group, lengths, max_count}, test::seed_for(seed++));
}

TEST(GpuAttention, DenseMatchesCpu) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 0;
  run_shapes<Half>(Rows::dense, seed);
  run_shapes<BFloat16>(Rows::dense, seed);
}

TEST(GpuAttention, GatheredMatchesCpu) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 1000;
  run_shapes<Half>(Rows::gathered, seed);
  run_shapes<BFloat16>(Rows::gathered, seed);
}

TEST(GpuAttention, IndexedMatchesCpuSparse) {
  DSO_SKIP_WITHOUT_GPU();
  int seed = 2000;
  run_shapes<Half>(Rows::indexed, seed);
  run_shapes<BFloat16>(Rows::indexed, seed);
}

TEST(GpuAttention, LongContext) {
  DSO_SKIP_WITHOUT_GPU();
  run_attention<Half>({Rows::dense, 128, 1, {70001, 65536}}, test::seed_for(3000));
  run_attention<BFloat16>({Rows::indexed, 64, 4, {100003}, 100003 / 16}, test::seed_for(3001));
}

TEST(GpuAttention, SequencesBeyondTwoGiB) {
  DSO_SKIP_WITHOUT_GPU();
  // The second sequence's rows start 2^31 + 16 bytes into K and V.
  run_attention<Half>({Rows::dense, 128, 2, {1000, 777}, 0, (std::int64_t(1) << 30) + 8}, test::seed_for(4000));
}

TEST(GpuAttention, RejectsUnsupportedShapes) {
  DSO_SKIP_WITHOUT_GPU();
  EXPECT_THROW(gpu::plan_decode_attention(1, 32, 32, 96, 100), Error);
  EXPECT_THROW(gpu::plan_decode_attention(1, 36, 2, 128, 100), Error);
  EXPECT_THROW(gpu::plan_decode_attention(1, 30, 4, 128, 100), Error);
}

}  // namespace
}  // namespace dso
