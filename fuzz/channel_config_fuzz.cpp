// Channel configs from arbitrary bytes: parsing ends in a config or a
// dso::Error. A config that parses must survive a round trip through the
// writer unchanged, and checking it against model shapes must end the same way.
// The limits (ChannelConfigLimits) only take away: under the snuggest ones a
// config can meet (its own size, the format's three levels) it parses the
// same or is refused for depth alone, and one byte less refuses it.
#include <cstddef>
#include <cstdint>
#include <string>
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
  bool accepted = true;
  try {
    config = parse_channel_config(text, "fuzz input");
  } catch (const dso::Error&) {
    accepted = false;
  }
  try {
    const ChannelConfig snug = parse_channel_config(text, "snug", {std::int64_t(size), 3});
    if (!accepted || !same(snug, config)) __builtin_trap();
  } catch (const dso::Error& e) {
    if (accepted && std::string_view(e.what()).find("nests deeper than 3 levels") == std::string::npos) __builtin_trap();
  }
  if (size > 0) {
    bool refused = false;
    try {
      parse_channel_config(text, "short", {std::int64_t(size) - 1, 16});
    } catch (const dso::Error& e) {
      refused = std::string_view(e.what()).find("bytes allowed") != std::string::npos;
    }
    if (!refused) __builtin_trap();
  }
  if (!accepted) return 0;
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
