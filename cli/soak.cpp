// `dsoffload soak`: a long decode run of one policy over a model at a long
// context, to show that nothing leaks or degrades. It samples memory (GPU in
// use, process RSS and peak), step times, the cache's length and the health
// of the outputs (every logit finite, every greedy token in the vocabulary)
// every --sample-every steps, and ends with a verdict: memory flat after the
// first sample, every output healthy, or exit status 1.
//
// The model, its weights and the context fill are bench's model mode's
// (cli/model_setup.h). Outputs are watched at every step without a copy: the
// decoder tallies non-finite logits where they are (on the GPU, a kernel
// behind the step) and the tally is read at sample time only; the greedy
// tokens, which the next step feeds back, come to the host at every step
// anyway.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/bench_options.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/model_setup.h"
#include "cli/process_memory.h"
#include "cli/run_info.h"
#include "cli/soak_report.h"
#include "cli/thread_option.h"
#include "core/device.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/output_file.h"
#include "cpu/parallel.h"
#include "model/decoder.h"
#include "offload/format_bytes.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

struct SoakOptions {
  BenchOptions run;  // model, backend, context, batch, steps and token selection
  std::string policy = "ds_offload";
  int sample_every = 1000;
  std::string json;
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

nlohmann::ordered_json run_json(const SoakOptions& o, const NamedWeights& w, const EngineConfig& e,
                                const DecoderFootprint& f, const ContextFill& fill, std::int64_t context, double fill_s) {
  const bool cuda = e.backend == Backend::cuda;
  const bool sparse = is_sparse(e.policy);
  nlohmann::ordered_json j;
  j["record"] = "run";
  put_run_info(j);
  j["device"] = cuda ? device_name() : std::string("cpu");
  j["backend"] = cuda ? "cuda" : "cpu";
  j["shape"] = w.name;
  j["weights"] = w.weights->is_dummy() ? "dummy" : "real";
  j["fill"] = fill.synthetic() ? "synthetic" : "prefill";
  j["policy"] = policy_name(e.policy);
  j["dtype"] = dtype_name(e.dtype);
  j["threads"] = cpu::resolve_threads(o.run.threads);
  j["context"] = context;
  j["batch"] = e.batch;
  j["steps"] = o.run.steps;
  j["sample_every"] = o.sample_every;
  j["k"] = sparse ? nlohmann::ordered_json(budget_at(e, context).k) : nlohmann::ordered_json(nullptr);
  j["r"] = sparse ? nlohmann::ordered_json(e.channels.r) : nlohmann::ordered_json(nullptr);
  j["sink"] = e.budget.sink;
  j["recent"] = e.budget.recent;
  j["seed"] = o.run.seed;
  j["capacity"] = e.capacity;
  j["weight_bytes"] = f.weight_bytes;  // on the GPU (16-bit) for cuda, in host memory (fp32) for cpu
  j["engine_host_bytes"] = f.engine.host_bytes;
  j["engine_gpu_bytes"] = f.engine.gpu_bytes;
  j["fill_s"] = fill_s;
  j["rss_allowed_growth"] = concat("max(", kRssGrowthFloorBytes >> 20, " MiB, ", kRssGrowthFraction * 100,
                                   "% of the first sample)");
  return j;
}

void run_soak(const SoakOptions& o) {
  const BenchOptions& b = o.run;
  require(b.backend == "auto" || b.backend == "cpu" || b.backend == "cuda", "unknown backend '", b.backend,
          "' (choose auto, cpu or cuda)");
  require(b.model.empty() || b.shape.empty(), "--model and --shape name two models: give one");
  require(b.shape.empty() || is_model_shape(b.shape), "--shape '", b.shape,
          "' is not a model shape (choose llama-2-7b, llama-3-8b or smollm2-135m)");
  const bool cuda = b.backend == "cuda" || (b.backend == "auto" && gpu_available());
  const std::int64_t context = parse_token_count(b.context.empty() ? "128K" : b.context);
  check_counts(b, context);
  require(o.sample_every >= 1, "--sample-every must be at least 1, got ", o.sample_every);
  require(std::int64_t(o.sample_every) * 2 <= b.steps, "--sample-every ", o.sample_every, " leaves fewer than two samples in ",
          b.steps, " steps: memory growth is judged between samples");
  const Policy policy = parse_policy(o.policy);
  const InterruptScope interrupts;
  // Made before any work, so that a bad path is refused at once.
  std::optional<OutputFile> json;
  if (!o.json.empty())
    json.emplace(o.json, "the --json file", OutputFile::Kind::json_lines, std::vector<std::string>{b.model});
  const auto record = [&](const nlohmann::ordered_json& j) {
    if (json) json->append_line(j.dump());
  };

  const NamedWeights named = load_named_weights(b);
  const WeightSource& weights = *named.weights;
  const int r = label_count(b, weights.config());
  DecoderOptions d;
  d.threads = cpu::resolve_threads(b.threads);
  d.engine = model_engine_config(b, weights.config(), cuda, context + b.steps);  // each step appends a token
  d.engine.policy = policy;
  // Placeholder channels until the synthetic data exists to calibrate on.
  if (is_sparse(policy)) d.engine.channels = LabelChannels::leading(d.engine.shape, r);
  const DecoderFootprint footprint = check_decoder_fits(weights, d);

  ContextFill fill(weights, d.engine, r, b.seed, context);
  if (is_sparse(policy)) d.engine.channels = fill.channels();
  d.prefill_observer = fill.observer();  // the progress of a prefill through real weights
  const std::unique_ptr<Decoder> decoder = make_decoder(weights, d);
  std::fprintf(stderr, "soak: %s, %s, engine of %s host and %s GPU, capacity %lld tokens per sequence\n",
               named.name.c_str(), std::string(policy_name(policy)).c_str(),
               format_bytes(footprint.engine.host_bytes).c_str(), format_bytes(footprint.engine.gpu_bytes).c_str(),
               static_cast<long long>(d.engine.capacity));
  const auto fill_start = Clock::now();
  fill.fill(*decoder, concat("the soak of ", policy_name(policy)));
  const double fill_s = ms_since(fill_start) / 1e3;
  std::fprintf(stderr, "soak: context of %lld tokens x %d sequences filled in %.1f s\n",
               static_cast<long long>(context), b.batch, fill_s);
  record(run_json(o, named, decoder->engine_config(), footprint, fill, context, fill_s));

  const int vocab = weights.config().vocab_size;
  std::vector<SoakSample> samples;
  std::vector<double> interval_ms;
  std::int64_t outside_vocab = 0;
  print_sample_header();
  // Each step feeds the tokens the previous one chose, as generation does.
  std::vector<std::int32_t> tokens(std::size_t(b.batch), 1);
  for (int step = 0; step < b.steps; ++step) {
    stop_if_interrupted("step ", step + 1, " of ", b.steps, " of the soak (", samples.size(), " samples taken)");
    const auto start = Clock::now();
    decoder->decode(tokens);
    decoder->tally_nonfinite_logits();
    tokens = decoder->greedy_tokens();  // waits for the step's work
    interval_ms.push_back(ms_since(start));
    // Counted, and replaced so that the run goes on to its verdict: the
    // decoder refuses a token outside the vocabulary.
    for (std::int32_t& t : tokens)
      if (t < 0 || t >= vocab) {
        ++outside_vocab;
        t = 1;
      }
    if ((step + 1) % o.sample_every != 0 && step + 1 != b.steps) continue;

    SoakSample s;
    s.step = step + 1;
    s.date = utc_now();
    s.ms_median = median(interval_ms);
    s.ms_max = *std::max_element(interval_ms.begin(), interval_ms.end());
    if (cuda) s.gpu_mem_bytes = gpu_memory_in_use();
    const ResidentMemory rss = resident_memory();
    s.rss_bytes = rss.rss_bytes;
    s.peak_rss_bytes = rss.peak_bytes;
    s.cache_tokens = decoder->engine().length(0, 0);
    s.nonfinite_logits = decoder->take_nonfinite_logits();
    s.tokens_outside_vocab = std::exchange(outside_vocab, 0);
    interval_ms.clear();
    samples.push_back(s);
    record(sample_json(s));
    print_sample_row(s);
  }

  const SoakVerdict verdict = judge_soak(samples);
  record(verdict_json(verdict, std::int64_t(samples.size())));
  if (json) json->commit();
  const std::string text = verdict_text(verdict);
  std::printf("%s\n", text.c_str());
  flush_stdout();
  if (!verdict.pass()) throw CheckFailed("soak failed: " + text);
}

}  // namespace

