// Channel config files: round trips, the rejection of every kind of broken
// file with a message that names the problem, and the turn from per-head
// orders into per-KV-head label channels.
#include "calibration/channel_config.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "calibration/channel_order.h"
#include "calibration/label_selection.h"
#include "support/planted_qk.h"

namespace dso {
namespace {

using calibration::ChannelConfig;
using calibration::ProjectionOrders;
using calibration::Statistic;
using nlohmann::json;

std::vector<int> shuffled_channels(int d, std::mt19937_64& rng) {
  std::vector<int> c(d);
  std::iota(c.begin(), c.end(), 0);
  std::shuffle(c.begin(), c.end(), rng);
  return c;
}

// A random config as DoubleSparse writes it: q/k/qk full orders plus extras.
json random_config_json(const AttentionShape& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  json root = json::object();
  const auto heads = [&](int n, int listed) {
    json out = json::array();
    for (int h = 0; h < n; ++h) {
      std::vector<int> c = shuffled_channels(s.head_dim, rng);
      c.resize(listed);
      out.push_back(c);
    }
    return out;
  };
  for (int l = 0; l < s.layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    root[prefix + "self_attn.q_proj"] = heads(s.q_heads, s.head_dim);
    root[prefix + "self_attn.k_proj"] = heads(s.kv_heads, s.head_dim);
    root[prefix + "self_attn.qk_proj"] = heads(s.q_heads, s.head_dim);
    root[prefix + "self_attn.v_proj"] = heads(s.kv_heads, s.head_dim);
    root[prefix + "mlp.down_proj"] = heads(s.q_heads, s.head_dim);
  }
  return root;
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("dso_" + std::to_string(::getpid()) + "_" + name);
}

void expect_same(const ChannelConfig& a, const ChannelConfig& b) {
  ASSERT_EQ(a.layers, b.layers);
  ASSERT_EQ(a.projections.size(), b.projections.size());
  for (const auto& [name, orders] : a.projections) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(b.projections.count(name));
    const ProjectionOrders& other = b.projections.at(name);
    EXPECT_EQ(orders.heads, other.heads);
    EXPECT_EQ(orders.channels, other.channels);
    EXPECT_EQ(orders.index, other.index);
  }
}

TEST(ChannelConfig, LoadsTheDoubleSparseFormatWithItsExtraKeys) {
  const AttentionShape s{3, 6, 2, 16};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    json root = random_config_json(s, seed);
    root["lm_head"] = "not a projection list";
    root["model.embed_tokens"] = json::array({1, 2});
    const ChannelConfig config = calibration::parse_channel_config(root.dump(), "test");
    calibration::validate_channel_config(config, s);
    EXPECT_EQ(config.layers, s.layers);
    ASSERT_EQ(config.projections.size(), 5u);
    EXPECT_EQ(config.projections.at("mlp.down_proj").heads, s.q_heads);
    EXPECT_EQ(config.projections.at("v_proj").heads, s.kv_heads);
    for (const char* name : {"q_proj", "k_proj", "qk_proj", "v_proj", "mlp.down_proj"}) {
      const ProjectionOrders& orders = config.projections.at(name);
      const std::string key_tail =
          std::string(name).find('.') == std::string::npos ? std::string("self_attn.") + name : name;
      for (int l = 0; l < s.layers; ++l)
        for (int h = 0; h < orders.heads; ++h) {
          const std::vector<int> want = root["model.layers." + std::to_string(l) + "." + key_tail][h];
          const auto got = orders.of(l, h);
          ASSERT_EQ(std::vector<int>(got.begin(), got.end()), want) << name << " layer " << l << " head " << h;
        }
    }
  }
}

