#include "calibration/channel_config.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/input_file.h"
#include "core/printable.h"
#include "core/output_file.h"

namespace dso::calibration {

namespace {

using Json = nlohmann::json;
using HeadLists = std::vector<std::vector<int>>;

constexpr std::string_view layer_prefix = "model.layers.";
constexpr std::string_view attention_prefix = "self_attn.";

struct LayerKey {
  int layer;
  std::string projection;
};

// "model.layers.{i}.{rest}"; keys of any other form belong to other tools.
std::optional<LayerKey> parse_key(std::string_view key, std::string_view source) {
  if (!key.starts_with(layer_prefix)) return std::nullopt;
  std::string_view rest = key.substr(layer_prefix.size());
  const std::size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot + 1 == rest.size()) return std::nullopt;
  const std::string_view digits = rest.substr(0, dot);
  for (char ch : digits)
    if (ch < '0' || ch > '9') return std::nullopt;
  require(digits.size() <= 6, source, ": layer index of key ", key, " is too large");
  std::string_view projection = rest.substr(dot + 1);
  // Only a bare name loses its "self_attn.": key_of puts the prefix back on
  // bare names alone, so a dotted one must keep it to be written back as read.
  const std::string_view bare = projection.substr(std::min(projection.size(), attention_prefix.size()));
  if (projection.starts_with(attention_prefix) && bare.find('.') == std::string_view::npos) projection = bare;
  return LayerKey{std::stoi(std::string(digits)), std::string(projection)};
}

int parse_channel(const Json& entry, std::string_view key, std::size_t head, std::size_t position,
                  std::string_view source) {
  // A scalar is quoted; a list or object only named, since it may be huge.
  require(entry.is_number_integer(), source, ": ", key, " head ", head, " entry ", position, " is ",
          entry.is_array() ? std::string("a list") : entry.is_object() ? std::string("an object") : entry.dump(),
          ", not a channel index (a non-negative integer)");
  if (entry.is_number_unsigned()) {
    const auto value = entry.get<std::uint64_t>();
    require(value <= std::uint64_t(INT_MAX), source, ": ", key, " head ", head, " entry ", position, ": channel ",
            value, " is out of range");
    return int(value);
  }
  const auto value = entry.get<std::int64_t>();
  require(value >= 0 && value <= INT_MAX, source, ": ", key, " head ", head, " entry ", position, ": channel ", value,
          " is out of range");
  return int(value);
}

HeadLists parse_heads(const Json& value, std::string_view key, std::string_view source) {
  require(value.is_array() && !value.empty(), source, ": ", key,
          " must be a non-empty list of per-head channel lists, found ", value.type_name());
  HeadLists heads;
  heads.reserve(value.size());
  for (std::size_t h = 0; h < value.size(); ++h) {
    const Json& list = value[h];
    require(list.is_array() && !list.empty(), source, ": ", key, " head ", h,
            " must be a non-empty list of channel indices, found ", list.type_name());
    std::vector<int> channels;
    channels.reserve(list.size());
    std::map<int, std::size_t> first_seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const int c = parse_channel(list[i], key, h, i, source);
      const auto [it, fresh] = first_seen.emplace(c, i);
      require(fresh, source, ": ", key, " head ", h, ": channel ", c, " repeats (entries ", it->second, " and ", i,
              ")");
      channels.push_back(c);
    }
    heads.push_back(std::move(channels));
  }
  return heads;
}

std::string key_of(int layer, const std::string& projection) {
  // Projections without a module path are attention projections.
  const bool bare = projection.find('.') == std::string::npos;
  return concat(layer_prefix, layer, ".", bare ? attention_prefix : "", projection);
}

