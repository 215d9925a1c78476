#include "cpu/prefill_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "cpu/exp_nonpositive.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace dso::cpu {

namespace {

// A work item is one KV head and kQueryTile consecutive queries of the chunk,
// every query head of the group: group * kQueryTile rows of scores per key
// block, enough for the BLAS to run near its best, few enough that a chunk
// gives every thread several items.
constexpr std::int64_t kQueryTile = 32;
// Keys are scored kKeyBlock at a time: the scores of one block stay in cache
// between the two products, whatever the context.
constexpr std::int64_t kKeyBlock = 256;

// The running state of one work item, rows ordered [query][head of the group].
struct Tile {
  std::vector<float> q, scores, acc, max, sum;

  explicit Tile(std::int64_t rows, int d)
      : q(std::size_t(rows) * d),
        scores(std::size_t(rows) * kKeyBlock),
        acc(std::size_t(rows) * d),
        max(std::size_t(rows)),
        sum(std::size_t(rows)) {}
};

// Turns one block's scores into exp(score - running max), raising the
// maximum and rescaling the row's sum and output first where this block
// holds a larger score. Keys past a row's own position (last_key) weigh 0.
void softmax_block(float* s, std::int64_t keys, std::int64_t first_key, std::int64_t last_key, float& max,
                   float& sum, float* acc, int d) {
  const std::int64_t visible = std::clamp<std::int64_t>(last_key - first_key + 1, 0, keys);
  float block_max = -std::numeric_limits<float>::infinity();
  for (std::int64_t j = 0; j < visible; ++j) block_max = std::max(block_max, s[j]);
  if (block_max > max) {
    const float rescale = std::exp(max - block_max);  // 0 at the first block, whose max is -inf
    sum *= rescale;
    for (int c = 0; c < d; ++c) acc[c] *= rescale;
    max = block_max;
  }
  for (std::int64_t j = 0; j < visible; ++j) s[j] = exp_nonpositive(s[j] - max);
  for (std::int64_t j = 0; j < visible; ++j) sum += s[j];
  std::fill(s + visible, s + keys, 0.0f);
}

}  // namespace

void prefill_attention(const float* q, std::int64_t rows, const PrefillAttentionShape& shape, const float* keys,
                       const float* values, std::int64_t key_stride, std::int64_t first, float* out, int threads) {
  const int d = shape.head_dim, hq = shape.q_heads, hkv = shape.kv_heads;
  require(rows > 0 && first >= 0, "prefill attention: ", rows, " queries from position ", first);
  require(d > 0 && hkv > 0 && hq % hkv == 0, "prefill attention: ", hq, " query heads over ", hkv,
          " KV heads of ", d, " channels");
  require(key_stride >= first + rows, "prefill attention: ", first + rows, " keys do not fit a stride of ",
          key_stride);
  const int group = hq / hkv;
  const float scale = 1.0f / std::sqrt(float(d));
  const std::int64_t tiles = (rows + kQueryTile - 1) / kQueryTile;
  // The last tiles see the most keys: they go first, so that the cheap ones
  // fill the gaps at the end.
  parallel_for(tiles * hkv, threads, [&](std::int64_t item) {
    const std::int64_t tile = tiles - 1 - item / hkv;
    const int h = int(item % hkv);
    const std::int64_t t0 = tile * kQueryTile, n = std::min(kQueryTile, rows - t0), m = n * group;
    Tile w(m, d);
    for (std::int64_t t = 0; t < n; ++t)
      std::copy_n(q + ((t0 + t) * hq + std::int64_t(h) * group) * d, group * d, w.q.data() + t * group * d);
    std::fill(w.max.begin(), w.max.end(), -std::numeric_limits<float>::infinity());
    const float* k = keys + std::int64_t(h) * key_stride * d;
    const float* v = values + std::int64_t(h) * key_stride * d;
    const std::int64_t end = first + t0 + n;  // one past the tile's last position
    for (std::int64_t k0 = 0; k0 < end; k0 += kKeyBlock) {
      const std::int64_t kn = std::min(kKeyBlock, end - k0);
      gemm_nt(m, kn, d, scale, w.q.data(), d, k + k0 * d, d, 0.0f, w.scores.data(), kKeyBlock);
      for (std::int64_t r = 0; r < m; ++r)
        softmax_block(w.scores.data() + r * kKeyBlock, kn, k0, first + t0 + r / group, w.max[std::size_t(r)],
                      w.sum[std::size_t(r)], w.acc.data() + r * d, d);
      gemm_nn(m, d, kn, 1.0f, w.scores.data(), kKeyBlock, v + k0 * d, d, 1.0f, w.acc.data(), d);
    }
    for (std::int64_t t = 0; t < n; ++t)
      for (int g = 0; g < group; ++g) {
        const std::int64_t r = t * group + g;
        const float inv = 1.0f / w.sum[std::size_t(r)];
        float* o = out + ((t0 + t) * hq + std::int64_t(h) * group + g) * d;
        for (int c = 0; c < d; ++c) o[c] = w.acc[std::size_t(r * d + c)] * inv;
      }
  });
}

}  // namespace dso::cpu
