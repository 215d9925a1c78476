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

}  // namespace

void run_model_bench(const BenchOptions& o, bool cuda) {
  const std::int64_t context = parse_token_count(o.context.empty() ? "128K" : o.context);
  check_counts(o, context);

  const NamedWeights named = load_named_weights(o);
  const WeightSource& weights = *named.weights;
  const LlamaConfig& model = weights.config();
  const bool dummy = weights.is_dummy();
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

  ContextFill context_fill(weights, base, r, o.seed, context);
  for (PolicyRun& run : runs)
    if (is_sparse(run.options.engine.policy)) run.options.engine.channels = context_fill.channels();

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

  std::vector<ModelBenchResult> results;
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
    context_fill.fill(*decoder, loop.run);
    const double fill_s = seconds_since(start);
    std::fprintf(stderr, "%s: context of %lld tokens x %d sequences filled in %.1f s\n", policy.c_str(),
                 static_cast<long long>(context), o.batch, fill_s);

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

    ModelBenchResult res;
    res.device = cuda ? device_name() : "cpu";
    res.backend = cuda ? "cuda" : "cpu";
    res.policy = e.policy;
    res.shape = named.name;
    res.dummy = dummy;
    res.synthetic_fill = context_fill.synthetic();
    res.dtype = e.dtype;
    res.context = context;
    res.batch = o.batch;
    res.k = is_sparse(e.policy) ? budget_at(e, context).k : 0;
    res.r = is_sparse(e.policy) ? r : 0;
    res.budget = e.budget;
    res.seed = o.seed;
    res.steps = o.steps;
    res.warmup = o.warmup;
    const DecoderFootprint& f = runs[i].footprint;
    res.weight_bytes = f.weight_bytes;
    res.gpu_mem_bytes = f.weight_bytes + f.buffer_bytes + f.engine.gpu_bytes;
    res.host_mem_bytes = f.engine.host_bytes;
    res.ms_per_step = median(ms);
    res.h2d_bytes_per_step = median(h2d);
    res.pcie_h2d_GBps = pcie;
    res.alloc_s = alloc_s;
    res.fill_s = fill_s;
    res.threads = runs[i].options.threads;
    res.first_step_ms = first_step_ms;
    results.push_back(res);
    print_model_json_line(res);
  }
  print_model_table(results);
}

}  // namespace dso::cli
