// `dsoffload bench`: a decode loop over a synthetic cache with every policy,
// one JSON line per policy on stdout and a table on stderr, so that
// `dsoffload bench > runs.jsonl` keeps only what scripts read. `k` is
// reported at the filled context; the timed steps grow it by a few tokens.
// On the cuda backend each run also measures the contiguous pinned PCIe rate
// (pcie_h2d_GBps), the ceiling its fetches are compared with.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_report.h"
#include "cli/bench_steps.h"
#include "cli/commands.h"
#include "cli/pcie_rate.h"
#include "cli/shape_names.h"
#include "cli/synthetic_tensors.h"
#include "core/device.h"
#include "core/error.h"
#include "gpu/memory.h"
#include "offload/cuda_engine.h"
#include "offload/engine.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

struct BenchOptions {
  std::string backend = "auto";
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
  bool phases = false;  // cuda: phase times from CUDA events
};

// The contiguous copy the rate is measured with: long enough to reach the
// link's steady rate.
constexpr std::int64_t kPcieProbeBytes = std::int64_t(1) << 30;
constexpr int kPcieProbeRepeats = 7;

template <class T>
T median(std::vector<T> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

BenchResult run_policy(const EngineConfig& config, const BenchOptions& o, const std::string& shape_name,
                       const SyntheticTensors& data, const MemoryPlan& plan, std::optional<double> pcie) {
  const StepLoop loop{o.context, o.warmup, o.steps};
  const bool cuda = config.backend == Backend::cuda;
  std::optional<gpu::Stream> stream;  // outlives the engine, which works on it
  if (cuda) stream.emplace();
  const auto engine = cuda ? create_cuda_engine(config, {o.phases}) : Engine::create(config);
  const std::vector<StepSample> samples =
      cuda ? run_cuda_steps(*engine, data, loop, stream->get()) : run_cpu_steps(*engine, data, loop);

  std::vector<double> ms, ms_select, ms_fetch, ms_attend;
  std::vector<std::int64_t> h2d, tokens;
  for (const StepSample& sample : samples) {
    ms.push_back(sample.ms);
    ms_select.push_back(sample.stats.ms_select);
    ms_fetch.push_back(sample.stats.ms_fetch);
    ms_attend.push_back(sample.stats.ms_attend);
    h2d.push_back(sample.stats.h2d_bytes);
    tokens.push_back(sample.stats.tokens_selected);
  }

  BenchResult r;
  r.device = cuda ? device_name() : "cpu";
  r.backend = cuda ? "cuda" : "cpu";
  r.policy = config.policy;
  r.shape_name = shape_name;
  r.shape = config.shape;
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
  r.phases_timed = !cuda || o.phases;
  r.ms_select = median(ms_select);
  r.ms_fetch = median(ms_fetch);
  r.ms_attend = median(ms_attend);
  r.h2d_bytes_per_step = median(h2d);
  r.tokens_selected_per_step = median(tokens);
  r.pcie_h2d_GBps = pcie;
  return r;
}

void run_bench(const BenchOptions& o) {
  const NamedShape shape = parse_shape(o.shape);
  require(o.backend == "auto" || o.backend == "cpu" || o.backend == "cuda", "unknown backend '", o.backend,
          "' (choose auto, cpu or cuda)");
  const bool cuda = o.backend == "cuda" || (o.backend == "auto" && gpu_available());
  require(o.dtype == "f16" || o.dtype == "bf16", "unknown dtype '", o.dtype, "' (choose f16 or bf16)");
  require(o.context >= 1 && o.batch >= 1 && o.steps >= 1 && o.warmup >= 0,
          "context, batch and steps must be positive and warmup not negative");
  const int r = o.r > 0 ? o.r : std::max(1, shape.shape.head_dim / 16);

  EngineConfig base;
  base.shape = shape.shape;
  base.dtype = o.dtype == "f16" ? DType::f16 : DType::bf16;
  base.backend = cuda ? Backend::cuda : Backend::cpu;
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

  // Measured before any engine holds memory, in the same run as the policies.
  const std::optional<double> pcie =
      cuda ? std::optional<double>(measure_pcie_h2d_GBps(kPcieProbeBytes, kPcieProbeRepeats)) : std::nullopt;

  const SyntheticTensors data(base.shape, base.dtype, o.seed, r);
  const LabelChannels channels = data.calibrate(r, std::min<std::int64_t>(o.context, 1024));
  std::vector<BenchResult> results;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    configs[i].channels = channels;
    results.push_back(run_policy(configs[i], o, shape.name, data, plans[i], pcie));
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
  sub->add_option("--backend", o->backend, "cpu, cuda, or auto: cuda where a GPU is visible")->capture_default_str();
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
  sub->add_flag("--phases", o->phases,
                "cuda: time the select, fetch and attend phases with CUDA events (adds an event pair per phase)");
  sub->callback([o] { run_bench(*o); });
}

}  // namespace dso::cli
