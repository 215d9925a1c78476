// dsoffload inspect-config FILE: what a channel config holds, as one JSON
// object on stdout, e.g.
//   {"layers":32,"projections":{"k_proj":[8,128],"q_proj":[32,128],"qk_proj":[32,128]}}
// with [heads, channels per head] for every projection the file carries.
// With --shape, fails unless the config fits that model shape.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "calibration/channel_config.h"
#include "cli/commands.h"
#include "cli/shape_names.h"
#include "core/output_file.h"

namespace dso::cli {

void add_inspect_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect-config", "Print the layers and per-projection shapes of a channel config");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Channel config (DoubleSparse/SGLang JSON format)")->required();
  auto shape = std::make_shared<std::string>();
  cmd->add_option("--shape", *shape,
                  "also check that the config fits this model shape (a name as for bench, or e.g. L4-Hq8-Hkv2-d64)");
  cmd->callback([file, shape] {
    const calibration::ChannelConfig config = calibration::load_channel_config(*file);
    if (!shape->empty()) calibration::validate_channel_config(config, parse_shape(*shape).shape);
    nlohmann::ordered_json out;
    out["layers"] = config.layers;
    out["projections"] = nlohmann::ordered_json::object();
    for (const auto& [name, orders] : config.projections) out["projections"][name] = {orders.heads, orders.channels};
    std::printf("%s\n", out.dump().c_str());
    flush_stdout();
  });
}

}  // namespace dso::cli
