// Weights are made once and shared by every policy; each policy gets a fresh
// engine (the previous one's memory is returned first: one host cache of tens
// of GiB at a time), a filled context, warm-up steps, then timed steps, each
// a whole decode step ending with the next tokens on the host.
#include "cli/model_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_steps.h"
#include "cli/model_bench_report.h"
#include "cli/model_setup.h"
#include "cli/pcie_rate.h"
#include "cpu/parallel.h"
#include "core/device.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model/weight_source.h"
#include "offload/format_bytes.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <class T>
T median(std::vector<T> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

struct PolicyRun {
  DecoderOptions options;
  DecoderFootprint footprint;
};

// The default policies: the offload ones always, the GPU-resident ones where
// their K/V fit (checked later, skipped with the reason otherwise).
std::vector<std::string> default_policies() {
  return {"ds_offload", "ds_offload_sync", "flexgen", "dense_gpu", "ds_gpu"};
}

// The cpu backend runs a model's layers on a few cores: a context it fills in
// seconds rather than hours.
constexpr std::int64_t kCpuDefaultContext = 2048;
// Dummy weights have no trained length; on a GPU the default is the long
// context the offload policies are for.
constexpr std::int64_t kGpuDummyDefaultContext = 128 * 1024;

struct ChosenContext {
  std::int64_t tokens = 0;
  std::string note;  // for stderr once the run is known to go ahead: why this context, or a warning
};

// --context, or the default with the reason; a given one past a real model's
// trained length is warned of.
ChosenContext model_context(const BenchOptions& o, const LlamaConfig& model, bool dummy, bool cuda) {
  const std::int64_t limit = model.context_length;
  if (!o.context.empty()) {
    const std::int64_t context = parse_token_count(o.context);
    if (!dummy && limit > 0 && context > limit)
      return {context, concat("warning: context ", context, " is past the model's trained length of ", limit,
                              " tokens; it runs, but what it computes there is not what the model was trained for")};
    return {context, ""};
  }
  std::int64_t context = 0;
  std::string why;
  if (!cuda) {
    context = dummy || limit <= 0 ? kCpuDefaultContext : std::min(limit, kCpuDefaultContext);
    why = "the cpu backend's default";
  } else if (dummy || limit <= 0) {
    context = kGpuDummyDefaultContext;
    why = dummy ? "the default for dummy weights on a GPU" : "the default (the model states no trained length)";
  } else {
    context = limit;
    why = "the model's trained length";
  }
  const std::string trained =
      !dummy && limit > 0 && context != limit ? concat("; the model's trained length is ", limit) : "";
  return {context, concat("context: ", context, " tokens, ", why, trained, " (--context to choose another)")};
}

}  // namespace

