// `dsoffload eval`: the accuracy of sparse decoding, many settings in one run
// over the same text windows (model/shared_prefix_perplexity.h: each window's
// prefix is prefilled once, densely, and its last --score-tokens tokens are
// decoded and scored under every setting). Settings: dense; ds_gpu with
// calibrated label channels for every token budget, channel count and
// statistic; the same with random channels, the control; ds_offload at the
// default setting; SparQ-style selection at the same budgets. One JSON object
// per line and setting on stdout (and --json), a Markdown table (--markdown).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibration/channel_config.h"
#include "calibration/label_selection.h"
#include "cli/bench_options.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/finite_outputs.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "cli/thread_option.h"
#include "cli/run_info.h"
#include "core/checked_math.h"
#include "core/error.h"
#include "core/output_file.h"
#include "model/shared_prefix_perplexity.h"

namespace dso::cli {

namespace {

using Json = nlohmann::ordered_json;
using calibration::Statistic;

struct EvalCommand {
  ModelOptions model;
  std::string text;
  std::int64_t context = 2048;
  std::int64_t windows = 4;
  std::int64_t score_tokens = 64;
  int batch = 0;
  std::vector<int> budgets{4, 8, 16, 32};
  std::vector<int> channel_divisors{4, 8, 16};
  std::vector<std::string> stats{"q", "k", "qk"};
  std::vector<std::string> families{"ds_gpu", "random", "ds_offload", "sparq"};
  std::uint64_t random_seed = 1;
  std::string json_out;
  std::string markdown_out;
};

// One decoding setting of the sweep.
struct Setting {
  std::string family;  // dense, ds_gpu, random, ds_offload, sparq
  Policy policy = Policy::dense_gpu;
  std::string labels;  // calibrated, random, per-step query; empty for dense
  std::optional<Statistic> stat;
  int k_divisor = 0;   // k = context / k_divisor
  int r_divisor = 0;   // r = head_dim / r_divisor
  DecoderOptions options;
};

struct Outcome {
  const Setting* setting;
  PerplexityResult result;
  double seconds;
};

constexpr const char* all_families = "ds_gpu, random, ds_offload, sparq";

int divided(std::int64_t total, int divisor, const char* what) {
  require(divisor >= 1, what, " divisor must be at least 1, got ", divisor);
  return int(std::max<std::int64_t>(1, total / divisor));
}

bool wants(const EvalCommand& c, const std::string& family) {
  return std::find(c.families.begin(), c.families.end(), family) != c.families.end();
}

std::vector<Setting> plan_settings(const EvalCommand& c, const LoadedModel& m, const DecoderOptions& dense) {
  for (const std::string& f : c.families)
    require(f == "ds_gpu" || f == "random" || f == "ds_offload" || f == "sparq", "unknown setting family '", f,
            "' (choose from ", all_families, ")");
  const AttentionShape shape = m.config().attention();
  std::optional<calibration::ChannelConfig> config;
  if (wants(c, "ds_gpu") || wants(c, "ds_offload")) {
    require(!c.model.channels.empty(), "the ds_gpu and ds_offload settings need a channel config: give --channels "
            "(from `dsoffload calibrate`) or leave them out of --families");
    config = calibration::load_channel_config(c.model.channels);
    calibration::validate_channel_config(*config, shape);
  }
  std::vector<Statistic> stats;
  for (const std::string& s : c.stats) stats.push_back(calibration::parse_statistic(s));

  const auto make = [&](std::string family, Policy policy, int k_div, int r_div) {
    Setting s;
    s.family = std::move(family);
    s.policy = policy;
    s.k_divisor = k_div;
    s.r_divisor = r_div;
    s.options = dense;
    EngineConfig& e = s.options.engine;
    e.policy = policy;
    e.budget = {divided(c.context, k_div, "budget"), c.model.sink, c.model.recent};
    e.k_fraction = 0;
    return s;
  };
  const auto r_of = [&](int r_div) { return divided(shape.head_dim, r_div, "channel"); };

  std::vector<Setting> out;
  for (int k_div : c.budgets)
    for (int r_div : c.channel_divisors) {
      if (wants(c, "ds_gpu"))
        for (Statistic stat : stats) {
          Setting s = make("ds_gpu", Policy::ds_gpu, k_div, r_div);
          s.labels = "calibrated";
          s.stat = stat;
          s.options.engine.channels = calibration::label_channels_from_config(*config, shape, stat, r_of(r_div));
          out.push_back(std::move(s));
        }
      if (wants(c, "random")) {
        Setting s = make("random", Policy::ds_gpu, k_div, r_div);
        s.labels = "random";
        s.options.engine.channels = calibration::random_label_channels(shape, r_of(r_div), c.random_seed);
        out.push_back(std::move(s));
      }
      if (wants(c, "sparq")) {
        Setting s = make("sparq", Policy::ds_gpu, k_div, r_div);
        s.labels = "per-step query";
        s.options.engine.selector = Selector::sparq;
        s.options.engine.sparq_r = r_of(r_div);
        out.push_back(std::move(s));
      }
    }
  if (wants(c, "ds_offload")) {
    // The default setting of the design: k = N/16, r = d/16, qk statistic.
    Setting s = make("ds_offload", Policy::ds_offload, 16, 16);
    s.labels = "calibrated";
    s.stat = Statistic::qk;
    s.options.engine.channels = calibration::label_channels_from_config(*config, shape, Statistic::qk, r_of(16));
    out.push_back(std::move(s));
  }
  return out;
}

std::string fraction(const char* of, int divisor) { return divisor > 0 ? of + ("/" + std::to_string(divisor)) : ""; }

Json setting_fields(const Setting& s, const LlamaConfig& config) {
  const EngineConfig& e = s.options.engine;
  Json j;
  j["setting"] = s.family;
  j["policy"] = policy_name(e.policy);
  j["selector"] = s.family == "dense" ? Json(nullptr) : Json(selector_name(e.selector));
  j["labels"] = s.labels.empty() ? Json(nullptr) : Json(s.labels);
  j["stat"] = s.stat ? Json(calibration::statistic_name(*s.stat)) : Json(nullptr);
  j["k"] = s.k_divisor > 0 ? Json(e.budget.k) : Json(nullptr);
  j["budget"] = s.k_divisor > 0 ? Json(fraction("N", s.k_divisor)) : Json(nullptr);
  j["r"] = s.r_divisor > 0 ? Json(divided(config.head_dim, s.r_divisor, "channel")) : Json(nullptr);
  j["channels"] = s.r_divisor > 0 ? Json(fraction("d", s.r_divisor)) : Json(nullptr);
  return j;
}

Json result_line(const Json& header, const Setting& s, const LlamaConfig& config, const PerplexityResult& r,
                 double dense_nll, double seconds) {
  Json j = header;
  const Json fields = setting_fields(s, config);
  for (const auto& [key, value] : fields.items()) j[key] = value;
  const double nll = r.nll / double(r.tokens_scored);
  j["perplexity"] = r.perplexity();
  j["nll_per_token"] = nll;
  j["perplexity_ratio_to_dense"] = std::exp(nll - dense_nll);
  j["tokens_scored"] = r.tokens_scored;
  j["seconds"] = seconds;
  return j;
}

std::string number(double x, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, x);
  return text;
}

// Rows: how labels are chosen; columns: token budgets; one table per r.
std::string markdown(const EvalCommand& c, const Json& header, const LlamaConfig& config, double dense_ppl,
                     const std::vector<Outcome>& outcomes) {
  std::string md = "# Perplexity under sparse decoding: " + header["model"].get<std::string>() + "\n\n";
  for (const char* key : {"date", "device", "backend", "version", "git_commit", "git_dirty", "build_type", "dtype", "text", "text_tokens", "context",
                          "windows", "score_tokens", "prefix_tokens", "tokens_scored_per_setting", "sink", "recent",
                          "random_seed", "channel_config", "method"})
    md += "- " + std::string(key) + ": " + (header[key].is_string() ? header[key].get<std::string>() : header[key].dump()) +
          "\n";
  md += "- command: `" + header["command"].get<std::string>() + "`\n\n";
  md += "Dense perplexity: **" + number(dense_ppl, 4) + "**. Cells: perplexity (ratio to dense).\n";
  const auto cell = [&](const Outcome& o) {
    return number(o.result.perplexity(), 4) + " (" + number(o.result.perplexity() / dense_ppl, 4) + ")";
  };
  for (int r_div : c.channel_divisors) {
    md += "\n## r = " + fraction("d", r_div) + " = " + std::to_string(divided(config.head_dim, r_div, "channel")) +
          " channels\n\n| labels |";
    for (int k_div : c.budgets) md += " k = " + fraction("N", k_div) + " |";
    md += "\n|---|";
    for (std::size_t i = 0; i < c.budgets.size(); ++i) md += "---|";
    md += "\n";
    std::vector<std::string> rows;
    for (const Outcome& o : outcomes) {
      const Setting& s = *o.setting;
      if (s.family == "ds_offload" || s.r_divisor != r_div) continue;
      const std::string row = s.family == "ds_gpu"   ? "calibrated " + std::string(calibration::statistic_name(*s.stat))
                              : s.family == "random" ? std::string("random (seed ") + std::to_string(c.random_seed) + ")"
                                                     : std::string("SparQ (top-r channels of each step's query)");
      if (std::find(rows.begin(), rows.end(), row) != rows.end()) continue;
      rows.push_back(row);
      md += "| " + row + " |";
      for (int k_div : c.budgets) {
        const auto it = std::find_if(outcomes.begin(), outcomes.end(), [&](const Outcome& other) {
          const Setting& t = *other.setting;
          return t.family == s.family && t.stat == s.stat && t.r_divisor == r_div && t.k_divisor == k_div;
        });
        md += " " + (it == outcomes.end() ? std::string("-") : cell(*it)) + " |";
      }
      md += "\n";
    }
  }
  for (const Outcome& o : outcomes)
    if (o.setting->family == "ds_offload")
      md += "\nds_offload (speculative selection, sync layer 0, calibrated qk, k = N/16, r = d/16): " + cell(o) + "\n";
  return md;
}

void run_eval(const EvalCommand& c) {
  require(c.windows >= 1, "--windows must be at least 1, got ", c.windows);
  const std::vector<std::string> inputs{c.model.model, c.model.channels, c.text};
  std::optional<OutputFile> json_file, markdown_file;
  if (!c.json_out.empty()) json_file.emplace(c.json_out, "the --json file", OutputFile::Kind::json_lines, inputs);
  if (!c.markdown_out.empty())
    markdown_file.emplace(c.markdown_out, "the --markdown file", OutputFile::Kind::document, inputs);
  if (json_file && markdown_file) OutputFile::check_apart(*json_file, *markdown_file);
  // Read before the model loads, so that a bad text is refused at once.
  const std::string text = read_text_file(c.text);
  const LoadedModel model = load_model(c.model);
  const std::vector<std::int32_t> tokens = model.encode(text, false);
  // The default batch is every window; more than an int holds could never fit a text anyway.
  const int all_windows = int(std::min<std::int64_t>(c.windows, std::numeric_limits<int>::max()));
  const WindowPlan plan{c.context, c.windows, c.score_tokens, c.batch > 0 ? c.batch : all_windows};
  require(plan.score_tokens >= 1 && plan.score_tokens < plan.context, "--score-tokens must be in [1, ",
          plan.context - 1, "], got ", plan.score_tokens);
  const std::int64_t needed = checked_product("--windows x --context", plan.windows, plan.context);
  require(needed <= std::int64_t(tokens.size()), "--windows ", plan.windows, " of --context ", plan.context, " need ",
          needed, " tokens; '", c.text, "' holds ", tokens.size());
  const int batch = int(std::min<std::int64_t>(plan.batch, plan.windows));
  const DecoderOptions dense = decoder_options(c.model, model, Policy::dense_gpu, batch, plan.context);
  std::vector<Setting> settings = plan_settings(c, model, dense);
  // Every engine is checked before any work, so that a sweep that cannot finish is refused whole.
  Engine::check_fits(dense.engine);
  for (Setting& s : settings) {
    s.options.engine.batch = batch;
    s.options.engine.capacity = plan.context;
    Engine::check_fits(s.options.engine);
  }

  Json header;
  put_run_info(header);
  header["device"] = dense.engine.backend == Backend::cpu ? "cpu" : run_fields(c.model, model, dense, 0)["device"];
  header["backend"] = dense.engine.backend == Backend::cpu ? "cpu" : "cuda";
  header["model"] = model.name;
  header["weights"] = model.dummy() ? "dummy" : "real";
  header["dtype"] = dtype_name(dense.engine.dtype);
  header["threads"] = dense.threads;
  header["text"] = c.text;
  header["text_tokens"] = tokens.size();
  header["context"] = plan.context;
  header["windows"] = plan.windows;
  header["score_tokens"] = plan.score_tokens;
  header["prefix_tokens"] = plan.prefix();
  header["tokens_scored_per_setting"] = plan.windows * plan.score_tokens;
  header["batch"] = batch;
  header["sink"] = c.model.sink;
  header["recent"] = c.model.recent;
  header["random_seed"] = c.random_seed;
  header["channel_config"] = c.model.channels.empty() ? Json(nullptr) : Json(c.model.channels);
  header["method"] = "each window's first context-1-score_tokens tokens prefilled densely once; the last "
                     "score_tokens tokens decoded under the setting and scored";

  const auto emit = [&](const Json& j) {
    const std::string line = j.dump();
    std::printf("%s\n", line.c_str());
    flush_stdout();
    if (json_file) json_file->append_line(line);
  };
  const auto progress_of = [&](ProgressBar& bar) {
    return [&bar, &plan](const PerplexityResult& so_far, std::int64_t) {
      bar.update(double(so_far.tokens_scored), double(plan.windows * plan.score_tokens),
                 "ppl " + number(so_far.perplexity(), 3));
    };
  };

  std::fprintf(stderr, "eval: prefilling %lld windows of %lld tokens densely, once\n",
               static_cast<long long>(plan.windows), static_cast<long long>(plan.prefix()));
  auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::optional<SharedPrefixPerplexity> shared;
  {
    ProgressBar bar("dense");
    shared.emplace(*model.weights, dense, tokens, plan, progress_of(bar));
  }
  require_finite_score(shared->dense(), "the dense setting");
  Setting dense_setting;
  dense_setting.family = "dense";
  dense_setting.options = dense;
  const double dense_nll = shared->dense().nll / double(shared->dense().tokens_scored);
  emit(result_line(header, dense_setting, model.config(), shared->dense(), dense_nll, elapsed()));

  std::vector<Outcome> outcomes;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const Setting& s = settings[i];
    const Json fields = setting_fields(s, model.config());
    std::string label = std::to_string(i + 1) + "/" + std::to_string(settings.size()) + " " + s.family;
    if (s.stat) label += " " + std::string(calibration::statistic_name(*s.stat));
    label += " " + fields["budget"].get<std::string>() + " " + fields["channels"].get<std::string>();
    start = std::chrono::steady_clock::now();
    PerplexityResult r;
    {
      ProgressBar bar(label);
      r = shared->score(s.options, progress_of(bar));
    }
    require_finite_score(r, "setting " + label);
    outcomes.push_back({&s, r, elapsed()});
    emit(result_line(header, s, model.config(), r, dense_nll, outcomes.back().seconds));
  }
  const std::string md = markdown(c, header, model.config(), shared->dense().perplexity(), outcomes);
  if (markdown_file) {
    markdown_file->write(md);
    markdown_file->commit();
  } else {
    std::fprintf(stderr, "%s", md.c_str());
  }
  if (json_file) json_file->commit();
}

}  // namespace

