// dsoffload inspect-config FILE: what a channel config holds, as one JSON
// object on stdout, e.g.
//   {"layers":32,"projections":{"k_proj":[8,128],"q_proj":[32,128],"qk_proj":[32,128]}}
// with [heads, channels per head] for every projection the file carries.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "calibration/channel_config.h"
#include "cli/commands.h"

namespace dso::cli {

void add_inspect_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect-config", "Print the layers and per-projection shapes of a channel config");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Channel config (DoubleSparse/SGLang JSON format)")->required();
  cmd->callback([file] {
    const calibration::ChannelConfig config = calibration::load_channel_config(*file);
    nlohmann::ordered_json out;
    out["layers"] = config.layers;
    out["projections"] = nlohmann::ordered_json::object();
    for (const auto& [name, orders] : config.projections) out["projections"][name] = {orders.heads, orders.channels};
    std::cout << out.dump() << std::endl;
  });
}

}  // namespace dso::cli