// Every projection must cover layers 0..layers-1 with one head count and one list length.
ProjectionOrders assemble(const std::string& projection, const std::map<int, HeadLists>& by_layer, int layers,
                          std::string_view source) {
  std::string missing;
  for (int l = 0; l < layers; ++l)
    if (!by_layer.count(l)) missing += (missing.empty() ? "" : ", ") + std::to_string(l);
  require(missing.empty(), source, ": ", projection, " lacks layers ", missing, " (the file has layers up to ",
          layers - 1, "): missing layers");
  ProjectionOrders out;
  for (int l = 0; l < layers; ++l) {
    const HeadLists& heads = by_layer.at(l);
    if (l == 0) {
      out.heads = int(heads.size());
      out.channels = int(heads[0].size());
      out.index.reserve(std::size_t(layers) * out.heads * out.channels);
    }
    require(int(heads.size()) == out.heads, source, ": ", key_of(l, projection), " has ", heads.size(),
            " heads, layer 0 has ", out.heads);
    for (std::size_t h = 0; h < heads.size(); ++h) {
      require(int(heads[h].size()) == out.channels, source, ": ", key_of(l, projection), " head ", h, " lists ",
              heads[h].size(), " channels, layer 0 head 0 lists ", out.channels);
      out.index.insert(out.index.end(), heads[h].begin(), heads[h].end());
    }
  }
  return out;
}

std::string projection_list(const ChannelConfig& config) {
  std::string names;
  for (const auto& [name, orders] : config.projections) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

const ProjectionOrders& ChannelConfig::orders(Statistic s) const {
  const auto it = projections.find(std::string(projection_name(s)));
  require(it != projections.end(), source, ": channel config has no ", projection_name(s), " lists for statistic ",
          statistic_name(s), " (it has ", projection_list(*this), ")");
  return it->second;
}

namespace {

// Memory held back while a config is parsed. Destroying nlohmann's DOM
// allocates (it moves a list's elements to a stack of its own), so where
// parsing exhausts memory, the unwinding that follows would end in
// std::terminate; the reserve is given back first, when an allocation fails.
class MemoryReserve {
 public:
  // The block is kept from one parse to the next (its pages are never
  // touched, so it costs address space only), and made again after use.
  MemoryReserve() {
    if (!block_) block_.reset(new char[kBytes]);
    previous_ = std::set_new_handler(give_back);
  }
  ~MemoryReserve() { std::set_new_handler(previous_); }
  MemoryReserve(const MemoryReserve&) = delete;
  MemoryReserve& operator=(const MemoryReserve&) = delete;

 private:
  static constexpr std::size_t kBytes = std::size_t(16) << 20;
  // Fails the allocation at once: what the block held is left for the unwinding.
  static void give_back() {
    block_.reset();
    throw std::bad_alloc();
  }
  static inline std::unique_ptr<char[]> block_;
  std::new_handler previous_ = nullptr;
};

// Longest list the format holds (the heads of a layer, the channels of a
// head, the keys of the file) is far below this; the bound keeps what the
// DOM's destruction allocates for one list small enough for the reserve.
constexpr std::size_t kMaxListLength = std::size_t(1) << 16;

ChannelConfig parse_within_memory(std::string_view json_text, std::string_view source,
                                  const ChannelConfigLimits& limits) {
  // Refused while parsing, at the first value past the depth or the list
  // length, so that no deep or long value is ever built.
  std::vector<std::size_t> lengths;  // of the lists open, outermost first
  const Json::parser_callback_t bound = [&](int depth, Json::parse_event_t event, Json&) {
    using Event = Json::parse_event_t;
    if (event == Event::object_start || event == Event::array_start) {
      if (depth >= limits.max_depth) fail(source, ": channel config nests deeper than ", limits.max_depth, " levels");
      lengths.push_back(0);
      return true;
    }
    if (event == Event::key) return true;
    if (event == Event::object_end || event == Event::array_end) lengths.pop_back();
    if (!lengths.empty() && ++lengths.back() > kMaxListLength)
      fail(source, ": channel config has a list or object of more than ", kMaxListLength, " entries");
    return true;
  };
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end(), bound);
  } catch (const Json::exception& e) {
    // Not only parse_error: a number past a double's range is an out_of_range.
    fail(source, ": channel config is not JSON: ", e.what());
  }
  require(root.is_object(), source, ": channel config must be a JSON object of projection lists, found ",
          root.type_name());

  std::map<std::string, std::map<int, HeadLists>> found;
  int layers = 0;
  for (const auto& [key, value] : root.items()) {
    const std::optional<LayerKey> parsed = parse_key(key, source);
    if (!parsed) continue;
    // Keys are quoted in every later message; a control character or a NUL there would reach the terminal or cut it.
    require(printable(key) == key, source, ": key ", in_quotes(key), " holds characters that are not printable text");
    auto& by_layer = found[parsed->projection];
    require(!by_layer.count(parsed->layer), source, ": layer ", parsed->layer, " of ", parsed->projection,
            " appears under two keys");
    by_layer.emplace(parsed->layer, parse_heads(value, key, source));
    layers = std::max(layers, parsed->layer + 1);
  }
  require(!found.empty(), source, ": channel config has no model.layers.{i}.* projection lists: missing layers");

  ChannelConfig config{std::string(source), layers, {}};
  for (const auto& [projection, by_layer] : found)
    config.projections.emplace(projection, assemble(projection, by_layer, layers, source));
  return config;
}

}  // namespace

