// `dsoffload generate`: decoding of one prompt, greedy by default or sampled
// (--temperature, --top-k, --top-p, --seed), the new text streamed to stdout
// token by token; one JSON line on stderr at the end says what ran (weights
// real or dummy, policy, backend, sampling, timings, the run's record).
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/chat_format.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/finite_outputs.h"
#include "cli/model_options.h"
#include "core/checked_math.h"
#include "cli/sampler.h"
#include "core/error.h"
#include "core/output_file.h"
#include "model/decoder.h"

namespace dso::cli {

namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  std::string system;
  std::string policy = "dense_gpu";
  std::int64_t max_new = 64;
  SamplingOptions sampling;
  bool raw = false;
  bool ignore_eos = false;
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

ChatFormat model_chat_format(const GenerateOptions& o, const LoadedModel& m) {
  if (o.raw || !m.file) return {};
  return chat_format(m.has_chatml(), m.file->get_or<std::string_view>("tokenizer.chat_template", ""));
}

void run_generate(GenerateOptions o) {
  require(o.max_new >= 1, "--max-new must be at least 1, got ", o.max_new);
  o.sampling.seed = o.model.seed;
  o.sampling.check();
  const LoadedModel model = load_model(o.model);
  const ChatFormat format = model_chat_format(o, model);
  const std::vector<std::int32_t> prompt = model.encode(chat_prompt(format, o.system, o.prompt), !o.raw);
  require(!prompt.empty(), "the prompt is empty");
  const std::int64_t capacity = checked_sum("the prompt plus --max-new", std::int64_t(prompt.size()), o.max_new);
  const DecoderOptions options = decoder_options(o.model, model, parse_policy(o.policy), 1, capacity);
  const auto decoder = make_decoder(*model.weights, options);
  std::optional<Sampler> sampler;
  if (!o.sampling.greedy()) sampler.emplace(o.sampling);

  // The prompt's last token is decoded, which yields the first new token's logits.
  const auto start = Clock::now();
  decoder->prefill(0, std::span(prompt).first(prompt.size() - 1));
  std::vector<std::int32_t> next{prompt.back()};
  const double prefill_ms = ms_since(start);
  const std::optional<std::int32_t> eos = model.tokenizer ? model.tokenizer->eos() : std::nullopt;
  std::int64_t produced = 0;
  bool stopped = false;
  const auto decode_start = Clock::now();
  while (produced < o.max_new) {
    decoder->decode(next);
    require_finite_logits(*decoder, concat("new token ", produced + 1));
    if (sampler)
      next = {sampler->next(decoder->logits())};
    else
      next = decoder->greedy_tokens();
    ++produced;
    if (eos && next[0] == *eos && !o.ignore_eos) {
      stopped = true;
      break;
    }
    const std::string piece = model.piece(next[0]);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    flush_stdout();
  }
  const double decode_ms = ms_since(decode_start);
  std::fputc('\n', stdout);
  flush_stdout();

  nlohmann::ordered_json j = run_fields(o.model, model, options, capacity);
  j["chat_template"] = describe(format, o.system);
  j["sampling"] = sampler ? "sampled" : "greedy";
  j["temperature"] = o.sampling.temperature;
  j["top_k"] = o.sampling.top_k;
  j["top_p"] = o.sampling.top_p;
  j["seed"] = o.sampling.seed;
  j["prompt_tokens"] = prompt.size();
  j["new_tokens"] = produced;
  j["stopped_at_eos"] = stopped;
  j["prefill_ms"] = prefill_ms;
  j["ms_per_token"] = decode_ms / double(produced);
  j["tokens_per_s"] = double(produced) / (decode_ms / 1e3);
  std::fprintf(stderr, "%s\n", j.dump().c_str());
}

}  // namespace

void add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Decoding of a prompt, greedy unless --temperature is above 0: new text on stdout as it is produced, a JSON "
      "summary line on stderr. Models whose vocabulary has ChatML tokens get the prompt as a user turn, after the "
      "system turn their chat template inserts (or --system).");
  o->model.add_to(*sub);
  sub->add_option("-p,--prompt", o->prompt, "the prompt text")->required();
  sub->add_option("--system", o->system, "a system turn before the prompt, instead of the template's (ChatML models)");
  sub->add_option("--policy", o->policy, "dense_gpu, ds_gpu, flexgen, ds_offload or ds_offload_sync")
      ->capture_default_str();
  add_count(*sub, "-n,--max-new", o->max_new, "most tokens to generate")->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "0: greedy; above 0: sample from softmax(logits / T)")
      ->capture_default_str();
  sub->add_option("--top-k", o->sampling.top_k, "sample among the k most likely tokens only (0: all)")
      ->capture_default_str();
  sub->add_option("--top-p", o->sampling.top_p, "sample among the most likely tokens whose probability reaches p")
      ->capture_default_str();
  sub->add_flag("--raw", o->raw, "feed the prompt as it is: no chat template, special tokens read as text");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating past the end-of-sequence token");
  sub->callback([o] { run_generate(*o); });
}

}  // namespace dso::cli
