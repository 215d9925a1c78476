#include "calibration/rope_layout.h"

#include "core/error.h"

namespace dso::calibration {

namespace {

void check(int index, int head_dim, const char* what) {
  require(head_dim > 0 && head_dim % 2 == 0, "head_dim ", head_dim, " must be positive and even for RoPE");
  require(index >= 0 && index < head_dim, what, " ", index, " is outside [0, ", head_dim, ")");
}

}  // namespace

int hf_channel_to_gguf_row(int channel, int head_dim) {
  check(channel, head_dim, "channel");
  const int half = head_dim / 2;
  return channel < half ? 2 * channel : 2 * (channel - half) + 1;
}

int gguf_row_to_hf_channel(int row, int head_dim) {
  check(row, head_dim, "GGUF row");
  return row / 2 + (row % 2) * (head_dim / 2);
}

LabelChannels in_layout(LabelChannels channels, int head_dim, HeadLayout layout) {
  if (layout == HeadLayout::gguf)
    for (int& c : channels.index) c = hf_channel_to_gguf_row(c, head_dim);
  return channels;
}

}  // namespace dso::calibration