ChannelConfig parse_channel_config(std::string_view json_text, std::string_view source,
                                   const ChannelConfigLimits& limits) {
  require(std::int64_t(json_text.size()) <= limits.max_bytes, source, ": channel config of ", json_text.size(),
          " bytes is larger than the ", limits.max_bytes, " bytes allowed");
  try {
    const MemoryReserve reserve;
    return parse_within_memory(json_text, source, limits);
  } catch (const std::bad_alloc&) {
    fail(source, ": not enough memory to read the channel config of ", json_text.size(), " bytes");
  }
}

ChannelConfig load_channel_config(const std::filesystem::path& file, const ChannelConfigLimits& limits) {
  const std::string text = read_regular_file(file.string(), concat("cannot read channel config ", file.string()),
                                             limits.max_bytes, "a channel config");
  return parse_channel_config(text, file.string(), limits);
}

void validate_channel_config(const ChannelConfig& config, const AttentionShape& shape) {
  shape.validate();
  require(config.layers == shape.layers, config.source, ": channel config has ", config.layers,
          " layers, the model has ", shape.layers);
  for (Statistic s : all_statistics) {
    if (!config.has(s)) continue;
    const ProjectionOrders& orders = config.orders(s);
    const int heads = heads_of(s, shape);
    require(orders.heads == heads, config.source, ": ", projection_name(s), " lists ", orders.heads,
            " heads per layer, the model has ", heads, s == Statistic::k ? " KV heads" : " query heads",
            ": head-count mismatch");
    require(orders.channels <= shape.head_dim, config.source, ": ", projection_name(s), " lists ", orders.channels,
            " channels per head, more than head_dim ", shape.head_dim);
    for (int l = 0; l < config.layers; ++l)
      for (int h = 0; h < heads; ++h)
        for (int c : orders.of(l, h))
          require(c < shape.head_dim, config.source, ": ", key_of(l, std::string(projection_name(s))), " head ", h,
                  ": channel ", c, " is out of range for head_dim ", shape.head_dim);
  }
}

std::string format_channel_config(const ChannelConfig& config) {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  for (int l = 0; l < config.layers; ++l)
    for (const auto& [projection, orders] : config.projections) {
      auto heads = nlohmann::ordered_json::array();
      for (int h = 0; h < orders.heads; ++h) {
        const std::span<const int> channels = orders.of(l, h);
        heads.push_back(std::vector<int>(channels.begin(), channels.end()));
      }
      root[key_of(l, projection)] = std::move(heads);
    }
  return root.dump();
}

void save_channel_config(const ChannelConfig& config, const std::filesystem::path& file) {
  OutputFile out(file.string(), "the channel config", OutputFile::Kind::document);
  out.write(format_channel_config(config) + '\n');
  out.commit();
}

}  // namespace dso::calibration
