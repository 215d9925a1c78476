// `dsoffload perplexity`: perplexity of a text file under each policy, one
// JSON object per line and policy on stdout (model/perplexity.h says how
// windows are cut and scored), a progress bar on stderr.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/bench_options.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/finite_outputs.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "core/output_file.h"
#include "model/decoder.h"
#include "model/perplexity.h"

namespace dso::cli {

namespace {

struct PerplexityCommand {
  ModelOptions model;
  std::string text;
  std::vector<std::string> policies{"dense_gpu"};
  std::int64_t context = 0;
  std::int64_t prefill = 0;
  std::int64_t max_windows = 0;
  int batch = 1;
};

using Clock = std::chrono::steady_clock;

std::string progress_detail(const PerplexityResult& r, std::int64_t windows, std::int64_t tokens_planned) {
  char text[160];
  std::snprintf(text, sizeof text, "window %lld/%lld  %lld/%lld tokens  ppl %.3f",
                static_cast<long long>(std::min(r.windows + 1, windows)), static_cast<long long>(windows),
                static_cast<long long>(r.tokens_scored), static_cast<long long>(tokens_planned), r.perplexity());
  return text;
}

void run_perplexity(const PerplexityCommand& c) {
  require(c.batch >= 1, "--batch must be at least 1, got ", c.batch);
  // Read before the model loads, so that a bad text is refused at once.
  const std::string text = read_text_file(c.text);
  const LoadedModel model = load_model(c.model);
  const std::vector<std::int32_t> tokens = model.encode(text, false);
  require(tokens.size() >= 2, "the text '", c.text, "' holds ", tokens.size(), " tokens; perplexity needs 2");
  const std::int64_t context = std::min<std::int64_t>(c.context, std::int64_t(tokens.size()));

  // Every policy's engine is checked before any runs, so a run that does not
  // fit is refused whole.
  std::vector<DecoderOptions> runs;
  for (const std::string& name : c.policies) {
    runs.push_back(decoder_options(c.model, model, parse_policy(name), c.batch, context));
    Engine::check_fits(runs.back().engine);
  }
  for (const DecoderOptions& options : runs) {
    const auto start = Clock::now();
    const auto decoder = make_decoder(*model.weights, options);
    ProgressBar progress(std::string(policy_name(options.engine.policy)));
    const PerplexityOptions po{c.context, c.prefill, c.max_windows};
    const PerplexityResult r = perplexity(*decoder, tokens, po, [&](const PerplexityResult& so_far, std::int64_t windows) {
      const std::int64_t planned = windows * (context - 1 - c.prefill);
      progress.update(double(so_far.tokens_scored), double(planned), progress_detail(so_far, windows, planned));
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    require_finite_score(r, concat("policy ", policy_name(options.engine.policy)));

    nlohmann::ordered_json j = run_fields(c.model, model, options, context);
    j["perplexity"] = r.perplexity();
    j["nll_per_token"] = r.nll / double(r.tokens_scored);
    j["tokens_scored"] = r.tokens_scored;
    j["context"] = r.context;
    j["windows"] = r.windows;
    j["method"] = c.prefill == 0 ? "decode" : "prefill+decode";
    j["prefill"] = c.prefill;
    j["batch"] = c.batch;
    j["text_tokens"] = tokens.size();
    j["tokenizer"] = model.tokenizer ? "gguf" : "bytes";
    j["seconds"] = seconds;
    std::printf("%s\n", j.dump().c_str());
    flush_stdout();
  }
}

}  // namespace

void add_perplexity(CLI::App& app) {
  auto c = std::make_shared<PerplexityCommand>();
  CLI::App* sub = app.add_subcommand(
      "perplexity",
      "Perplexity of a text under each policy: windows of --context tokens, each token after the first --prefill "
      "ones decoded and scored by the policy's attention. One JSON object per line and policy on stdout.");
  c->model.add_to(*sub);
  sub->add_option("--text", c->text, "a text file")->required();
  takes_token_count(add_count(*sub, "-c,--context", c->context, "tokens per window: 2048, 2K"))->required();
  sub->add_option("--policy", c->policies,
                  "policies to run, repeatable or comma separated: dense_gpu, ds_gpu, flexgen, ds_offload, "
                  "ds_offload_sync")
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "--prefill", c->prefill,
            "leading tokens of each window fed by prefill and not scored (0: every position decoded)", std::int64_t(0))
      ->capture_default_str();
  add_count(*sub, "--batch", c->batch, "windows decoded together")->capture_default_str();
  add_count(*sub, "--max-windows", c->max_windows, "windows to score (0: every whole window)", std::int64_t(0))
      ->capture_default_str();
  sub->callback([c] { run_perplexity(*c); });
}

}  // namespace dso::cli