void add_eval(CLI::App& app) {
  auto c = std::make_shared<EvalCommand>();
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Perplexity of sparse decoding, swept in one run: dense; ds_gpu with calibrated channels at every budget "
      "(--budgets: k = context/x), channel count (--channel-divisors: r = head_dim/x) and statistic; random channels "
      "(the control); ds_offload at k = N/16, r = d/16; SparQ-style selection. Each window's prefix is prefilled "
      "once, densely; its last --score-tokens tokens are decoded and scored under each setting. JSON lines on "
      "stdout, a Markdown table with --markdown (else on stderr).");
  sub->add_option("-m,--model", c->model.model, "a GGUF file, or a built-in shape run with dummy weights")->required();
  sub->add_option("--channels", c->model.channels, "channel config from `dsoffload calibrate` (HF channel order)");
  sub->add_option("--text", c->text, "evaluation text file")->required();
  takes_token_count(add_count(*sub, "-c,--context", c->context, "tokens per window: 2048, 2K"))->capture_default_str();
  add_count(*sub, "--windows", c->windows, "consecutive windows from the start of the text")->capture_default_str();
  add_count(*sub, "--score-tokens", c->score_tokens, "tokens scored at the end of each window")
      ->capture_default_str();
  add_count(*sub, "--batch", c->batch, "windows decoded together (default: all)");
  add_count(*sub, "--budgets", c->budgets, "token budgets as divisors of the context: k = context / x")
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "--channel-divisors", c->channel_divisors, "label channels as divisors of head_dim: r = d / x")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--stats", c->stats, "statistics of the channel config for ds_gpu: q, k, qk")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--families", c->families, std::string("settings to run besides dense: ") + all_families)
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "--random-seed", c->random_seed, "seed of the random channels", std::uint64_t(0))
      ->capture_default_str();
  add_count(*sub, "--sink", c->model.sink, "first tokens always attended by sparse settings", std::int64_t(0))
      ->capture_default_str();
  add_count(*sub, "--recent", c->model.recent, "newest tokens always attended by sparse settings", std::int64_t(0))
      ->capture_default_str();
  sub->add_option("--backend", c->model.backend, "cpu or cuda (default: cuda where a GPU is visible, else cpu)");
  sub->add_option("--dtype", c->model.dtype, "f16 or bf16")->capture_default_str();
  add_count(*sub, "--prefill-chunk", c->model.prefill_chunk, "tokens a prefill runs through a layer at once")
      ->capture_default_str();
  add_threads_option(*sub, c->model.threads);
  add_count(*sub, "--seed", c->model.seed, "seed of dummy weights", std::uint64_t(0))->capture_default_str();
  sub->add_option("--json", c->json_out, "also write the JSON lines to this file");
  sub->add_option("--markdown", c->markdown_out, "write the Markdown table to this file");
  sub->callback([c] { run_eval(*c); });
}

}  // namespace dso::cli
