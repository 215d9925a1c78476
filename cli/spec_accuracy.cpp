// `dsoffload spec-accuracy`: how well ds_offload's speculative query selects
// (model/speculative_selection.h): one JSON object on stdout with the
// per-layer overlap of the speculative top-k with the exact-query top-k and
// the teacher-forced greedy agreement of ds_offload with ds_offload_sync; a
// table of the same on stderr.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/bench_options.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "model/speculative_selection.h"

namespace dso::cli {

namespace {

struct SpecAccuracyCommand {
  ModelOptions model;
  std::string text;
  std::int64_t context = 1024;
  std::int64_t steps = 128;
};

double ratio(const Overlap& o) { return o.wanted > 0 ? double(o.found) / double(o.wanted) : 0.0; }

void run_spec_accuracy(const SpecAccuracyCommand& o) {
  require(o.context >= 2, "--context must be at least 2, got ", o.context);
  require(o.steps >= 1 && o.steps < o.context, "--steps must be in [1, ", o.context - 1, "], got ", o.steps);
  // Read before the model loads, so that a bad text is refused at once.
  const std::string text = read_text_file(o.text);
  const LoadedModel model = load_model(o.model);
  const std::vector<std::int32_t> all = model.encode(text, false);
  require(std::int64_t(all.size()) >= o.context, "the text '", o.text, "' has ", all.size(),
          " tokens, fewer than --context ", o.context);
  const std::span<const std::int32_t> window = std::span(all).first(std::size_t(o.context));
  const DecoderOptions options = decoder_options(o.model, model, Policy::ds_offload, 1, o.context);
  const SpeculativeAccuracy acc = measure_speculative_accuracy(*model.weights, options, window, o.steps);

  nlohmann::ordered_json j = run_fields(o.model, model, options, o.context);
  j.erase("policy");
  j["policies"] = {"ds_offload", "ds_offload_sync"};
  j["text"] = o.text;
  j["context"] = o.context;
  j["prefill"] = o.context - o.steps;
  j["steps"] = acc.steps;
  j["k_fraction"] = options.engine.k_fraction > 0 ? nlohmann::ordered_json(options.engine.k_fraction)
                                                  : nlohmann::ordered_json(nullptr);
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  Overlap total;
  for (const Overlap& l : acc.per_layer) {
    layers.push_back(l.wanted > 0 ? nlohmann::ordered_json(ratio(l)) : nlohmann::ordered_json(nullptr));
    total.found += l.found;
    total.wanted += l.wanted;
  }
  j["layer_overlap"] = layers;
  j["mean_overlap"] = ratio(total);
  j["greedy_agreements"] = acc.greedy_agreements;
  j["agreement_rate"] = double(acc.greedy_agreements) / double(acc.steps);
  std::printf("%s\n", j.dump().c_str());

  std::fprintf(stderr, "layer  overlap of the speculative top-k with the exact top-k\n");
  for (std::size_t l = 0; l < acc.per_layer.size(); ++l) {
    if (acc.per_layer[l].wanted > 0)
      std::fprintf(stderr, "%5zu  %.4f\n", l, ratio(acc.per_layer[l]));
    else
      std::fprintf(stderr, "%5zu  (selects with its true query)\n", l);
  }
  std::fprintf(stderr, " mean  %.4f\ngreedy agreement ds_offload vs ds_offload_sync: %lld/%lld = %.4f\n",
               ratio(total), static_cast<long long>(acc.greedy_agreements), static_cast<long long>(acc.steps),
               double(acc.greedy_agreements) / double(acc.steps));
}

}  // namespace

void add_spec_accuracy(CLI::App& app) {
  auto o = std::make_shared<SpecAccuracyCommand>();
  CLI::App* sub = app.add_subcommand(
      "spec-accuracy",
      "How well ds_offload's speculative query selects: prefills the first context - steps tokens of the text, "
      "decodes the rest teacher-forced, and compares per layer the speculative top-k with the exact-query top-k "
      "and the greedy tokens of ds_offload and ds_offload_sync (cpu backend).");
  o->model.add_to(*sub);
  sub->add_option("--text", o->text, "a text file; its first --context tokens are the window")->required();
  takes_token_count(add_count(*sub, "-c,--context", o->context, "tokens in the window: 1024, 1K"))->capture_default_str();
  add_count(*sub, "--steps", o->steps, "tokens decoded at the end of the window")->capture_default_str();
  sub->callback([o] { run_spec_accuracy(*o); });
}

}  // namespace dso::cli
