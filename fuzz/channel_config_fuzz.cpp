// Channel configs from arbitrary bytes: parsing ends in a config or a
// dso::Error. A config that parses must survive a round trip through the
// writer unchanged, and checking it against model shapes must end the same way.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "calibration/channel_config.h"
#include "core/error.h"

namespace {

bool same(const dso::calibration::ChannelConfig& a, const dso::calibration::ChannelConfig& b) {
  if (a.layers != b.layers || a.projections.size() != b.projections.size()) return false;
  for (const auto& [name, orders] : a.projections) {
    const auto it = b.projections.find(name);
    if (it == b.projections.end() || it->second.heads != orders.heads || it->second.channels != orders.channels ||
        it->second.index != orders.index)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dso::calibration;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ChannelConfig config;
  try {
    config = parse_channel_config(text, "fuzz input");
  } catch (const dso::Error&) {
    return 0;
  }
  // Not through try: the writer's output must always read back.
  if (!same(parse_channel_config(format_channel_config(config), "round trip"), config)) __builtin_trap();
  for (const dso::AttentionShape shape : {dso::AttentionShape{config.layers, 4, 2, 16},
                                          dso::AttentionShape{config.layers, 9, 3, 64}, dso::AttentionShape{1, 1, 1, 2}}) {
    try {
      validate_channel_config(config, shape);
    } catch (const dso::Error&) {
    }
  }
  return 0;
}