TEST(ChannelConfig, WriteThenLoadGivesTheSameChannels) {
  const AttentionShape s{4, 6, 3, 64};
  for (std::uint64_t seed : {4u, 5u, 6u}) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    // From the project's own calibration, plus an extra and a prefix projection.
    const test::PlantedQK model(s, 2, 5.0f, seed);
    ChannelConfig written = calibration::config_from_statistics(test::calibrate(model, 40, 7, seed));
    const ChannelConfig extra = calibration::parse_channel_config(random_config_json(s, seed).dump(), "extra");
    written.projections.emplace("mlp.down_proj", extra.projections.at("mlp.down_proj"));
    ProjectionOrders prefix{s.kv_heads, 5, {}};
    for (int l = 0; l < s.layers; ++l)
      for (int j = 0; j < s.kv_heads; ++j)
        for (int c : written.orders(Statistic::k).of(l, j).first(5)) prefix.index.push_back(c);
    written.projections.emplace("v_proj", prefix);

    const std::filesystem::path file = temp_file("roundtrip_" + std::to_string(seed) + ".json");
    calibration::save_channel_config(written, file);
    const ChannelConfig loaded = calibration::load_channel_config(file);
    std::filesystem::remove(file);
    EXPECT_EQ(loaded.source, file.string());
    expect_same(written, loaded);
    calibration::validate_channel_config(loaded, s);
    // The file is what DoubleSparse writes: attention projections under self_attn.
    const json root = json::parse(calibration::format_channel_config(written));
    EXPECT_TRUE(root.contains("model.layers.3.self_attn.qk_proj"));
    EXPECT_TRUE(root.contains("model.layers.0.mlp.down_proj"));
    EXPECT_EQ(root.size(), std::size_t(s.layers) * 5);
  }
}

struct Rejection {
  const char* name;
  std::function<void(json&)> damage;  // applied to a valid config of the shape below
  const char* message;                // a substring the error must hold
};

const AttentionShape rejection_shape{3, 4, 2, 8};

void PrintTo(const Rejection& r, std::ostream* os) { *os << r.name; }

class ChannelConfigRejects : public ::testing::TestWithParam<Rejection> {};