void run_model_bench(const BenchOptions& o, bool cuda) {
  // A context given is checked before the weights are read.
  if (!o.context.empty()) check_counts(o, parse_token_count(o.context));
  const NamedWeights named = load_named_weights(o);
  const WeightSource& weights = *named.weights;
  const LlamaConfig& model = weights.config();
  const bool dummy = weights.is_dummy();
  const ChosenContext picked = model_context(o, model, dummy, cuda);
  const std::int64_t context = picked.tokens;
  check_counts(o, context);
  const int r = label_count(o, model);
  const EngineConfig base = model_engine_config(o, model, cuda, context + o.warmup + o.steps);

  // Every policy is checked before anything is allocated: a host-resident one
  // that does not fit refuses the run, a GPU-resident one of the default list
  // is skipped with the reason.
  const bool chosen = !o.policies.empty();
  std::vector<PolicyRun> runs;
  for (const std::string& name : chosen ? o.policies : default_policies()) {
    DecoderOptions d;
    d.threads = cpu::resolve_threads(o.threads);
    d.engine = base;
    d.engine.policy = parse_policy(name);
    // Placeholder channels until the synthetic data exists to calibrate on.
    if (is_sparse(d.engine.policy)) d.engine.channels = LabelChannels::leading(base.shape, r);
    try {
      runs.push_back({d, check_decoder_fits(weights, d)});
    } catch (const Error& e) {
      if (chosen || keeps_kv_on_host(d.engine.policy)) throw;
      std::fprintf(stderr, "skipped %s: %s\n", name.c_str(), e.what());
    }
  }
  require(!runs.empty(), "no policy fits this machine");
  if (!picked.note.empty()) std::fprintf(stderr, "%s\n", picked.note.c_str());

  ContextFill context_fill(weights, base, r, o.seed, context, int(runs.size()));
  for (PolicyRun& run : runs) {
    if (is_sparse(run.options.engine.policy)) run.options.engine.channels = context_fill.channels();
    run.options.prefill_observer = context_fill.observer();
  }

  const std::optional<double> pcie =
      cuda ? std::optional<double>(measure_pcie_h2d_GBps(kPcieProbeBytes, kPcieProbeRepeats)) : std::nullopt;

  // The decoder is made for ds_offload where it runs: only then does it pack
  // the speculative query's rows of W_q.
  std::size_t made_for = 0;
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (runs[i].options.engine.policy == Policy::ds_offload) made_for = i;
  auto start = Clock::now();
  const std::unique_ptr<Decoder> decoder = make_decoder(weights, runs[made_for].options);
  const double first_alloc_s = seconds_since(start);
  std::fprintf(stderr, "weights (%s, %s) and the first engine made in %.1f s\n", dummy ? "dummy" : "real",
               format_bytes(runs[made_for].footprint.weight_bytes).c_str(), first_alloc_s);

  std::vector<StepFields> results;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const EngineConfig& e = runs[i].options.engine;
    const std::string policy(policy_name(e.policy));
    const StepLoop loop{context, o.warmup, o.steps, concat("policy ", policy, " (", i + 1, " of ", runs.size(), ")")};
    start = Clock::now();
    const bool reuse = i == 0 && made_for == 0;
    if (!reuse) decoder->reset_engine(e);
    const double alloc_s = reuse ? first_alloc_s : seconds_since(start);
    std::fprintf(stderr, "%s: engine (%s host, %s GPU) made in %.1f s\n", policy.c_str(),
                 format_bytes(runs[i].footprint.engine.host_bytes).c_str(),
                 format_bytes(runs[i].footprint.engine.gpu_bytes).c_str(), alloc_s);

    start = Clock::now();
    const std::string fill = context_fill.fill(*decoder, loop.run);
    const double fill_s = seconds_since(start);
    std::fprintf(stderr, "%s: context of %lld tokens x %d sequences filled (%s) in %.1f s\n", policy.c_str(),
                 static_cast<long long>(context), o.batch, fill.c_str(), fill_s);

    // Each step feeds the tokens the previous one chose, as generation does.
    std::vector<std::int32_t> tokens(std::size_t(o.batch), 1);
    std::vector<double> ms;
    std::vector<std::int64_t> h2d;
    double first_step_ms = 0;
    for (int step = 0; step < o.warmup + o.steps; ++step) {
      stop_at_step(loop, step);
      decoder->engine().reset_stats();
      const auto step_start = Clock::now();
      decoder->decode(tokens);
      tokens = decoder->greedy_tokens();  // waits for the step's work
      const double step_ms = seconds_since(step_start) * 1e3;
      if (step == 0) first_step_ms = step_ms;
      if (step < o.warmup) continue;
      ms.push_back(step_ms);
      h2d.push_back(decoder->engine().stats().h2d_bytes);
    }

    const bool sparse = is_sparse(e.policy);
    const DecoderFootprint& f = runs[i].footprint;
    StepFields res;
    res.mode = "model";
    res.device = cuda ? device_name() : "cpu";
    res.backend = cuda ? "cuda" : "cpu";
    res.policy = e.policy;
    res.shape = named.name;
    res.weights = dummy ? "dummy" : "real";
    res.fill = fill;
    res.dims = e.shape;
    res.dtype = e.dtype;
    res.context = context;
    res.batch = o.batch;
    res.k = sparse ? budget_at(e, context).k : 0;
    res.r = sparse ? r : 0;
    res.budget = e.budget;
    res.seed = o.seed;
    res.steps = o.steps;
    res.warmup = o.warmup;
    res.ms = step_times(ms);
    res.h2d_bytes_per_step = median(h2d);
    res.pcie_h2d_GBps = pcie;
    res.gpu_mem_bytes = f.weight_bytes + f.buffer_bytes + f.engine.gpu_bytes;  // weights, buffers, engine
    res.host_mem_bytes = f.engine.host_bytes;
    res.weight_bytes = f.weight_bytes;
    res.alloc_s = alloc_s;  // the first policy's includes making the weights
    res.fill_s = fill_s;
    if (sparse)
      res.labels = context_fill.synthetic() ? "calibrated on the synthetic keys (largest mean |k| per head)"
                                            : "leading channels 0..r-1 (no calibration)";
    res.weights_note = dummy ? "dummy weights: seeded random tensors of the model's shape" : "the GGUF file's weights";
    res.gpu_mem_note = cuda ? "device memory"
                            : "what the run would hold on a GPU; the cpu backend holds it in host memory";
    res.step_note = "embedding, every layer (projections, attention through the engine, MLP), LM head and argmax";
    res.threads = runs[i].options.threads;
    if (fill == "prefill") {
      res.prefill_tokens_per_s = double(context) * o.batch / fill_s;
      res.ttft_ms = fill_s * 1e3 + first_step_ms;
    }
    results.push_back(res);
    print_step_json(res);
  }
  print_model_table(results);
}

}  // namespace dso::cli
