#pragma once
// Where a channel of a head sits in the weights. Hugging Face Llama checkpoints
// rotate channel c with channel c + d/2 (rotate_half), and channel configs
// number channels that way. llama.cpp's GGUF converter permutes each head's
// Q/K rows so that rotation pairs are adjacent, rows 2i and 2i+1:
//   HF channel i (i < d/2)  <->  GGUF row 2i
//   HF channel i + d/2      <->  GGUF row 2i + 1
// A model loaded from GGUF must renumber its label channels this way.
#include "core/label_channels.h"

namespace dso::calibration {

enum class HeadLayout { hugging_face, gguf };

int hf_channel_to_gguf_row(int channel, int head_dim);
int gguf_row_to_hf_channel(int row, int head_dim);

// Label channels chosen in Hugging Face numbering, renumbered for weights in `layout`.
LabelChannels in_layout(LabelChannels channels, int head_dim, HeadLayout layout);

}  // namespace dso::calibration
