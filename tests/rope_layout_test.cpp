// Channel configs number channels in the Hugging Face head layout; a GGUF model
// has its Q/K rows permuted by llama.cpp's converter. The mapping must select
// the same values from GGUF weights that the config meant in HF weights,
// before and after RoPE.
#include "calibration/rope_layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "cpu/labels.h"
#include "support/fill.h"
#include "support/rope_reference.h"

namespace dso {
namespace {

using calibration::HeadLayout;

// llama.cpp's convert_hf_to_gguf permutation of a [heads * d][cols] Q or K
// weight: reshape to (heads, 2, d/2, cols), swap axes 1 and 2, flatten back.
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int heads, int d, int cols) {
  const int half = d / 2;
  std::vector<float> out(w.size());
  // out viewed as (heads, d/2, 2, cols) holds w viewed as (heads, 2, d/2, cols) with axes 1, 2 swapped.
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j)
        for (int c = 0; c < cols; ++c)
          out[((std::size_t(h) * half + i) * 2 + j) * cols + c] = w[((std::size_t(h) * 2 + j) * half + i) * cols + c];
  return out;
}

std::vector<float> matvec(const std::vector<float>& w, const std::vector<float>& x, int rows, int cols) {
  std::vector<float> y(rows);
  for (int r = 0; r < rows; ++r) {
    float s = 0;
    for (int c = 0; c < cols; ++c) s += w[std::size_t(r) * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

TEST(RopeLayout, MappingIsABijectionAndItsOwnInverse) {
  for (int d : {2, 6, 64, 128}) {
    std::set<int> rows;
    for (int c = 0; c < d; ++c) {
      const int row = calibration::hf_channel_to_gguf_row(c, d);
      EXPECT_EQ(calibration::gguf_row_to_hf_channel(row, d), c);
      rows.insert(row);
    }
    EXPECT_EQ(rows.size(), std::size_t(d));
    EXPECT_EQ(*rows.rbegin(), d - 1);
  }
  EXPECT_THROW(calibration::hf_channel_to_gguf_row(64, 64), Error);
  EXPECT_THROW(calibration::gguf_row_to_hf_channel(-1, 64), Error);
}

TEST(RopeLayout, MappedChannelsSelectTheSameKeyValuesFromGgufWeights) {
  struct Case {
    int heads, d, hidden;
  };
  for (const Case shape : {Case{3, 64, 96}, Case{2, 128, 33}, Case{1, 6, 5}}) {
    for (std::uint64_t seed : {61u, 62u, 63u}) {
      SCOPED_TRACE(testing::Message() << "d " << shape.d << " seed " << seed);
      const int rows = shape.heads * shape.d;
      const std::vector<float> w_hf = test::random_tensor<float>(std::size_t(rows) * shape.hidden, seed);
      const std::vector<float> w_gguf = llama_cpp_permute(w_hf, shape.heads, shape.d, shape.hidden);
      const std::vector<float> x = test::random_tensor<float>(shape.hidden, seed + 1);
      std::vector<float> k_hf = matvec(w_hf, x, rows, shape.hidden);
      std::vector<float> k_gguf = matvec(w_gguf, x, rows, shape.hidden);

      // Random label channels in HF numbering, one set per head.
      std::mt19937_64 rng(seed + 2);
      const int r = std::max(1, shape.d / 16);
      LabelChannels hf{1, shape.heads, r, {}};
      for (int h = 0; h < shape.heads; ++h) {
        std::vector<int> c(shape.d);
        std::iota(c.begin(), c.end(), 0);
        std::shuffle(c.begin(), c.end(), rng);
        hf.index.insert(hf.index.end(), c.begin(), c.begin() + r);
      }
      const LabelChannels gguf = calibration::in_layout(hf, shape.d, HeadLayout::gguf);
      EXPECT_EQ(calibration::in_layout(hf, shape.d, HeadLayout::hugging_face).index, hf.index);

      for (int position : {0, 17, 100003}) {
        SCOPED_TRACE(testing::Message() << "position " << position);
        for (int h = 0; h < shape.heads; ++h) {
          float* head_hf = k_hf.data() + std::size_t(h) * shape.d;
          float* head_gguf = k_gguf.data() + std::size_t(h) * shape.d;
          if (position > 0) {  // position 0 checks the raw projections
            test::apply_rope(head_hf, shape.d, position, HeadLayout::hugging_face);
            test::apply_rope(head_gguf, shape.d, position, HeadLayout::gguf);
          }
          for (int c = 0; c < shape.d; ++c)
            ASSERT_EQ(head_gguf[calibration::hf_channel_to_gguf_row(c, shape.d)], head_hf[c]) << "channel " << c;
          std::vector<float> labels_hf(r), labels_gguf(r);
          cpu::gather_labels(head_hf, 1, shape.d, hf.of(0, h), labels_hf.data());
          cpu::gather_labels(head_gguf, 1, shape.d, gguf.of(0, h), labels_gguf.data());
          EXPECT_EQ(labels_gguf, labels_hf) << "head " << h;
          // Unmapped, the same indices read other values: the mapping matters.
          std::vector<float> unmapped(r);
          cpu::gather_labels(head_gguf, 1, shape.d, hf.of(0, h), unmapped.data());
          const auto chosen = hf.of(0, h);
          const bool moved = std::any_of(chosen.begin(), chosen.end(),
                                         [&](int c) { return calibration::hf_channel_to_gguf_row(c, shape.d) != c; });
          if (moved) EXPECT_NE(unmapped, labels_hf) << "head " << h;
        }
        // Undo the rotation for the next position's check.
        k_hf = matvec(w_hf, x, rows, shape.hidden);
        k_gguf = matvec(w_gguf, x, rows, shape.hidden);
      }
    }
  }
}

}  // namespace
}  // namespace dso
