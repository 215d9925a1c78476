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
#include <random>
#include <string>
#include <vector>

#include "cli/bench_steps.h"
#include "cli/model_bench_report.h"
#include "cli/pcie_rate.h"
#include "cli/synthetic_tensors.h"
#include "core/device.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model/gguf.h"
#include "model/gguf_weights.h"
#include "model/weight_source.h"
#include "offload/format_bytes.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

// SmolLM2-135M's hyper-parameters, for dummy runs of the small real model's shape.
LlamaConfig smollm2_config() {
  LlamaConfig c;
  c.name = "smollm2-135m";
  c.layers = 30;
  c.q_heads = 9;
  c.kv_heads = 3;
  c.head_dim = 64;
  c.hidden = 576;
  c.ffn_hidden = 1536;
  c.vocab_size = 49152;
  c.context_length = 8192;
  c.rope_theta = 100000.0f;
  return c;
}

LlamaConfig model_shape_config(const std::string& name) {
  return name == "smollm2-135m" ? smollm2_config() : builtin_llama_config(name);
}

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

// Seeded tokens for a prefill through real weights: the time of a step does
// not depend on which tokens the context holds.
std::vector<std::int32_t> random_tokens(std::int64_t count, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> pick(0, vocab - 1);
  auto tokens = std::vector<std::int32_t>(std::size_t(count));
  for (std::int32_t& t : tokens) t = pick(rng);
  return tokens;
}

void prefill_through_model(Decoder& decoder, std::int64_t context, std::uint64_t seed) {
  for (int s = 0; s < decoder.batch(); ++s) {
    const auto start = Clock::now();
    decoder.prefill(s, random_tokens(context, decoder.config().vocab_size, seed + std::uint64_t(s)));
    std::fprintf(stderr, "prefill of sequence %d through the model: %lld tokens in %.1f s\n", s,
                 static_cast<long long>(context), seconds_since(start));
  }
}

}  // namespace

bool is_model_shape(const std::string& name) {
  const auto names = builtin_llama_config_names();
  return name == "smollm2-135m" || std::find(names.begin(), names.end(), name) != names.end();
}