TEST_P(ChannelConfigRejects, WithAMessageNamingTheProblem) {
  const Rejection& c = GetParam();
  json root = random_config_json(rejection_shape, 7);
  c.damage(root);
  try {
    const ChannelConfig config = calibration::parse_channel_config(root.dump(), "bad.json");
    calibration::validate_channel_config(config, rejection_shape);
    FAIL() << "accepted a config with " << c.name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
}

json& head_list(json& root, int layer, const char* projection, int head) {
  return root["model.layers." + std::to_string(layer) + ".self_attn." + projection][head];
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ChannelConfigRejects,
    ::testing::Values(
        Rejection{"missing middle layer", [](json& r) { r.erase("model.layers.1.self_attn.k_proj"); },
                  "k_proj lacks layers 1"},
        Rejection{"fewer layers than the model",
                  [](json& r) {
                    for (const char* p : {"q_proj", "k_proj", "qk_proj", "v_proj"})
                      r.erase(std::string("model.layers.2.self_attn.") + p);
                    r.erase("model.layers.2.mlp.down_proj");
                  },
                  "has 2 layers, the model has 3"},
        Rejection{"no layer keys",
                  [](json& r) {
                    r = json{{"lm_head", 1}};
                  },
                  "missing layers"},
        Rejection{"q heads",
                  [](json& r) {
                    for (int l = 0; l < 3; ++l) r["model.layers." + std::to_string(l) + ".self_attn.q_proj"].erase(0);
                  },
                  "q_proj lists 3 heads per layer, the model has 4 query heads"},
        Rejection{"qk heads",
                  [](json& r) {
                    for (int l = 0; l < 3; ++l)
                      r["model.layers." + std::to_string(l) + ".self_attn.qk_proj"].push_back(
                          json::array({0, 1, 2, 3, 4, 5, 6, 7}));
                  },
                  "qk_proj lists 5 heads per layer, the model has 4 query heads"},
        Rejection{"k heads",
                  [](json& r) {
                    for (int l = 0; l < 3; ++l)
                      r["model.layers." + std::to_string(l) + ".self_attn.k_proj"] =
                          json::array({json::array({0, 1, 2, 3, 4, 5, 6, 7})});
                  },
                  "k_proj lists 1 heads per layer, the model has 2 KV heads"},
        Rejection{"heads differ across layers", [](json& r) { r["model.layers.2.self_attn.qk_proj"].erase(3); },
                  "model.layers.2.self_attn.qk_proj has 3 heads, layer 0 has 4"},
        Rejection{"ragged head", [](json& r) { head_list(r, 1, "q_proj", 2).erase(7); },
                  "head 2 lists 7 channels, layer 0 head 0 lists 8"},
        Rejection{"index past head_dim", [](json& r) { head_list(r, 1, "qk_proj", 3)[4] = 8; },
                  "model.layers.1.self_attn.qk_proj head 3: channel 8 is out of range for head_dim 8"},
        Rejection{"negative index", [](json& r) { head_list(r, 0, "k_proj", 1)[2] = -1; },
                  "head 1 entry 2: channel -1 is out of range"},
        Rejection{"huge index", [](json& r) { head_list(r, 0, "k_proj", 1)[2] = 1ull << 40; }, "is out of range"},
        Rejection{"repeated index", [](json& r) { head_list(r, 2, "q_proj", 0)[5] = head_list(r, 2, "q_proj", 0)[1]; },
                  "repeats (entries 1 and 5)"},
        Rejection{"float index", [](json& r) { head_list(r, 0, "q_proj", 0)[0] = 1.5; },
                  "entry 0 is 1.5, not a channel index"},
        Rejection{"string index", [](json& r) { head_list(r, 0, "q_proj", 0)[0] = "3"; }, "not a channel index"},
        Rejection{"projection not a list", [](json& r) { r["model.layers.0.self_attn.q_proj"] = "x"; },
                  "model.layers.0.self_attn.q_proj must be a non-empty list of per-head channel lists, found string"},
        Rejection{"head not a list", [](json& r) { head_list(r, 0, "q_proj", 1) = 7; },
                  "head 1 must be a non-empty list of channel indices, found number"},
        Rejection{"empty head", [](json& r) { head_list(r, 0, "q_proj", 1) = json::array(); },
                  "head 1 must be a non-empty list"},
        Rejection{"not an object",
                  [](json& r) {
                    r = json::array({1, 2});
                  },
                  "must be a JSON object"},
        Rejection{"extra projection broken", [](json& r) { r.erase("model.layers.0.self_attn.v_proj"); },
                  "v_proj lacks layers 0"}),
    [](const auto& info) {
      std::string name = info.param.name;
      std::replace(name.begin(), name.end(), ' ', '_');
      return name;
    });

TEST(ChannelConfig, RejectsTextThatIsNotJsonAndFilesThatCannotBeRead) {
  try {
    calibration::parse_channel_config("{\"model.layers.0.self_attn.q_proj\": [[0, 1]", "cut.json");
    FAIL() << "accepted truncated JSON";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.json: channel config is not JSON"), std::string::npos) << e.what();
  }
  const std::filesystem::path missing = temp_file("does_not_exist.json");
  try {
    calibration::load_channel_config(missing);
    FAIL() << "loaded a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read channel config " + missing.string()), std::string::npos)
        << e.what();
  }
}

// Found by fuzz/channel_config_fuzz.cpp: a projection whose name, after the
// "self_attn." the reader takes off, still held a dot was written back
// without that prefix, so the file read back as another projection.
TEST(ChannelConfig, WriteThenReadKeepsProjectionNamesWithDots) {
  const std::string texts[] = {
      "{\"model.layers.0.self_attn.self_attn.q_projttn\xd2\x85_proj\": [[0, 1], [1, 0]], "
      "\"model,layers.1.selroj\": [[0, 1]]}",  // the fuzzer's input
      R"({"model.layers.0.self_attn.rotary.inv_freq": [[2, 0, 1]], "model.layers.0.mlp.down_proj": [[4]],
          "model.layers.0.self_attn.q_proj": [[1, 0]], "model.layers.0.k_proj": [[0, 1]]})",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    const ChannelConfig config = calibration::parse_channel_config(text, "dots.json");
    const ChannelConfig again = calibration::parse_channel_config(calibration::format_channel_config(config), "again");
    expect_same(config, again);
  }
  const ChannelConfig mixed = calibration::parse_channel_config(texts[1], "dots.json");
  for (const char* name : {"self_attn.rotary.inv_freq", "mlp.down_proj", "q_proj", "k_proj"})
    EXPECT_TRUE(mixed.projections.count(name)) << name;
}