void add_soak(CLI::App& app) {
  auto o = std::make_shared<SoakOptions>();
  o->run.steps = 10000;
  CLI::App* sub = app.add_subcommand(
      "soak",
      "Reliability soak: --steps whole decode steps of one policy over a model at a long context, sampling every "
      "--sample-every steps the step time (median, max), GPU memory in use (cuda), process RSS and peak RSS, the "
      "cache's length, and whether every logit was finite and every greedy token in the vocabulary. Prints a "
      "table and a verdict on stdout (--json FILE: JSON lines, records run, sample and verdict). The verdict "
      "compares later samples with the first (the end of the warm-up): GPU memory in use must not grow at all, "
      "RSS by at most max(16 MiB, 1% of the first sample's); every output must be healthy. Exit status 1 "
      "where the verdict fails.");
  sub->add_option("--backend", o->run.backend, "cpu, cuda, or auto: cuda where a GPU is visible")
      ->capture_default_str();
  sub->add_option("--shape", o->run.shape, "llama-2-7b, llama-3-8b or smollm2-135m, with dummy weights (default llama-3-8b)");
  sub->add_option("-m,--model", o->run.model, "a GGUF file: its real weights, the context filled by a prefill");
  sub->add_option("--policy", o->policy, "dense_gpu, ds_gpu, flexgen, ds_offload or ds_offload_sync")
      ->capture_default_str();
  add_token_count(*sub, "-c,--context", o->run.context,
                  "tokens cached per sequence before the soak: 4096, 16K, 1M (default 128K)");
  add_count(*sub, "--batch", o->run.batch, "sequences decoded together")->capture_default_str();
  add_count(*sub, "--steps", o->run.steps, "decode steps; each appends a token, so the engine holds context + steps")
      ->capture_default_str();
  add_count(*sub, "--sample-every", o->sample_every, "steps between samples (two samples at least)")
      ->capture_default_str();
  sub->add_option("--json", o->json, "write the run, every sample and the verdict to FILE, one JSON object a line");
  add_selection_options(*sub, o->run);
  add_threads_option(*sub, o->run.threads);
  sub->callback([o] { run_soak(*o); });
}

}  // namespace dso::cli
