// `dsoffload bench`: one JSON line per policy on stdout and a table on
// stderr, so that `dsoffload bench > runs.jsonl` keeps only what scripts read.
// Two modes: whole decode steps of a Llama model (cli/model_bench.h), and
// below, the attention engine alone, a decode loop over a synthetic cache.
// `k` is reported at the filled context; the timed steps grow it by a few
// tokens. On the cuda backend each run also measures the contiguous pinned
// PCIe rate (pcie_h2d_GBps), the ceiling its fetches are compared with.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_options.h"
#include "cli/bench_report.h"
#include "cli/bench_steps.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/model_bench.h"
#include "cli/model_setup.h"
#include "cli/pcie_rate.h"
#include "cli/shape_names.h"
#include "cli/synthetic_tensors.h"
#include "cli/thread_option.h"
#include "core/device.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "gpu/memory.h"
#include "offload/cuda_engine.h"
#include "offload/engine.h"
#include "offload/policy_rules.h"

namespace dso::cli {

namespace {

template <class T>
T median(std::vector<T> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// `run` names the policy and its place among the run's policies, for the
// message of an interrupt.
StepFields run_policy(const EngineConfig& config, const BenchOptions& o, std::int64_t context, const std::string& shape_name,
                      const SyntheticTensors& data, const MemoryPlan& plan, std::optional<double> pcie,
                      const std::string& run) {
  const StepLoop loop{context, o.warmup, o.steps, run};
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

  StepFields r;
  r.mode = "attention";
  r.device = cuda ? device_name() : "cpu";
  r.backend = cuda ? "cuda" : "cpu";
  r.policy = config.policy;
  r.shape = shape_name;
  r.weights = "dummy";
  r.fill = "synthetic";
  r.dims = config.shape;
  r.dtype = config.dtype;
  r.context = context;
  r.batch = o.batch;
  r.k = budget_at(config, context).k;
  r.r = config.channels.r;
  r.budget = config.budget;
  r.seed = o.seed;
  r.steps = o.steps;
  r.warmup = o.warmup;
  r.ms = step_times(ms);
  r.h2d_bytes_per_step = median(h2d);
  r.pcie_h2d_GBps = pcie;
  r.gpu_mem_bytes = plan.gpu_bytes;
  r.host_mem_bytes = plan.host_bytes;
  if (!cuda || o.phases) {  // the cuda backend times phases only when asked
    r.ms_select = median(ms_select);
    r.ms_fetch = median(ms_fetch);
    r.ms_attend = median(ms_attend);
  }
  r.tokens_selected_per_step = median(tokens);
  r.labels = "calibrated on the synthetic keys (largest mean |k| per head)";
  r.weights_note = "random K/V and queries with planted outlier key channels; no model";
  r.gpu_mem_note = cuda ? "device memory"
                        : "what the policy would hold on a GPU; the cpu backend holds it in host memory";
  r.step_note = "the attention engine alone: every layer's select, fetch and attend";
  return r;
}

void run_attention_bench(const BenchOptions& o, bool cuda) {
  const NamedShape shape = parse_shape(o.shape.empty() ? "small" : o.shape);
  const std::int64_t context = parse_token_count(o.context.empty() ? "4096" : o.context);
  require(o.dtype == "f16" || o.dtype == "bf16", "unknown dtype '", o.dtype, "' (choose f16 or bf16)");
  check_counts(o, context);
  const int r = o.r > 0 ? o.r : std::max(1, shape.shape.head_dim / 16);

  EngineConfig base;
  base.shape = shape.shape;
  base.dtype = o.dtype == "f16" ? DType::f16 : DType::bf16;
  base.backend = cuda ? Backend::cuda : Backend::cpu;
  base.batch = o.batch;
  base.capacity = context + o.warmup + o.steps;
  base.budget = {o.k, o.sink, o.recent};
  base.k_fraction = o.k > 0 ? 0.0 : o.k_fraction;

  check_cache_could_fit(base);
  // Every policy is checked before any runs or allocates, so a run that does
  // not fit is refused whole. Label channels are a placeholder until the
  // synthetic data exists to calibrate on.
  base.channels = LabelChannels::leading(base.shape, r);
  std::vector<EngineConfig> configs;
  std::vector<MemoryPlan> plans;
  const std::vector<std::string> all{"dense_gpu", "ds_gpu", "flexgen", "ds_offload", "ds_offload_sync"};
  for (const std::string& name : o.policies.empty() ? all : o.policies) {
    EngineConfig c = base;
    c.policy = parse_policy(name);
    plans.push_back(Engine::check_fits(c));
    configs.push_back(c);
  }

  // Measured before any engine holds memory, in the same run as the policies.
  const std::optional<double> pcie =
      cuda ? std::optional<double>(measure_pcie_h2d_GBps(kPcieProbeBytes, kPcieProbeRepeats)) : std::nullopt;

  const SyntheticTensors data(base.shape, base.dtype, o.seed, r);
  const LabelChannels channels = data.calibrate(r, std::min<std::int64_t>(context, 1024));
  std::vector<StepFields> results;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    configs[i].channels = channels;
    const std::string run = concat("policy ", policy_name(configs[i].policy), " (", i + 1, " of ", configs.size(), ")");
    results.push_back(run_policy(configs[i], o, context, shape.name, data, plans[i], pcie, run));
    print_step_json(results.back());
  }
  print_table(results);
}

// The model mode where a model is named (--model, or a Llama shape), or by
// default on a GPU; the attention engine alone otherwise.
void run_bench(const BenchOptions& o) {
  require(o.backend == "auto" || o.backend == "cpu" || o.backend == "cuda", "unknown backend '", o.backend,
          "' (choose auto, cpu or cuda)");
  const bool cuda = o.backend == "cuda" || (o.backend == "auto" && gpu_available());
  const InterruptScope interrupts;
  require(o.model.empty() || o.shape.empty(), "--model and --shape name two models: give one");
  require(!(o.attention_only && !o.model.empty()), "--attention-only runs no model: drop --model");
  const bool model_named = !o.model.empty() || (!o.shape.empty() && is_model_shape(o.shape));
  const bool model_mode = !o.attention_only && (model_named || (o.shape.empty() && cuda));
  if (model_mode)
    run_model_bench(o, cuda);
  else
    run_attention_bench(o, cuda);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Decode benchmark. Model mode (--model FILE.gguf, --shape llama-2-7b|llama-3-8b|smollm2-135m, or the "
      "default on a GPU: llama-3-8b at 128K): whole decode steps of the model. --attention-only (the default "
      "without a GPU): the attention engine alone over a synthetic K/V cache. Prints one JSON object per line "
      "and policy on stdout and a table on stderr.");
  sub->add_option("--backend", o->backend, "cpu, cuda, or auto: cuda where a GPU is visible")->capture_default_str();
  sub->add_option("--policy", o->policies,
                  "policies to run, repeatable or comma separated: dense_gpu, ds_gpu, flexgen, ds_offload, "
                  "ds_offload_sync (default: all in the attention-only mode; in the model mode the offload ones, "
                  "and the GPU-resident ones where they fit)")
      ->delimiter(',');
  sub->add_option("--shape", o->shape,
                  "llama-2-7b, llama-3-8b, smollm2-135m (dummy weights; model mode unless --attention-only), "
                  "small or e.g. L4-Hq8-Hkv2-d64 (attention only)");
  sub->add_option("-m,--model", o->model, "a GGUF file: the model mode with its real weights");
  sub->add_flag("--attention-only", o->attention_only,
                "time the attention engine alone over a synthetic cache (no projections, MLP or LM head)");
  add_token_count(*sub, "-c,--context", o->context,
                  "tokens cached per sequence before the timed steps: 4096, 16K, 1M (default: on a GPU a real "
                  "model's trained length or 128K for dummy weights, on the cpu backend 2048; 4096 attention only)");
  add_count(*sub, "--batch", o->batch, "sequences decoded together")->capture_default_str();
  add_count(*sub, "--steps", o->steps, "timed decode steps: their median, min and max are reported")
      ->capture_default_str();
  add_count(*sub, "--warmup", o->warmup, "untimed decode steps first", 0)->capture_default_str();
  add_selection_options(*sub, *o);
  add_threads_option(*sub, o->threads);
  sub->add_flag("--phases", o->phases,
                "cuda: time the select, fetch and attend phases with CUDA events (adds an event pair per phase)");
  sub->callback([o] { run_bench(*o); });
}

}  // namespace dso::cli