// Found by fuzz/channel_config_fuzz.cpp: a number past the range of a double
// made the JSON parser throw an exception of another family than parse
// errors, which escaped the reader and reached the tool as an internal error.
TEST(ChannelConfig, RejectsNumbersJsonCannotHoldAsNotJson) {
  const std::string texts[] = {
      R"({"model.], [0, 1, 2, 3_proj": [[-1, 2.5, 4294e2147483648444.la:[y[re.:s.x": 1})",  // the fuzzer's input
      R"({"model.layers.0.self_attn.q_proj": [[1e400]]})",
      R"({"model.layers.0.self_attn.q_proj": [[0, -1e999]]})",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    try {
      calibration::parse_channel_config(text, "overflow.json");
      FAIL() << "accepted a number JSON cannot hold";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("overflow.json: channel config is not JSON"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("number overflow"), std::string::npos) << e.what();
    }
  }
}

TEST(ChannelConfig, RefusesADirectoryByName) {
  const std::filesystem::path dir = temp_file("a_directory");
  std::filesystem::create_directories(dir);
  try {
    calibration::load_channel_config(dir);
    FAIL() << "read a directory as a channel config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read channel config " + dir.string() + ": it is a directory"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(ChannelConfig, LimitsAreCheckedBeforeDeepParsing) {
  const std::string config = R"({"model.layers.0.self_attn.k_proj": [[0, 1]]})";
  const auto refusal = [&](const std::string& text, const calibration::ChannelConfigLimits& limits) {
    try {
      calibration::parse_channel_config(text, "limits.json", limits);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(refusal(config, {std::int64_t(config.size()), 3}), "") << "a config at its limits is refused";
  EXPECT_EQ(refusal(config, {std::int64_t(config.size()) - 1, 3}),
            "limits.json: channel config of " + std::to_string(config.size()) + " bytes is larger than the " +
                std::to_string(config.size() - 1) + " bytes allowed");
  EXPECT_EQ(refusal(config, {std::int64_t(config.size()), 2}), "limits.json: channel config nests deeper than 2 levels");
  std::string long_list = R"({"x": [0)";
  for (int i = 1; i <= 1 << 16; ++i) long_list += ",0";
  EXPECT_EQ(refusal(long_list + "]}", {}), "limits.json: channel config has a list or object of more than 65536 entries");
  // Deeper than any stack: refused at its 17th level, never built.
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  EXPECT_EQ(refusal(deep, {}), "limits.json: channel config nests deeper than 16 levels");
}

TEST(ChannelConfig, RefusesALayerKeyThatIsNotPrintableNamingItEscaped) {
  try {
    calibration::parse_channel_config(R"({"model.layers.0.self_attn.k\u0000\u001b[2J": [[0, 1]]})", "keys.json");
    FAIL() << "accepted a key with a NUL and an escape sequence";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "keys.json: key 'model.layers.0.self_attn.k\\x00\\x1b[2J' holds characters that are not printable text");
  }
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// Under a memory limit, a large config once ended in std::bad_alloc thrown
// while unwinding (std::terminate). In a child, whose address space is
// capped a little above what it uses; not under sanitizers, whose shadow
// memory does not fit such a cap.
TEST(ChannelConfig, ALargeConfigBeyondTheMemoryLimitIsAnError) {
  // 4000 lists of 2000 channels: each list within the bounds, the whole far past the cap.
  std::string text = "{";
  for (int k = 0; k < 4000; ++k) {
    text += (k ? ", \"x" : "\"x") + std::to_string(k) + "\": [1";
    for (int i = 1; i < 2000; ++i) text += ", 1";
    text += "]";
  }
  text += "}";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t cap = rlim_t(pages) * rlim_t(::sysconf(_SC_PAGESIZE)) + (rlim_t(64) << 20);
    const struct rlimit limit{cap, cap};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(10);
    try {
      calibration::parse_channel_config(text, "large.json");
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).find("large.json: not enough memory to read the channel config") == 0 ? 0 : 11);
    } catch (...) {
      ::_exit(12);
    }
    ::_exit(13);  // parsed within the cap: the test proves nothing
  }
  int raw = 0;
  ASSERT_EQ(::waitpid(child, &raw, 0), child);
  ASSERT_TRUE(WIFEXITED(raw)) << "ended by signal " << WTERMSIG(raw);
  EXPECT_EQ(WEXITSTATUS(raw), 0) << "10: no cap, 11: another error, 12: another exception, 13: no error";
}
#endif

// Naive rank aggregation: order the channels by the sum over the group of
// each channel's position in that head's list (absent: one past the end).
std::vector<int> reference_rank_order(const ProjectionOrders& orders, int layer, int first_head, int heads, int d) {
  std::vector<std::pair<long, int>> by_rank;
  for (int c = 0; c < d; ++c) {
    long sum = 0;
    for (int h = first_head; h < first_head + heads; ++h) {
      const auto list = orders.of(layer, h);
      sum += std::find(list.begin(), list.end(), c) - list.begin();
    }
    by_rank.emplace_back(sum, c);
  }
  std::sort(by_rank.begin(), by_rank.end());
  std::vector<int> out;
  for (const auto& [sum, c] : by_rank) out.push_back(c);
  return out;
}

TEST(LabelChannelsFromConfig, CombineTheGroupsOrdersByRankSum) {
  for (int group : {1, 3, 4}) {
    for (int listed : {16, 5}) {  // full orders and prefixes
      const AttentionShape s{2, 2 * group, 2, 16};
      for (std::uint64_t seed : {8u, 9u}) {
        SCOPED_TRACE(testing::Message() << "group " << group << " listed " << listed << " seed " << seed);
        json root = random_config_json(s, seed);
        for (auto& [key, value] : root.items())
          for (auto& head : value) head.erase(head.begin() + listed, head.end());
        const ChannelConfig config = calibration::parse_channel_config(root.dump(), "test");
        for (int r : {1, 3, listed}) {
          for (Statistic st : {Statistic::q, Statistic::qk, Statistic::k}) {
            const LabelChannels got = calibration::label_channels_from_config(config, s, st, r);
            const int rows = st == Statistic::k ? 1 : group;
            for (int l = 0; l < s.layers; ++l)
              for (int j = 0; j < s.kv_heads; ++j) {
                const std::vector<int> want = reference_rank_order(config.orders(st), l, j * rows, rows, s.head_dim);
                const auto sel = got.of(l, j);
                ASSERT_EQ(std::vector<int>(sel.begin(), sel.end()), std::vector<int>(want.begin(), want.begin() + r))
                    << calibration::statistic_name(st) << " r " << r << " layer " << l << " KV head " << j;
                if (rows == 1) {  // a head's own list, as is
                  const auto list = config.orders(st).of(l, j);
                  EXPECT_TRUE(std::equal(sel.begin(), sel.end(), list.begin()));
                }
              }
          }
        }
        if (listed < s.head_dim) {
          try {
            calibration::label_channels_from_config(config, s, Statistic::qk, listed + 1);
            FAIL() << "took more channels than a prefix lists";
          } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("fewer than r=" + std::to_string(listed + 1)), std::string::npos)
                << e.what();
          }
        }
      }
    }
  }
}

TEST(LabelChannelsFromConfig, NamesAMissingStatistic) {
  const AttentionShape s{2, 4, 2, 8};
  json root = random_config_json(s, 10);
  for (int l = 0; l < s.layers; ++l) root.erase("model.layers." + std::to_string(l) + ".self_attn.k_proj");
  const ChannelConfig config = calibration::parse_channel_config(root.dump(), "mistral.json");
  EXPECT_NO_THROW(calibration::label_channels_from_config(config, s, Statistic::qk, 2));
  try {
    calibration::label_channels_from_config(config, s, Statistic::k, 2);
    FAIL() << "used absent k_proj lists";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mistral.json: channel config has no k_proj lists"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dso