void run_model_bench(const BenchOptions& o, bool cuda) {
  require(o.dtype == "f16" || o.dtype == "bf16", "unknown dtype '", o.dtype, "' (choose f16 or bf16)");
  const std::int64_t context = parse_token_count(o.context.empty() ? "128K" : o.context);
  check_counts(o, context);

  std::unique_ptr<GgufFile> file;
  std::unique_ptr<WeightSource> weights;
  std::string shape_name;
  if (!o.model.empty()) {
    file = std::make_unique<GgufFile>(GgufFile::open(o.model));
    weights = gguf_weights(*file);
    shape_name = weights->config().name.empty() ? o.model : weights->config().name;
  } else {
    shape_name = o.shape.empty() ? "llama-3-8b" : o.shape;
    weights = dummy_weights(model_shape_config(shape_name), o.seed);
  }
  const LlamaConfig& model = weights->config();
  const bool dummy = weights->is_dummy();
  const int r = o.r > 0 ? o.r : std::max(1, model.head_dim / 16);

  EngineConfig base;
  base.shape = model.attention();
  base.dtype = o.dtype == "f16" ? DType::f16 : DType::bf16;
  base.backend = cuda ? Backend::cuda : Backend::cpu;
  base.batch = o.batch;
  base.capacity = context + o.warmup + o.steps;
  base.budget = {o.k, o.sink, o.recent};
  base.k_fraction = o.k > 0 ? 0.0 : o.k_fraction;

  // Every policy is checked before anything is allocated: a host-resident one
  // that does not fit refuses the run, a GPU-resident one of the default list
  // is skipped with the reason.
  const bool chosen = !o.policies.empty();
  std::vector<PolicyRun> runs;
  for (const std::string& name : chosen ? o.policies : default_policies()) {
    DecoderOptions d;
    d.engine = base;
    d.engine.policy = parse_policy(name);
    // Placeholder channels until the synthetic data exists to calibrate on.
    if (is_sparse(d.engine.policy)) d.engine.channels = LabelChannels::leading(base.shape, r);
    try {
      runs.push_back({d, check_decoder_fits(*weights, d)});
    } catch (const Error& e) {
      if (chosen || keeps_kv_on_host(d.engine.policy)) throw;
      std::fprintf(stderr, "skipped %s: %s\n", name.c_str(), e.what());
    }
  }
  require(!runs.empty(), "no policy fits this machine");

  // A synthetic fill labels the keys it plants; labels from real weights need
  // a calibration this mode does not run, so they use the leading channels.
  std::optional<SyntheticTensors> synthetic;
  if (dummy) synthetic.emplace(base.shape, base.dtype, o.seed, r);
  const LabelChannels channels = synthetic ? synthetic->calibrate(r, std::min<std::int64_t>(context, 1024))
                                           : LabelChannels::leading(base.shape, r);

  for (PolicyRun& run : runs)
    if (is_sparse(run.options.engine.policy)) run.options.engine.channels = channels;

  const std::optional<double> pcie =
      cuda ? std::optional<double>(measure_pcie_h2d_GBps(kPcieProbeBytes, kPcieProbeRepeats)) : std::nullopt;

  // The decoder is made for ds_offload where it runs: only then does it pack
  // the speculative query's rows of W_q.
  std::size_t made_for = 0;
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (runs[i].options.engine.policy == Policy::ds_offload) made_for = i;
  auto start = Clock::now();
  const std::unique_ptr<Decoder> decoder = make_decoder(*weights, runs[made_for].options);
  const double first_alloc_s = seconds_since(start);
  std::fprintf(stderr, "weights (%s, %s) and the first engine made in %.1f s\n", dummy ? "dummy" : "real",
               format_bytes(runs[made_for].footprint.weight_bytes).c_str(), first_alloc_s);
  std::optional<DeviceSyntheticTensors> device_synthetic;
  if (synthetic && cuda) device_synthetic.emplace(*synthetic);

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
    if (synthetic) {
      if (cuda) {
        const gpu::Stream stream;
        fill_cuda_cache(decoder->engine(), *device_synthetic, context, stream.get(), loop.run);
        decoder->adopt_filled(context);  // the decoder's stream is the engine's again before `stream` goes
      } else {
        fill_cpu_cache(decoder->engine(), *synthetic, context, loop.run);
        decoder->adopt_filled(context);
      }
    } else {
      prefill_through_model(*decoder, context, o.seed);
    }
    const double fill_s = seconds_since(start);
    std::fprintf(stderr, "%s: context of %lld tokens x %d sequences filled in %.1f s\n", policy.c_str(),
                 static_cast<long long>(context), o.batch, fill_s);

    // Each step feeds the tokens the previous one chose, as generation does.
    std::vector<std::int32_t> tokens(std::size_t(o.batch), 1);
    std::vector<double> ms;
    std::vector<std::int64_t> h2d;
    for (int step = 0; step < o.warmup + o.steps; ++step) {
      stop_at_step(loop, step);
      decoder->engine().reset_stats();
      const auto step_start = Clock::now();
      decoder->decode(tokens);
      tokens = decoder->greedy_tokens();  // waits for the step's work
      const double step_ms = seconds_since(step_start) * 1e3;
      if (step < o.warmup) continue;
      ms.push_back(step_ms);
      h2d.push_back(decoder->engine().stats().h2d_bytes);
    }

    ModelBenchResult res;
    res.device = cuda ? device_name() : "cpu";
    res.backend = cuda ? "cuda" : "cpu";
    res.policy = e.policy;
    res.shape = shape_name;
    res.dummy = dummy;
    res.synthetic_fill = synthetic.has_value();
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
    results.push_back(res);
    print_model_json_line(res);
  }
  print_model_table(results);
}

}  // namespace dso::cli
