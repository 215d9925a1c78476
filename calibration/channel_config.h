#pragma once
// Channel configs in the JSON format DoubleSparse and SGLang read, so that
// their published configs load as they are:
//   {"model.layers.{i}.self_attn.{q,k,qk}_proj": [[c, c, ...], ...], ...}
// one list per head of channel indices sorted by descending importance
// (a full order of the head's channels, or a prefix of one). Indices refer to
// the Hugging Face head layout (calibration/rope_layout.h maps them to GGUF).
// Published files carry other projections too (v_proj, o_proj,
// mlp.down_proj); they are kept and checked for structure, never used.
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "calibration/statistic.h"
#include "core/shape.h"

namespace dso::calibration {

// The orders of one projection in every layer.
struct ProjectionOrders {
  int heads = 0;
  int channels = 0;        // listed per head: head_dim for a full order, fewer for a prefix
  std::vector<int> index;  // [layers][heads][channels], no repeats within a head

  std::span<const int> of(int layer, int head) const {
    return {index.data() + (std::size_t(layer) * heads + head) * channels, std::size_t(channels)};
  }
};

struct ChannelConfig {
  std::string source;  // the file it came from, for messages
  int layers = 0;
  // By projection name: the key's part after "model.layers.{i}.", without a
  // leading "self_attn." where one name follows it ("q_proj", "qk_proj",
  // "mlp.down_proj", "self_attn.rotary.inv_freq").
  std::map<std::string, ProjectionOrders> projections;

  bool has(Statistic s) const { return projections.count(std::string(projection_name(s))) != 0; }
  // Fails, naming what the config has instead, where the projection is absent.
  const ProjectionOrders& orders(Statistic s) const;
};

// What a channel config may be, checked before it is parsed deeply: the
// format nests three levels (object, heads, channels), and the largest
// published configs (every projection of a 70B model) are near 16 MB. An
// unbounded file would make its reading end in exhaustion of memory, or of
// the stack where a deep value is printed in a message.
struct ChannelConfigLimits {
  std::int64_t max_bytes = std::int64_t(64) << 20;
  int max_depth = 16;
};

// Structure checks only, since the model is not known here: an object whose
// model.layers.{i}.* keys cover layers 0..L-1 for every projection, each a
// list of heads of non-negative, non-repeating integer channel lists, of one
// head count and one list length per projection. Other keys are ignored.
ChannelConfig parse_channel_config(std::string_view json_text, std::string_view source,
                                   const ChannelConfigLimits& limits = {});
ChannelConfig load_channel_config(const std::filesystem::path& file, const ChannelConfigLimits& limits = {});

// Checks the q/k/qk projections present against a model: layer count, head
// count (q_heads for q and qk, kv_heads for k), indices below head_dim.
void validate_channel_config(const ChannelConfig& config, const AttentionShape& shape);

// The same format, layers in order; saved as core/output_file.h writes files.
std::string format_channel_config(const ChannelConfig& config);
void save_channel_config(const ChannelConfig& config, const std::filesystem::path& file);

}  // namespace dso::calibration
