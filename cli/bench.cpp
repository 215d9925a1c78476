// `dsoffload bench`: a decode loop over a synthetic cache with every policy,
// one JSON line per policy on stdout and a table on stderr, so that
// `dsoffload bench > runs.jsonl` keeps only what scripts read. `k` is
// reported at the filled context; the timed steps grow it by a few tokens.
#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cli/bench_report.h"
#include "cli/commands.h"
#include "cli/shape_names.h"
#include "cli/synthetic_tensors.h"
#include "core/device.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "offload/engine.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

struct BenchOptions {
  std::string backend = "cpu";
  std::vector<std::string> policies{"dense_gpu", "ds_gpu", "flexgen", "ds_offload", "ds_offload_sync"};
  std::string shape = "small";
  std::string dtype = "f16";
  std::int64_t context = 4096;
  int batch = 1;
  int steps = 20;
  int warmup = 3;
  std::int64_t k = 0;
  double k_fraction = 1.0 / 16;
  int r = 0;  // 0: head_dim / 16
  std::int64_t sink = 0;
  std::int64_t recent = 0;
  std::uint64_t seed = 1;
};

template <class T>
T median(std::vector<T> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Fills every (sequence, layer) with `context` synthetic tokens, a chunk at a
// time; a fill at long context takes long enough to be worth interrupting.
void fill_cache(Engine& engine, const SyntheticTensors& data, std::int64_t context, const std::string& run) {
  const EngineConfig& c = engine.config();
  constexpr std::int64_t chunk = 4096;
  std::vector<std::uint16_t> k(std::size_t(chunk) * c.shape.kv_heads * c.shape.head_dim), v(k.size());
  for (int s = 0; s < c.batch; ++s)
    for (int l = 0; l < c.shape.layers; ++l)
      for (std::int64_t begin = 0; begin < context; begin += chunk) {
        stop_if_interrupted("the cache fill of ", run, ": sequence ", s + 1, " of ", c.batch, ", layer ", l + 1, " of ",
                            c.shape.layers, ", token ", begin, " of ", context);
        const std::int64_t count = std::min(chunk, context - begin);
        data.cached(TensorKind::key, s, l, begin, count, k.data());
        data.cached(TensorKind::value, s, l, begin, count, v.data());
        engine.prefill(l, s, k.data(), v.data(), count);
      }
}

// `run` names the policy and its place among the run's policies, for the
// message of an interrupt.
BenchResult run_policy(const EngineConfig& config, const BenchOptions& o, const std::string& shape_name,
                       const SyntheticTensors& data, const MemoryPlan& plan, const std::string& run) {
  const auto engine = Engine::create(config);
  fill_cache(*engine, data, o.context, run);

  const AttentionShape& s = config.shape;
  const std::size_t q_size = std::size_t(o.batch) * s.q_heads * s.head_dim;
  const std::size_t kv_size = std::size_t(o.batch) * s.kv_heads * s.head_dim;
  std::vector<std::vector<std::uint16_t>> q(std::size_t(s.layers), std::vector<std::uint16_t>(q_size));
  std::vector<std::vector<std::uint16_t>> k(std::size_t(s.layers), std::vector<std::uint16_t>(kv_size));
  std::vector<std::vector<std::uint16_t>> v = k;
  std::vector<std::uint16_t> out(q_size);

  std::vector<double> ms, ms_select, ms_fetch, ms_attend;
  std::vector<std::int64_t> h2d, tokens;
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    stop_if_interrupted("step ", step + 1, " of ", o.warmup + o.steps, " (", o.warmup, " warm-up) of ", run);
    for (int l = 0; l < s.layers; ++l) {
      data.step(TensorKind::query, step, l, o.batch, q[std::size_t(l)].data());
      data.step(TensorKind::new_key, step, l, o.batch, k[std::size_t(l)].data());
      data.step(TensorKind::new_value, step, l, o.batch, v[std::size_t(l)].data());
    }
    engine->reset_stats();
    const auto start = std::chrono::steady_clock::now();
    for (int l = 0; l < s.layers; ++l) {
      // A perfect speculation: the next layer's own query stands in for the
      // prediction from this layer's hidden state, which needs a model.
      const bool q_next = config.policy == Policy::ds_offload && l + 1 < s.layers;
      engine->decode(l, q[std::size_t(l)].data(), k[std::size_t(l)].data(), v[std::size_t(l)].data(),
                     q_next ? q[std::size_t(l) + 1].data() : nullptr, out.data());
    }
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (step < o.warmup) continue;
    const StepStats& st = engine->stats();
    ms.push_back(elapsed);
    ms_select.push_back(st.ms_select);
    ms_fetch.push_back(st.ms_fetch);
    ms_attend.push_back(st.ms_attend);
    h2d.push_back(st.h2d_bytes);
    tokens.push_back(st.tokens_selected);
  }

  BenchResult r;
  r.device = config.backend == Backend::cpu ? "cpu" : device_name();
  r.backend = config.backend == Backend::cpu ? "cpu" : "cuda";
  r.policy = config.policy;
  r.shape_name = shape_name;
  r.shape = s;
  r.dtype = config.dtype;
  r.context = o.context;
  r.batch = o.batch;
  r.k = budget_at(config, o.context).k;
  r.r = config.channels.r;
  r.budget = config.budget;
  r.seed = o.seed;
  r.steps = o.steps;
  r.warmup = o.warmup;
  r.plan = plan;
  r.ms_per_step = median(ms);
  r.ms_select = median(ms_select);
  r.ms_fetch = median(ms_fetch);
  r.ms_attend = median(ms_attend);
  r.h2d_bytes_per_step = median(h2d);
  r.tokens_selected_per_step = median(tokens);
  return r;
}

