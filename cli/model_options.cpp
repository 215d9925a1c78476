#include "cli/model_options.h"

#include <algorithm>
#include <filesystem>

#include "calibration/channel_config.h"
#include "calibration/label_selection.h"
#include "cli/count_option.h"
#include "cli/run_info.h"
#include "cli/thread_option.h"
#include "core/device.h"
#include "core/error.h"
#include "core/input_file.h"
#include "cpu/parallel.h"
#include "model/dummy_weights.h"
#include "model/gguf_weights.h"
#include "model/llama_config.h"
#include "offload/policy_rules.h"

namespace dso::cli {

void ModelOptions::add_to(CLI::App& sub) {
  std::string shapes;
  for (std::string_view n : builtin_llama_config_names()) shapes += (shapes.empty() ? "" : ", ") + std::string(n);
  sub.add_option("-m,--model", model, "a GGUF file, or a built-in shape run with dummy weights (" + shapes + ")")
      ->required();
  sub.add_option("--backend", backend, "cpu or cuda (default: cuda where a GPU is visible, else cpu)");
  sub.add_option("--dtype", dtype, "f16 or bf16: the K/V cache, and the weights on the GPU")->capture_default_str();
  sub.add_option("--channels", channels,
                 "channel config (DoubleSparse/SGLang JSON, HF channel order) giving the label channels of the "
                 "sparse policies; without one they use channels 0..r-1");
  sub.add_option("--stat", statistic, "statistic of the channel config to rank channels by: q, k or qk")
      ->capture_default_str();
  add_count(sub, "--r", r, "label channels per KV head (default head_dim / 16)");
  auto* k_opt = add_count(sub, "--k", k, "tokens selected per KV head (instead of --k-fraction)");
  sub.add_option("--k-fraction", k_fraction, "k as a fraction of the cached tokens")
      ->capture_default_str()
      ->excludes(k_opt);
  add_count(sub, "--sink", sink, "first tokens always attended by sparse policies", std::int64_t(0))
      ->capture_default_str();
  add_count(sub, "--recent", recent, "newest tokens always attended by sparse policies", std::int64_t(0))
      ->capture_default_str();
  add_count(sub, "--seed", seed, "seed of dummy weights, and of generate's sampling", std::uint64_t(0))->capture_default_str();
  add_count(sub, "--prefill-chunk", prefill_chunk, "tokens a prefill runs through a layer at once")
      ->capture_default_str();
  add_threads_option(sub, threads);
}

std::vector<std::int32_t> LoadedModel::encode(const std::string& text, bool parse_special) const {
  if (tokenizer) {
    std::vector<std::int32_t> ids = tokenizer->encode(text, {false, parse_special});
    if (tokenizer->adds_bos() && tokenizer->bos()) ids.insert(ids.begin(), *tokenizer->bos());
    return ids;
  }
  std::vector<std::int32_t> ids;
  for (unsigned char c : text) ids.push_back(std::int32_t(c));
  return ids;
}

bool LoadedModel::has_chatml() const {
  return tokenizer && tokenizer->find("<|im_start|>") && tokenizer->find("<|im_end|>");
}

std::string LoadedModel::piece(std::int32_t token) const {
  return tokenizer ? tokenizer->piece(token) : " " + std::to_string(token);
}

LoadedModel load_model(const ModelOptions& o) {
  LoadedModel m;
  m.name = o.model;
  if (std::filesystem::exists(o.model)) {
    m.file = std::make_unique<GgufFile>(GgufFile::open(o.model));
    m.tokenizer = Tokenizer::from_gguf(*m.file);
    m.weights = gguf_weights(*m.file);
    return m;
  }
  const auto names = builtin_llama_config_names();
  if (std::find(names.begin(), names.end(), o.model) == names.end()) {
    std::string list;
    for (std::string_view n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    fail("--model '", o.model, "' is neither a file nor a built-in shape (", list, ")");
  }
  m.weights = dummy_weights(builtin_llama_config(o.model), o.seed);
  return m;
}

std::string read_text_file(const std::string& path) {
  return read_regular_file(path, concat("cannot open the text file '", path, "'"), kMaxTextBytes, "a text file");
}

namespace {

Backend parse_backend(const std::string& name) {
  if (name.empty()) return gpu_available() ? Backend::cuda : Backend::cpu;
  if (name == "cpu") return Backend::cpu;
  if (name == "cuda") return Backend::cuda;
  fail("unknown backend '", name, "' (choose cpu or cuda)");
}

DType parse_dtype(const std::string& name) {
  if (name == "f16") return DType::f16;
  if (name == "bf16") return DType::bf16;
  fail("unknown dtype '", name, "' (choose f16 or bf16)");
}

int label_count(const ModelOptions& o, const LlamaConfig& c) { return o.r > 0 ? o.r : std::max(1, c.head_dim / 16); }

}  // namespace

DecoderOptions decoder_options(const ModelOptions& o, const LoadedModel& m, Policy policy, int batch,
                               std::int64_t capacity) {
  const LlamaConfig& c = m.config();
  DecoderOptions d;
  d.prefill_chunk = o.prefill_chunk;
  d.threads = cpu::resolve_threads(o.threads);
  EngineConfig& e = d.engine;
  e.shape = c.attention();
  e.dtype = parse_dtype(o.dtype);
  e.policy = policy;
  e.backend = parse_backend(o.backend);
  e.batch = batch;
  e.capacity = capacity;
  e.budget = {o.k, o.sink, o.recent};
  e.k_fraction = o.k > 0 ? 0.0 : o.k_fraction;
  if (is_sparse(policy)) {
    const int r = label_count(o, c);
    e.channels = o.channels.empty()
                     ? LabelChannels::leading(e.shape, r)
                     : calibration::label_channels_from_config(calibration::load_channel_config(o.channels), e.shape,
                                                               calibration::parse_statistic(o.statistic), r);
  }
  return d;
}

nlohmann::ordered_json run_fields(const ModelOptions& o, const LoadedModel& m, const DecoderOptions& d,
                                  std::int64_t context) {
  const EngineConfig& e = d.engine;
  const bool sparse = is_sparse(e.policy);
  nlohmann::ordered_json j;
  j["weights"] = m.dummy() ? "dummy" : "real";
  j["model"] = m.name;
  j["policy"] = policy_name(e.policy);
  j["backend"] = e.backend == Backend::cpu ? "cpu" : "cuda";
  j["device"] = e.backend == Backend::cpu ? std::string("cpu") : device_name();
  j["dtype"] = dtype_name(e.dtype);
  j["threads"] = d.threads;
  j["k"] = sparse ? nlohmann::ordered_json(budget_at(e, context).k) : nlohmann::ordered_json(nullptr);
  j["r"] = sparse ? nlohmann::ordered_json(e.channels.r) : nlohmann::ordered_json(nullptr);
  j["sink"] = e.budget.sink;
  j["recent"] = e.budget.recent;
  if (!sparse)
    j["labels"] = nullptr;
  else if (o.channels.empty())
    j["labels"] = "leading channels 0..r-1 (no calibration)";
  else
    j["labels"] = o.channels + " (" + o.statistic + ")";
  put_run_info(j);
  return j;
}

}  // namespace dso::cli