void run_bench(const BenchOptions& o) {
  const NamedShape shape = parse_shape(o.shape);
  require(o.backend == "cpu" || o.backend == "cuda", "unknown backend '", o.backend, "' (choose cpu or cuda)");
  require(o.dtype == "f16" || o.dtype == "bf16", "unknown dtype '", o.dtype, "' (choose f16 or bf16)");
  require(o.context >= 1, "--context must be at least 1, got ", o.context);
  require(o.batch >= 1, "--batch must be at least 1, got ", o.batch);
  require(o.steps >= 1, "--steps must be at least 1, got ", o.steps);
  require(o.warmup >= 0, "--warmup must not be negative, got ", o.warmup);
  // Steps are ints, so the sum cannot overflow once the context is below the limit.
  constexpr std::int64_t max_capacity = std::numeric_limits<std::int32_t>::max();
  require(o.context <= max_capacity - o.warmup - o.steps, "context ", o.context, " plus ", o.warmup, " warm-up and ",
          o.steps, " timed steps is past the largest capacity of ", max_capacity, " tokens per sequence");
  const int r = o.r > 0 ? o.r : std::max(1, shape.shape.head_dim / 16);

  EngineConfig base;
  base.shape = shape.shape;
  base.dtype = o.dtype == "f16" ? DType::f16 : DType::bf16;
  base.backend = o.backend == "cpu" ? Backend::cpu : Backend::cuda;
  base.batch = o.batch;
  base.capacity = o.context + o.warmup + o.steps;
  base.budget = {o.k, o.sink, o.recent};
  base.k_fraction = o.k > 0 ? 0.0 : o.k_fraction;

  // Every policy is checked before any runs or allocates, so a run that does
  // not fit is refused whole. Label channels are a placeholder until the
  // synthetic data exists to calibrate on.
  base.channels = LabelChannels::leading(base.shape, r);
  std::vector<EngineConfig> configs;
  std::vector<MemoryPlan> plans;
  for (const std::string& name : o.policies) {
    EngineConfig c = base;
    c.policy = parse_policy(name);
    plans.push_back(Engine::check_fits(c));
    configs.push_back(c);
  }

  const InterruptScope interrupts;
  const SyntheticTensors data(base.shape, base.dtype, o.seed, r);
  const LabelChannels channels = data.calibrate(r, std::min<std::int64_t>(o.context, 1024));
  std::vector<BenchResult> results;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    configs[i].channels = channels;
    const std::string run = concat("policy ", o.policies[i], " (", i + 1, " of ", configs.size(), ")");
    results.push_back(run_policy(configs[i], o, shape.name, data, plans[i], run));
    print_json_line(results.back());
  }
  print_table(results);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Decode benchmark over a synthetic K/V cache (random tensors, no model). Prints one JSON object per line "
      "and policy on stdout and a table on stderr.");
  sub->add_option("--backend", o->backend, "cpu or cuda")->capture_default_str();
  sub->add_option("--policy", o->policies,
                  "policies to run, repeatable or comma separated: dense_gpu, ds_gpu, flexgen, ds_offload, "
                  "ds_offload_sync (default: all)")
      ->delimiter(',');
  sub->add_option("--shape", o->shape, "small, llama-2-7b, llama-3-8b, smollm2-135m, or e.g. L4-Hq8-Hkv2-d64")
      ->capture_default_str();
  sub->add_option("--dtype", o->dtype, "f16 or bf16")->capture_default_str();
  sub->add_option("--context", o->context, "tokens cached per sequence before the timed steps")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "sequences decoded together")->capture_default_str();
  sub->add_option("--steps", o->steps, "timed decode steps (medians are reported)")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "untimed decode steps first")->capture_default_str();
  auto* k = sub->add_option("--k", o->k, "tokens selected per KV head (instead of --k-fraction)");
  sub->add_option("--k-fraction", o->k_fraction, "k as a fraction of the context")
      ->capture_default_str()
      ->excludes(k);
  sub->add_option("--r", o->r, "label channels per KV head (default head_dim / 16)");
  sub->add_option("--sink", o->sink, "first tokens always attended")->capture_default_str();
  sub->add_option("--recent", o->recent, "newest tokens always attended")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the synthetic tensors")->capture_default_str();
  sub->callback([o] { run_bench(*o); });
}

}  // namespace dso::cli
